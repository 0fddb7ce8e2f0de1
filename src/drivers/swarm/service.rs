//! One color as a Swarm service: its spec (image, env, command, labels on
//! the service and on its tasks' containers, replicas, restart policy,
//! named volumes, placement as node-label constraints, the port published
//! in `mode=host` with no fixed number), and converging, scaling and
//! removing it. Only services carrying this teal's `teal.owner` are
//! touched.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec, Mount,
    MountTypeEnum, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec,
    TaskSpecPlacement, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{InspectServiceOptions, UpdateServiceOptions};

use super::SwarmDriver;
use crate::drivers::docker::{api_error, call, is_not_found, DockerError};
use crate::spec::container::{labels, read_labels, ContainerSpec};
use crate::spec::{Color, RestartPolicy};

/// The replica count a color had before it was scaled to 0 (stopped),
/// so a stopped color still reads as its replicas, stopped.
pub(super) const REPLICAS: &str = "teal.replicas";

/// Swarm durations are nanoseconds.
const SECOND: i64 = 1_000_000_000;

/// What a color's service is made of, beyond its container spec.
pub(super) struct Want<'a> {
    /// The Swarm service's name (see `twin` for why it varies).
    pub name: String,
    /// A rolling update's twin (labelled `teal.twin`).
    pub twin: bool,
    pub spec: &'a ContainerSpec,
    pub hash: String,
    pub replicas: u32,
    pub placement: &'a BTreeMap<String, String>,
    pub commit: &'a str,
    /// The Swarm secrets its tasks get as files (`ensure_secrets`).
    pub secrets: Vec<bollard::models::TaskSpecContainerSpecSecrets>,
}

impl SwarmDriver {
    /// Makes the service of `spec`'s color run `replicas` tasks of `spec`,
    /// placed by `placement` (node labels): creates it, or updates it when
    /// its spec, image, replicas or constraints differ (a hand-made
    /// `docker service scale` or `update` is put back). Idempotent; returns
    /// without waiting for the tasks (see `settle`).
    pub async fn ensure_color(
        &self,
        spec: &ContainerSpec,
        replicas: u32,
        placement: &BTreeMap<String, String>,
        commit: &str,
    ) -> Result<(), DockerError> {
        super::unsupported::unsupported(spec)?;
        let name = self.rest_name(&spec.service, spec.color).await?;
        let want = Want {
            name: name.clone(),
            twin: false,
            spec,
            hash: spec.hash(),
            replicas,
            placement,
            commit,
            secrets: self.ensure_secrets(spec).await?,
        };
        match self.inspect(&name).await? {
            None => {
                let body = self.service_spec(&want);
                let auth = self.docker.credentials_for(&spec.image).await;
                call("create service", &name, self.docker.client().create_service(body, auth)).await?;
            }
            Some((version, mut current)) => {
                if !differs(&current, &want) {
                    return Ok(());
                }
                let body = if same_tasks(&current, &want) {
                    // Only the replicas: the task template stays as it is
                    // (its commit label and constraints too), so the tasks
                    // that serve are not restarted. A new placement comes
                    // with the color's next spec change.
                    current.mode = Some(replicated(replicas));
                    current
                } else {
                    self.service_spec(&want)
                };
                self.update(&name, version, body).await?;
            }
        }
        Ok(())
    }

    /// Scales the service of `color` to `replicas` (0 stops the color, and
    /// remembers how many it had).
    pub async fn scale(&self, service: &str, color: Color, replicas: u32) -> Result<(), DockerError> {
        let name = self.rest_name(service, color).await?;
        let Some((version, mut spec)) = self.inspect(&name).await? else {
            return Ok(());
        };
        let now = current_replicas(&spec);
        if now == replicas as i64 {
            return Ok(());
        }
        if replicas == 0 {
            spec.labels
                .get_or_insert_with(Default::default)
                .insert(REPLICAS.into(), now.to_string());
        }
        spec.mode = Some(replicated(replicas));
        self.update(&name, version, spec).await
    }

    /// Removes the services of `color` (its own, and a rolling update's
    /// twin), if they exist.
    pub async fn remove_color(&self, service: &str, color: Color) -> Result<(), DockerError> {
        let found = self.color_services(service, color).await?;
        for name in [found.rest, found.twin].into_iter().flatten().map(|s| s.name) {
            self.delete(&name).await?;
        }
        Ok(())
    }

    pub(super) async fn delete(&self, name: &str) -> Result<(), DockerError> {
        if self.inspect(name).await?.is_none() {
            return Ok(());
        }
        match self.docker.client().delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error("remove service", name, &e)),
        }
    }

    /// Removes both colors' services.
    pub async fn remove_service(&self, service: &str) -> Result<(), DockerError> {
        for c in Color::ALL {
            self.remove_color(service, c).await?;
        }
        Ok(())
    }

    /// The service's version and spec, `None` when it does not exist.
    /// Refuses a service of that name teal does not own.
    pub(super) async fn inspect(&self, name: &str) -> Result<Option<(u64, ServiceSpec)>, DockerError> {
        let got = self
            .docker
            .client()
            .inspect_service(name, None::<InspectServiceOptions>)
            .await;
        let s = match got {
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(api_error("inspect service", name, &e)),
            Ok(s) => s,
        };
        let spec = s.spec.unwrap_or_default();
        let l = spec.labels.clone().unwrap_or_default();
        if !l.contains_key(labels::SERVICE) {
            return Err(DockerError::Foreign { name: name.into() });
        }
        if l.get(labels::OWNER).map(String::as_str) != Some(self.owner()) {
            return Err(DockerError::OtherOwner {
                name: name.into(),
                owner: l.get(labels::OWNER).cloned().unwrap_or_default(),
                network: self.owner().into(),
            });
        }
        let version = s.version.and_then(|v| v.index).unwrap_or_default();
        Ok(Some((version, spec)))
    }

    pub(super) async fn update(&self, name: &str, version: u64, spec: ServiceSpec) -> Result<(), DockerError> {
        let opts = UpdateServiceOptions {
            version: version as i32,
            ..Default::default()
        };
        // The nodes pull with the credentials this host would use.
        let image = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone());
        let auth = match image {
            Some(i) => self.docker.credentials_for(&i).await,
            None => None,
        };
        call(
            "update service",
            name,
            self.docker.client().update_service(name, spec, opts, auth),
        )
        .await
        .map(|_| ())
    }

    pub(super) fn service_spec(&self, w: &Want) -> ServiceSpec {
        let spec = w.spec;
        let mut l: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        l.insert(labels::SERVICE.into(), spec.service.clone());
        l.insert(labels::COLOR.into(), spec.color.to_string());
        l.insert(labels::SPEC.into(), w.hash.clone());
        l.insert(labels::COMMIT.into(), w.commit.to_string());
        l.insert(labels::OWNER.into(), self.owner().to_string());
        l.insert(labels::IMAGE.into(), spec.image.clone());
        l.insert(labels::SPEC_JSON.into(), spec.to_label());
        // On the service only: the tasks' template stays the same when the
        // twin becomes the color's own service, so none restarts.
        let mut on_service = l.clone();
        if w.twin {
            on_service.insert(super::TWIN.into(), "true".into());
        }
        ServiceSpec {
            name: Some(w.name.clone()),
            labels: Some(on_service),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(spec.image.clone()),
                    // The same labels as on the service, so `docker ps`
                    // filters find the tasks' containers too.
                    labels: Some(l),
                    env: Some(crate::drivers::docker::env(spec)),
                    // teal's `command` replaces the image's CMD, as on
                    // containers: Swarm calls that `args`.
                    args: spec.command.clone(),
                    secrets: (!w.secrets.is_empty()).then(|| w.secrets.clone()),
                    mounts: Some(spec.volumes.iter().filter_map(|v| mount(v)).collect()),
                    stop_grace_period: Some(10 * SECOND),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(condition(spec.restart)),
                    // Swarm's default waits 5 s before it replaces a task.
                    delay: Some(SECOND / 2),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(constraints(w.placement)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mode: Some(replicated(w.replicas)),
            // Only the idle color is ever updated in place (the engine
            // checks it before it takes traffic), so all tasks at once.
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(0),
                order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
                failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::CONTINUE),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                ports: Some(vec![EndpointPortConfig {
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    target_port: Some(spec.port as i64),
                    // No fixed number: each task gets a port of its own on
                    // its node; no routing mesh needed.
                    published_port: None,
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Whether the live service differs from what is wanted in what teal
/// converges: the spec hash, the task image (a hand `service update`), the
/// replicas (a hand `service scale`). Constraints are set with a new spec
/// only: changing them alone would restart serving tasks.
fn differs(current: &ServiceSpec, w: &Want) -> bool {
    !same_tasks(current, w) || current_replicas(current) != w.replicas as i64
}

/// Whether the service's tasks run the wanted spec: its `teal.spec` label
/// (an older teal's read as this teal hashes it, so an upgrade restarts no
/// task) and the image it really runs (not changed by hand).
fn same_tasks(current: &ServiceSpec, w: &Want) -> bool {
    let l = current.labels.clone().unwrap_or_default();
    let key = w.spec.env_key.unwrap_or_default();
    let (hash, _) = read_labels(l.get(labels::SPEC_JSON), l.get(labels::SPEC).map_or("", |h| h), &key);
    let image = current
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    hash == w.hash && strip_digest(&image) == w.spec.image
}

/// `placement` as Swarm node-label constraints.
fn constraints(placement: &BTreeMap<String, String>) -> Vec<String> {
    placement.iter().map(|(k, v)| format!("node.labels.{k}=={v}")).collect()
}

/// `image@sha256:...` as Swarm may record it, without the digest.
pub(super) fn strip_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(i, _)| i)
}

pub(super) fn current_replicas(spec: &ServiceSpec) -> i64 {
    spec.mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .unwrap_or(0)
}

pub(super) fn replicated(n: u32) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(n as i64),
        }),
        ..Default::default()
    }
}

fn condition(r: RestartPolicy) -> TaskSpecRestartPolicyConditionEnum {
    match r {
        RestartPolicy::No => TaskSpecRestartPolicyConditionEnum::NONE,
        RestartPolicy::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => TaskSpecRestartPolicyConditionEnum::ANY,
    }
}

/// A `name:/target[:ro]` named volume as a Swarm volume mount: each node
/// makes the volume when a task first needs it. (Bind mounts never get
/// here: see `unsupported`.)
fn mount(v: &str) -> Option<Mount> {
    let mut parts = v.split(':');
    let (source, target) = (parts.next()?, parts.next()?);
    Some(Mount {
        source: Some(source.into()),
        target: Some(target.into()),
        typ: Some(MountTypeEnum::VOLUME),
        read_only: Some(parts.next() == Some("ro")),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_volumes_are_volume_mounts_and_digests_are_ignored() {
        let m = mount("web-data:/data:ro").unwrap();
        assert_eq!(
            (m.typ, m.source.as_deref(), m.target.as_deref(), m.read_only),
            (Some(MountTypeEnum::VOLUME), Some("web-data"), Some("/data"), Some(true))
        );
        assert_eq!(mount("web-data:/x").unwrap().read_only, Some(false));
        assert!(mount("anonymous").is_none());
        assert_eq!(strip_digest("web:1@sha256:abc"), "web:1");
        assert_eq!(strip_digest("web:1"), "web:1");
    }
}
