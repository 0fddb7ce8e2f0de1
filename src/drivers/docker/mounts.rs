//! Bind mounts as Docker will mount them. Docker resolves a bind's source
//! path afresh at every start, so the path the host policy admitted with
//! the commit may point elsewhere by then (a directory replaced by a
//! symlink). Containers get the resolved path, checked again when created,
//! before and after each start; the spec (and its hash) keeps the path as
//! written, so resolving changes no container's identity.

use std::path::{Path, PathBuf};

use bollard::models::MountPointTypeEnum;
use bollard::query_parameters::{InspectContainerOptions, StartContainerOptions, StopContainerOptions};

use super::{call, DockerDriver, DockerError};
use crate::drivers::paths;
use crate::policy::{self, Policy};
use crate::spec::container::{labels, ContainerSpec};

/// The host policy's bind rules, checked whenever Docker mounts.
#[derive(Debug, Clone)]
pub struct MountRules {
    pub policy: Policy,
    /// The engine's socket paths: never mounted, whatever the policy.
    pub docker_sockets: Vec<PathBuf>,
    /// Where teal writes secrets delivered as files
    /// (`state_dir/secrets`); `None`: no such secrets on this driver.
    pub secrets_dir: Option<PathBuf>,
}

impl Default for MountRules {
    /// No bind mounts, as a host config without `policy.volumes` says.
    fn default() -> MountRules {
        MountRules {
            policy: Policy::default(),
            docker_sockets: vec![PathBuf::from("/var/run/docker.sock"), PathBuf::from("/run/docker.sock")],
            secrets_dir: None,
        }
    }
}

impl MountRules {
    /// Why `source` is refused, resolved on this host now. Blocking.
    fn refusal(&self, source: &str) -> Option<String> {
        let host = policy::Host {
            docker_sockets: &self.docker_sockets,
            resolve: &paths::resolve,
            swarm: false,
        };
        policy::bind_refusal(source, &self.policy, &host)
    }

    /// `volumes` as Docker gets them: each bind source resolved now, so
    /// Docker mounts what was checked; the first refused one as
    /// `(source, why)`. Blocking.
    fn resolve(&self, volumes: &[String]) -> Result<Vec<String>, (String, String)> {
        volumes
            .iter()
            .map(|v| match v.split_once(':') {
                Some((source, rest)) if source.starts_with('/') => {
                    if let Some(why) = self.refusal(source) {
                        return Err((source.to_string(), why));
                    }
                    let real = paths::resolve(&policy::normalize(Path::new(source)));
                    Ok(format!("{}:{rest}", real.display()))
                }
                _ => Ok(v.clone()),
            })
            .collect()
    }
}

impl DockerDriver {
    /// This driver, holding bind mounts to `rules` (the default: none).
    pub fn with_mounts(mut self, rules: MountRules) -> DockerDriver {
        self.mounts = std::sync::Arc::new(rules);
        self
    }

    /// The binds to create container `name` of `spec` with: resolved and
    /// checked now.
    pub(super) async fn binds(&self, spec: &ContainerSpec, name: &str) -> Result<Vec<String>, DockerError> {
        let (rules, volumes) = (self.mounts.clone(), spec.volumes.clone());
        let resolved = tokio::task::spawn_blocking(move || rules.resolve(&volumes))
            .await
            .expect("resolving bind sources does not panic");
        resolved.map_err(|(_, reason)| DockerError::Mount {
            service: spec.service.clone(),
            color: spec.color.to_string(),
            container: name.to_string(),
            reason,
            done: "so teal did not create it",
        })
    }

    /// Starts container `name` when every bind source Docker will mount
    /// still resolves inside the policy, and checks again once it runs (a
    /// path swapped in between): one that fails then is stopped at once.
    pub(super) async fn start_checked(&self, name: &str) -> Result<(), DockerError> {
        self.check_mounts(name, "so teal did not start it").await?;
        call(
            "start container",
            name,
            self.client.start_container(name, None::<StartContainerOptions>),
        )
        .await?;
        if let Err(e) = self.check_mounts(name, "so teal stopped it").await {
            // Said before the stop, in case the stop itself fails. A
            // container that could not be looked at (Docker went away
            // just then) is stopped too: nothing unchecked serves.
            match e {
                DockerError::Mount { .. } => {
                    tracing::error!(container = name, error = %e, "stopping a container that mounted a path outside the policy")
                }
                _ => {
                    tracing::warn!(container = name, error = %e, "stopping a container whose mounts could not be checked after its start")
                }
            }
            let now = StopContainerOptions {
                t: Some(0),
                ..Default::default()
            };
            call("stop container", name, self.client.stop_container(name, Some(now))).await?;
            return Err(e);
        }
        Ok(())
    }

    /// The bind sources Docker reports for container `name`, each
    /// resolved now and checked against the policy.
    async fn check_mounts(&self, name: &str, done: &'static str) -> Result<(), DockerError> {
        let c = call(
            "inspect container",
            name,
            self.client.inspect_container(name, None::<InspectContainerOptions>),
        )
        .await?;
        let binds: Vec<(String, String)> = c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ == Some(MountPointTypeEnum::BIND))
            .filter_map(|m| Some((m.source?, m.destination.unwrap_or_default())))
            .collect();
        let rules = self.mounts.clone();
        // teal's own secret files pass as exactly what teal wrote;
        // every other bind is held to the policy.
        let refused = tokio::task::spawn_blocking(move || {
            binds
                .iter()
                .filter(|(s, d)| !rules.is_own(Path::new(s), d))
                .find_map(|(s, _)| rules.refusal(s))
        })
        .await
        .expect("resolving bind sources does not panic");
        let Some(reason) = refused else { return Ok(()) };
        let l = c.config.and_then(|c| c.labels).unwrap_or_default();
        let label = |k: &str| l.get(k).cloned().unwrap_or_default();
        Err(DockerError::Mount {
            service: label(labels::SERVICE),
            color: label(labels::COLOR),
            container: name.to_string(),
            reason,
            done,
        })
    }
}
