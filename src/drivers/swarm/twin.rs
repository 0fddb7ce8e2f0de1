//! A rolling update's second Swarm service. Swarm cannot be told which
//! task of a service to stop, so teal cannot replace a color's tasks one
//! by one inside that service and drain each before it goes. Instead the
//! new spec comes up as a twin service of the color, a batch of tasks at
//! a time, each checked before it takes traffic; the color's own service
//! shrinks by as many; and when the twin runs every replica it becomes
//! the color's service. Services cannot be renamed either, so the twin
//! takes whichever of `<service>-<color>` and `<service>-<color>-next` the
//! color's service does not use: the name alternates from one rolling
//! update to the next. Both carry the `teal.service` and `teal.color`
//! labels; the twin also `teal.twin` (on the service, not on its tasks).

use std::collections::BTreeMap;

use bollard::models::TaskState;
use bollard::query_parameters::ListTasksOptions;

use super::service::{current_replicas, replicated, Want};
use super::{SwarmDriver, TWIN};
use crate::drivers::docker::{call, DockerError};
use crate::spec::container::{labels, read_labels, ContainerSpec};
use crate::spec::Color;

/// One of a color's Swarm services as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub name: String,
    /// The spec hash its tasks run (`teal.spec`).
    pub hash: String,
    /// The replicas it is set to (not how many run).
    pub replicas: u32,
}

/// A color's own service and, during a rolling update, its twin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColorServices {
    pub rest: Option<Side>,
    pub twin: Option<Side>,
}

impl SwarmDriver {
    /// The services of `color` of `service`, found by their labels.
    pub async fn color_services(&self, service: &str, color: Color) -> Result<ColorServices, DockerError> {
        let mut out = ColorServices::default();
        for s in self.services(Some(service)).await? {
            let spec = s.spec.unwrap_or_default();
            let l = spec.labels.clone().unwrap_or_default();
            if l.get(labels::COLOR).map(String::as_str) != Some(color.as_str()) {
                continue;
            }
            let side = Side {
                name: spec.name.clone().unwrap_or_default(),
                hash: read_labels(
                    l.get(labels::SPEC_JSON),
                    l.get(labels::SPEC).map_or("", |h| h),
                    self.docker.env_key(),
                )
                .0,
                replicas: current_replicas(&spec).max(0) as u32,
            };
            if l.contains_key(TWIN) {
                out.twin = Some(side);
            } else {
                out.rest = Some(side);
            }
        }
        Ok(out)
    }

    /// The name of the color's own service: the one it has, else the one
    /// of the two a twin does not hold.
    pub(super) async fn rest_name(&self, service: &str, color: Color) -> Result<String, DockerError> {
        let found = self.color_services(service, color).await?;
        Ok(match (found.rest, found.twin) {
            (Some(r), _) => r.name,
            (None, Some(t)) => other_name(service, color, &t.name),
            (None, None) => super::service_name(service, color),
        })
    }

    /// Makes the twin run `replicas` tasks of `spec`: created under the
    /// name the color's service does not use, or scaled. A twin of
    /// another spec is refused: the engine removes it first.
    pub async fn ensure_twin(
        &self,
        spec: &ContainerSpec,
        replicas: u32,
        placement: &BTreeMap<String, String>,
        commit: &str,
    ) -> Result<(), DockerError> {
        let found = self.color_services(&spec.service, spec.color).await?;
        let hash = spec.hash();
        match found.twin {
            Some(t) if t.hash == hash => self.set_replicas(&t.name, replicas).await,
            Some(t) => Err(DockerError::Swarm {
                service: spec.service.clone(),
                color: spec.color.to_string(),
                message: format!(
                    "the rolling update's service {} runs another spec; remove it first",
                    t.name
                ),
            }),
            None => {
                super::unsupported::unsupported(spec)?;
                let name = match &found.rest {
                    Some(r) => other_name(&spec.service, spec.color, &r.name),
                    None => super::service_name(&spec.service, spec.color),
                };
                let want = Want {
                    name: name.clone(),
                    twin: true,
                    spec,
                    hash,
                    replicas,
                    placement,
                    commit,
                    secrets: self.ensure_secrets(spec).await?,
                };
                let body = self.service_spec(&want);
                let auth = self.docker.credentials_for(&spec.image).await;
                call("create service", &name, self.docker.client().create_service(body, auth))
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Sets the replicas of the service `name` (one of teal's), leaving
    /// its tasks' template as it is: only as many tasks start or stop.
    pub async fn set_replicas(&self, name: &str, replicas: u32) -> Result<(), DockerError> {
        let Some((version, mut spec)) = self.inspect(name).await? else {
            return Ok(());
        };
        if current_replicas(&spec) == replicas as i64 {
            return Ok(());
        }
        spec.mode = Some(replicated(replicas));
        self.update(name, version, spec).await
    }

    /// The end of a rolling update: the color's old service goes (its
    /// tasks are gone by now) and the twin becomes the color's service.
    /// Only the twin's own labels change, so none of its tasks restarts.
    pub async fn promote_twin(&self, service: &str, color: Color) -> Result<(), DockerError> {
        let found = self.color_services(service, color).await?;
        let Some(twin) = found.twin else {
            return Ok(());
        };
        if let Some(rest) = found.rest {
            self.delete(&rest.name).await?;
        }
        let Some((version, mut spec)) = self.inspect(&twin.name).await? else {
            return Ok(());
        };
        if let Some(l) = spec.labels.as_mut() {
            l.remove(TWIN);
        }
        self.update(&twin.name, version, spec).await
    }

    /// How many tasks of the service `name` run, those Swarm is stopping
    /// included.
    pub async fn still_running(&self, name: &str) -> Result<usize, DockerError> {
        let opts = ListTasksOptions {
            filters: Some([("service".to_string(), vec![name.to_string()])].into()),
        };
        let tasks = call("list tasks", name, self.docker.client().list_tasks(Some(opts))).await?;
        Ok(tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .count())
    }

    /// Removes the twin of `color`, if there is one.
    pub async fn remove_twin(&self, service: &str, color: Color) -> Result<(), DockerError> {
        match self.color_services(service, color).await?.twin {
            Some(t) => self.delete(&t.name).await,
            None => Ok(()),
        }
    }
}

/// The one of `<service>-<color>` and `<service>-<color>-next` that is not
/// `name`.
fn other_name(service: &str, color: Color, name: &str) -> String {
    let base = super::service_name(service, color);
    if name == base {
        format!("{base}-next")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twin_takes_the_name_the_color_does_not_use() {
        assert_eq!(other_name("web", Color::Blue, "web-blue"), "web-blue-next");
        assert_eq!(other_name("web", Color::Blue, "web-blue-next"), "web-blue");
    }
}
