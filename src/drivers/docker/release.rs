//! The release container: one container of the new image running the
//! service's release command with the color's env, network, volumes and
//! secrets, waited for, its exit code and last lines read, then removed.
//! Named `teal-<service>-release` and labelled `teal.release` (not
//! `teal.service`: it is no replica), so a teal restarted mid-run finds
//! it and waits for it rather than running the command a second time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;

use super::{call, is_not_found, message, DockerDriver, DockerError};
use crate::spec::container::{labels, ContainerSpec};

/// The label naming the service whose release a container runs.
pub const RELEASE: &str = "teal.release";

/// Lines of output kept from a release.
const TAIL: usize = 20;

/// How a release container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRun {
    /// `None`: killed at the timeout.
    pub exit_code: Option<i64>,
    /// Its last lines of stdout and stderr.
    pub output: Vec<String>,
}

/// What to run.
pub struct ReleaseSpec<'a> {
    /// The color's spec: image, env, network, volumes and secrets.
    pub spec: &'a ContainerSpec,
    pub command: &'a [String],
    /// Without the color's env and secrets (`release.env: none`).
    pub bare: bool,
    pub commit: &'a str,
    pub timeout: Duration,
}

impl DockerDriver {
    /// The release container's name for `service`.
    pub fn release_name(service: &str) -> String {
        format!("teal-{service}-release")
    }

    /// The commit of the release container of `service` that exists
    /// (running or exited), if one does.
    pub async fn release_container(&self, service: &str) -> Result<Option<String>, DockerError> {
        let name = Self::release_name(service);
        match self
            .client
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
        {
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(super::api_error("inspect container", &name, &e)),
            Ok(c) => {
                let l = c.config.and_then(|c| c.labels).unwrap_or_default();
                if l.get(RELEASE).map(String::as_str) != Some(service) || l.get(labels::OWNER) != Some(&self.network) {
                    return Err(DockerError::Foreign { name });
                }
                Ok(Some(l.get(labels::COMMIT).cloned().unwrap_or_default()))
            }
        }
    }

    /// Creates and starts the release container of `r` (removing one left
    /// by an earlier commit first).
    pub async fn start_release(&self, r: &ReleaseSpec<'_>) -> Result<(), DockerError> {
        let spec = r.spec;
        let name = Self::release_name(&spec.service);
        self.remove(&name).await?;
        self.sweep_release_secrets(&spec.service).await;
        // A first deploy's release runs before any color created the
        // service's own network.
        if let Some(net) = &spec.network {
            self.ensure_named_network(net).await?;
        }
        let mut binds = self.binds(spec, &name).await?;
        let mut env = vec![
            format!("TEAL_SERVICE={}", spec.service),
            format!("TEAL_COLOR={}", spec.color),
        ];
        if !r.bare {
            let release = ContainerSpec {
                service: format!(".release/{}", spec.service),
                ..spec.clone()
            };
            binds.extend(self.secret_binds(&release, &name).await?);
            env = super::env(spec);
        }
        let l = HashMap::from([
            (RELEASE.to_string(), spec.service.clone()),
            (labels::OWNER.to_string(), self.network.clone()),
            (labels::COMMIT.to_string(), r.commit.to_string()),
            (labels::IMAGE.to_string(), spec.image.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.runs().to_string()),
            env: Some(env),
            cmd: Some(r.command.to_vec()),
            labels: Some(l),
            host_config: Some(HostConfig {
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

    /// Waits for the release container of `service` to end, at most
    /// `timeout` (then kills it); its exit code and last lines. The
    /// container stays: `remove_release` removes it once the outcome is
    /// recorded.
    pub async fn wait_release(&self, service: &str, timeout: Duration) -> Result<ReleaseRun, DockerError> {
        let name = Self::release_name(service);
        let deadline = Instant::now() + timeout;
        let exit_code = loop {
            let c = call(
                "inspect container",
                &name,
                self.client.inspect_container(&name, None::<InspectContainerOptions>),
            )
            .await?;
            let state = c.state.unwrap_or_default();
            if state.status == Some(ContainerStateStatusEnum::CREATED) {
                // Made but never started (a teal killed between the two):
                // its command has not run, so it runs now; an exit code
                // read here would say 0 for a migration that never ran.
                self.start_checked(&name).await?;
                continue;
            }
            if !state.running.unwrap_or(false) && !state.restarting.unwrap_or(false) {
                break state.exit_code;
            }
            if Instant::now() >= deadline {
                self.stop_now(&name).await?;
                break None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        Ok(ReleaseRun {
            exit_code,
            output: self.tail(&name).await?,
        })
    }

    /// Removes the release container of `service` and its secret files.
    pub async fn remove_release(&self, service: &str) -> Result<(), DockerError> {
        self.remove(&Self::release_name(service)).await?;
        self.sweep_release_secrets(service).await;
        Ok(())
    }

    async fn stop_now(&self, name: &str) -> Result<(), DockerError> {
        let now = bollard::query_parameters::StopContainerOptions {
            t: Some(0),
            ..Default::default()
        };
        call("stop container", name, self.client.stop_container(name, Some(now))).await
    }

    /// The last `TAIL` lines the container printed.
    async fn tail(&self, name: &str) -> Result<Vec<String>, DockerError> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: TAIL.to_string(),
            ..Default::default()
        };
        let mut logs = self.client.logs(name, Some(opts));
        let mut text = String::new();
        let read = async {
            while let Some(chunk) = logs.next().await {
                match chunk {
                    Ok(out) => text.push_str(&String::from_utf8_lossy(&out.into_bytes())),
                    Err(e) => return Err(message(&e)),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(30), read).await {
            Ok(Ok(())) => {}
            Ok(Err(m)) => {
                return Err(DockerError::Api {
                    action: "read logs of",
                    target: name.to_string(),
                    message: m,
                })
            }
            Err(_) => {
                return Err(DockerError::Timeout {
                    action: "read logs of",
                    target: name.to_string(),
                    secs: 30,
                })
            }
        }
        let lines: Vec<String> = text.lines().map(String::from).collect();
        Ok(lines[lines.len().saturating_sub(TAIL)..].to_vec())
    }

    /// Removes the secret dirs of `service`'s release containers.
    async fn sweep_release_secrets(&self, service: &str) {
        let Some(root) = self.mounts.secrets_dir.clone() else {
            return;
        };
        let prefix = format!("{}-", Self::release_name(service));
        let dir = root.join(".release").join(service);
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else { return };
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        })
        .await;
    }
}
