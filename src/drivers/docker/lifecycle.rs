//! Container lifecycle: create, start, replace, stop and remove the
//! replicas of one color, idempotently. Only containers carrying teal's
//! labels and this teal's owner id are ever touched.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions, StopContainerOptions};

use super::{call, is_not_found, message, DockerDriver, DockerError};
use crate::plan::ObservedContainer;
use crate::spec::container::{labels, read_labels, ContainerSpec};
use crate::spec::Color;

/// Grace period for a container to stop before it is killed.
const STOP_GRACE_SECS: i32 = 10;

/// The spec's env plus `TEAL_SERVICE` and `TEAL_COLOR`, so an app can say
/// which color it is.
pub(crate) fn env(spec: &ContainerSpec) -> Vec<String> {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // `as: env` secrets: the service file asked for them in env, knowing
    // `docker inspect` shows them.
    env.extend(
        spec.secrets
            .iter()
            .filter(|(_, m)| m.delivery == crate::spec::secret::Delivery::Env)
            .map(|(k, m)| format!("{k}={}", m.value.expose())),
    );
    env.push(format!("TEAL_SERVICE={}", spec.service));
    env.push(format!("TEAL_COLOR={}", spec.color));
    env
}

impl DockerDriver {
    /// Makes replicas `0..replicas` of `spec` exist and run: creates missing
    /// ones, replaces those whose `teal.spec` differs, starts stopped ones.
    /// Idempotent. Returns the color's replicas `0..replicas` afterwards.
    pub async fn ensure_color(
        &self,
        spec: &ContainerSpec,
        replicas: u32,
        commit: &str,
    ) -> Result<Vec<ObservedContainer>, DockerError> {
        let hash = spec.hash();
        for n in 0..replicas {
            let name = spec.container_name(n);
            match self
                .client
                .inspect_container(&name, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
            {
                Err(e) if is_not_found(&e) => self.create(spec, n, &hash, commit).await?,
                Err(e) => {
                    return Err(DockerError::Api {
                        action: "inspect container",
                        target: name,
                        message: message(&e),
                    })
                }
                Ok(c) => {
                    let l = c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default();
                    if !l.contains_key(labels::SERVICE) {
                        return Err(DockerError::Foreign { name });
                    }
                    if l.get(labels::OWNER) != Some(&self.network) {
                        let owner = l.get(labels::OWNER).cloned().unwrap_or_default();
                        return Err(DockerError::OtherOwner {
                            name,
                            owner,
                            network: self.network.clone(),
                        });
                    }
                    let (have, _) = read_labels(
                        l.get(labels::SPEC_JSON),
                        l.get(labels::SPEC).map_or("", |h| h),
                        &self.env_key,
                    );
                    if have != hash {
                        self.remove(&name).await?;
                        self.create(spec, n, &hash, commit).await?;
                    } else if !c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                        match self.start_checked(&name).await {
                            // A container no start can run again (dockerd
                            // stopped mid-start leaves a task behind, its
                            // network was made anew): a fresh one of the
                            // same spec can, and is just as good. Only
                            // Docker's refusal: a mount the policy refuses
                            // stays an error, and the container stays as
                            // evidence.
                            Err(e @ DockerError::Api { .. }) => {
                                tracing::warn!(container = %name, error = %e, "cannot start it: creating it again");
                                let ended = c.id.as_deref().is_some_and(|id| end_lost_task(&name, id));
                                if !ended && e.to_string().contains("id already in use") {
                                    tracing::warn!(container = %name, id = c.id.as_deref().unwrap_or(""), "Docker keeps a task of it that it no longer sees ('id already in use'), with its network address, and teal cannot see that task from here: end the containerd-shim with this -id (or restart containerd), or the next container given that address gets none of its traffic");
                                }
                                self.remove(&name).await?;
                                self.create(spec, n, &hash, commit).await?;
                            }
                            other => other?,
                        }
                    }
                }
            }
        }
        let svc = spec.service.as_str();
        self.sweep_secrets(svc).await?;
        Ok(std::mem::take(self.replicas(svc, replicas).await?.get_mut(spec.color)))
    }

    async fn create(&self, spec: &ContainerSpec, n: u32, hash: &str, commit: &str) -> Result<(), DockerError> {
        self.create_named(spec, n, &spec.container_name(n), hash, commit).await
    }

    /// Creates and starts replica `n` of `spec` as `name`.
    pub(super) async fn create_named(
        &self,
        spec: &ContainerSpec,
        n: u32,
        name: &str,
        hash: &str,
        commit: &str,
    ) -> Result<(), DockerError> {
        if let Some(net) = spec.network.as_deref().filter(|n| *n != self.network) {
            self.ensure_named_network(net).await?;
        }
        let _slot = self
            .creates
            .acquire()
            .await
            .expect("the create semaphore is never closed");
        let name = name.to_string();
        let mut binds = self.binds(spec, &name).await?;
        binds.extend(self.secret_binds(spec, &name).await?);
        let mut l: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        l.insert(labels::SERVICE.into(), spec.service.clone());
        l.insert(labels::COLOR.into(), spec.color.to_string());
        l.insert(labels::SPEC.into(), hash.to_string());
        l.insert(labels::COMMIT.into(), commit.to_string());
        l.insert(labels::REPLICA.into(), n.to_string());
        l.insert(labels::OWNER.into(), self.network.clone());
        l.insert(labels::IMAGE.into(), spec.image.clone());
        l.insert(labels::SPEC_JSON.into(), spec.to_label());
        let restart = match spec.restart {
            crate::spec::RestartPolicy::No => RestartPolicyNameEnum::NO,
            crate::spec::RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
            crate::spec::RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
            crate::spec::RestartPolicy::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
        };
        let body = ContainerCreateBody {
            image: Some(spec.runs().to_string()),
            env: Some(env(spec)),
            cmd: spec.command.clone(),
            labels: Some(l),
            host_config: Some(HostConfig {
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                binds: (!binds.is_empty()).then_some(binds),
                network_mode: Some(spec.network.clone().unwrap_or_else(|| self.network.clone())),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        call(
            "create container",
            &name,
            self.client.create_container(Some(opts), body),
        )
        .await?;
        self.start_checked(&name).await
    }

    /// Removes a container, and the task Docker lost of it if it has
    /// one (`lost_task`: only a container Docker says does not run can).
    pub(super) async fn remove(&self, name: &str) -> Result<(), DockerError> {
        let inspected = self
            .client
            .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
            .await;
        if let Ok(c) = inspected {
            let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            if let Some(id) = c.id.as_deref().filter(|_| !running) {
                end_lost_task(name, id);
            }
        }
        let opts = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        match self.client.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Docker is already removing it (a restart policy racing a stop):
            // done once it is gone.
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, .. }) => {
                self.wait_gone(name).await
            }
            Err(e) => Err(DockerError::Api {
                action: "remove container",
                target: name.to_string(),
                message: message(&e),
            }),
        }
    }

    async fn wait_gone(&self, name: &str) -> Result<(), DockerError> {
        for _ in 0..300 {
            match self
                .client
                .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
            {
                Err(e) if is_not_found(&e) => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(DockerError::Timeout {
            action: "remove container",
            target: name.to_string(),
            secs: 30,
        })
    }

    /// Removes every container this teal owns (for `teal demo --clean`).
    pub async fn remove_owned(&self) -> Result<Vec<String>, DockerError> {
        let mut removed = vec![];
        for c in self.list(&[]).await? {
            if let Some((_, _, o)) = self.observed(&c) {
                self.remove(&o.name).await?;
                removed.push(o.name);
            }
        }
        Ok(removed)
    }

    /// Stops and removes replicas of `color` with index `keep` and above.
    pub async fn remove_replicas(&self, service: &str, color: Color, keep: u32) -> Result<(), DockerError> {
        for (name, replica, _) in self.of_color(service, Some(color)).await? {
            if replica >= keep {
                self.stop(&name).await?;
                self.remove(&name).await?;
            }
        }
        self.sweep_secrets(service).await
    }

    /// Stops every container of `color`, keeping them for a fast restart.
    pub async fn stop_color(&self, service: &str, color: Color) -> Result<(), DockerError> {
        for (name, _, running) in self.of_color(service, Some(color)).await? {
            if running {
                self.stop(&name).await?;
            }
        }
        Ok(())
    }

    /// Removes every container of `color`.
    pub async fn remove_color(&self, service: &str, color: Color) -> Result<(), DockerError> {
        for (name, _, _) in self.of_color(service, Some(color)).await? {
            self.remove(&name).await?;
        }
        self.sweep_secrets(service).await
    }

    /// Removes every container of the service.
    pub async fn remove_service(&self, service: &str) -> Result<(), DockerError> {
        for (name, _, _) in self.of_color(service, None).await? {
            self.remove(&name).await?;
        }
        self.sweep_secrets(service).await
    }

    pub(super) async fn stop(&self, name: &str) -> Result<(), DockerError> {
        let opts = StopContainerOptions {
            t: Some(STOP_GRACE_SECS),
            ..Default::default()
        };
        call("stop container", name, self.client.stop_container(name, Some(opts))).await
    }
}

/// Ends the task Docker lost of container `id` (`lost_task`), saying so;
/// whether there was one teal could see.
fn end_lost_task(name: &str, id: &str) -> bool {
    let ended = super::lost_task::end(id);
    if !ended.is_empty() {
        tracing::warn!(container = %name, pids = ?ended, "ended the task Docker lost of it (left by a dockerd stopped mid-start): it held the container's network address, which Docker gives to the next container");
    }
    !ended.is_empty()
}
