//! The Docker driver (bollard): observe the containers teal labelled, and
//! converge one color of one service to its desired container spec. It
//! never touches a container without the `teal.service` label.

mod image;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, HostConfig, NetworkCreateRequest, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;

use crate::plan::ObservedContainer;
use crate::spec::container::{labels, ContainerSpec};
use crate::spec::{Color, PerColor};

/// Time any single Docker API call may take (pulls and builds excepted).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Grace period for a container to stop before it is killed.
const STOP_GRACE_SECS: i32 = 10;

/// Containers teal owns, per service and color, sorted by replica.
pub type Containers = BTreeMap<String, PerColor<Vec<ObservedContainer>>>;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach Docker at {endpoint}: {message}. Is dockerd running, and may this user use its socket (group docker)?")]
    Connect { endpoint: String, message: String },
    #[error("Docker: {action} {target}: {message}")]
    Api {
        action: &'static str,
        target: String,
        message: String,
    },
    #[error("Docker: {action} {target} did not answer within {}s", .secs)]
    Timeout {
        action: &'static str,
        target: String,
        secs: u64,
    },
    #[error("container {name} exists but teal did not create it (no teal.service label): remove or rename it; teal never touches containers it did not create")]
    Foreign { name: String },
    #[error("container {name} belongs to another teal instance (teal.owner={owner:?}, this one manages network {network:?}); give the service another name or stop that instance")]
    OtherOwner {
        name: String,
        owner: String,
        network: String,
    },
    #[error("image {image} is not present locally and could not be pulled: {message}")]
    Pull { image: String, message: String },
    #[error("building image {tag}: {message}")]
    Build { tag: String, message: String },
}

/// A connection to one Docker engine and the network teal manages on it.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    client: Docker,
    network: String,
}

/// Runs one Docker call with a timeout, naming what it was about on error.
async fn call<T>(
    action: &'static str,
    target: &str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, DockerError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DockerError::Api {
            action,
            target: target.to_string(),
            message: message(&e),
        }),
        Err(_) => Err(DockerError::Timeout {
            action,
            target: target.to_string(),
            secs: CALL_TIMEOUT.as_secs(),
        }),
    }
}

/// The engine's own message when there is one, not bollard's wrapping.
fn message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, status_code } => {
            format!("{message} (HTTP {status_code})")
        }
        other => other.to_string(),
    }
}

/// The spec's env plus `TEAL_SERVICE` and `TEAL_COLOR`, so an app can say
/// which color it is.
fn env(spec: &ContainerSpec) -> Vec<String> {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("TEAL_SERVICE={}", spec.service));
    env.push(format!("TEAL_COLOR={}", spec.color));
    env
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }
    )
}

impl DockerDriver {
    /// Connects to `endpoint` (`unix:///path` or `tcp://host:port`), or by
    /// the `DOCKER_HOST` convention when `None`, and negotiates the API
    /// version with the engine.
    pub async fn connect(endpoint: Option<&str>, network: &str) -> Result<DockerDriver, DockerError> {
        let shown = endpoint
            .map(String::from)
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let connect_err = |e: bollard::errors::Error| DockerError::Connect {
            endpoint: shown.clone(),
            message: message(&e),
        };
        let client = match endpoint {
            None => Docker::connect_with_defaults(),
            Some(e) if e.starts_with("unix://") || e.starts_with('/') => {
                Docker::connect_with_unix(e, 120, bollard::API_DEFAULT_VERSION)
            }
            Some(e) => Docker::connect_with_http(e, 120, bollard::API_DEFAULT_VERSION),
        }
        .map_err(connect_err)?;
        let client = tokio::time::timeout(Duration::from_secs(10), client.negotiate_version())
            .await
            .map_err(|_| DockerError::Connect {
                endpoint: shown.clone(),
                message: "no answer within 10s".into(),
            })?
            .map_err(connect_err)?;
        Ok(DockerDriver {
            client,
            network: network.to_string(),
        })
    }

    /// The managed network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Creates the managed bridge network when it does not exist.
    pub async fn ensure_network(&self) -> Result<(), DockerError> {
        self.ensure_named_network(&self.network).await
    }

    /// Creates a bridge network labelled as teal's when it does not exist.
    async fn ensure_named_network(&self, name: &str) -> Result<(), DockerError> {
        match self
            .client
            .inspect_network(name, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::Api {
                    action: "inspect network",
                    target: name.to_string(),
                    message: message(&e),
                })
            }
        }
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([("teal.managed".to_string(), "true".to_string())])),
            ..Default::default()
        };
        call("create network", name, self.client.create_network(req)).await?;
        Ok(())
    }

    /// Removes the managed network if teal created it (for `demo --clean`
    /// and tests). A missing network is fine.
    pub async fn remove_network(&self) -> Result<(), DockerError> {
        match self
            .client
            .inspect_network(&self.network, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
        {
            Ok(n)
                if n.labels
                    .as_ref()
                    .and_then(|l| l.get("teal.managed"))
                    .is_some_and(|v| v == "true") =>
            {
                call(
                    "remove network",
                    &self.network,
                    self.client.remove_network(&self.network),
                )
                .await
            }
            _ => Ok(()),
        }
    }

    /// Every container teal labelled, in any state.
    pub async fn observe(&self) -> Result<Containers, DockerError> {
        let mut out = Containers::new();
        for c in self.list(&[]).await? {
            if let Some((service, color, obs)) = self.observed(&c) {
                out.entry(service).or_default().get_mut(color).push(obs);
            }
        }
        for per in out.values_mut() {
            per.blue.sort_by_key(|c| c.replica);
            per.green.sort_by_key(|c| c.replica);
        }
        Ok(out)
    }

    /// teal-labelled containers matching extra `label=value` filters.
    async fn list(&self, extra: &[(&str, &str)]) -> Result<Vec<ContainerSummary>, DockerError> {
        let mut label = vec![
            labels::SERVICE.to_string(),
            format!("{}={}", labels::OWNER, self.network),
        ];
        label.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), label)])),
            ..Default::default()
        };
        call(
            "list containers",
            "owned by this teal",
            self.client.list_containers(Some(opts)),
        )
        .await
    }

    fn observed(&self, c: &ContainerSummary) -> Option<(String, Color, ObservedContainer)> {
        let l = c.labels.as_ref()?;
        let service = l.get(labels::SERVICE)?.clone();
        let color: Color = l.get(labels::COLOR)?.parse().ok()?;
        let replica = l.get(labels::REPLICA).and_then(|r| r.parse().ok()).unwrap_or(u32::MAX);
        let name = c.names.as_ref()?.first()?.trim_start_matches('/').to_string();
        let addr = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .and_then(|n| {
                // The managed network, else the one the spec named.
                let ip = |e: &bollard::models::EndpointSettings| e.ip_address.clone().filter(|ip| !ip.is_empty());
                n.get(&self.network).and_then(ip).or_else(|| n.values().find_map(ip))
            })
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
        let obs = ObservedContainer {
            name,
            replica,
            image: l
                .get(labels::IMAGE)
                .cloned()
                .or_else(|| c.image.clone())
                .unwrap_or_default(),
            spec_hash: l.get(labels::SPEC).cloned().unwrap_or_default(),
            running,
            commit: l.get(labels::COMMIT).cloned(),
            addr: addr.filter(|_| running),
            spec: ContainerSpec::from_label(l.get(labels::SPEC_JSON), l.get(labels::SPEC).map_or("", |h| h)),
        };
        Some((service, color, obs))
    }

    /// Makes replicas `0..replicas` of `spec` exist and run: creates missing
    /// ones, replaces those whose `teal.spec` differs, starts stopped ones.
    /// Idempotent. Returns the color's containers afterwards.
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
                    if l.get(labels::SPEC) != Some(&hash) {
                        self.remove(&name).await?;
                        self.create(spec, n, &hash, commit).await?;
                    } else if !c.state.as_ref().and_then(|s| s.running).unwrap_or(false) {
                        call(
                            "start container",
                            &name,
                            self.client.start_container(&name, None::<StartContainerOptions>),
                        )
                        .await?;
                    }
                }
            }
        }
        let svc = spec.service.as_str();
        let all = self.observe().await?;
        Ok(all.get(svc).map(|p| p.get(spec.color).clone()).unwrap_or_default())
    }

    async fn create(&self, spec: &ContainerSpec, n: u32, hash: &str, commit: &str) -> Result<(), DockerError> {
        if let Some(net) = spec.network.as_deref().filter(|n| *n != self.network) {
            self.ensure_named_network(net).await?;
        }
        let name = spec.container_name(n);
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
            image: Some(spec.image.clone()),
            env: Some(env(spec)),
            cmd: spec.command.clone(),
            labels: Some(l),
            host_config: Some(HostConfig {
                restart_policy: Some(RestartPolicy {
                    name: Some(restart),
                    maximum_retry_count: None,
                }),
                binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
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
        call(
            "start container",
            &name,
            self.client.start_container(&name, None::<StartContainerOptions>),
        )
        .await
    }

    async fn remove(&self, name: &str) -> Result<(), DockerError> {
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

    async fn of_color(&self, service: &str, color: Option<Color>) -> Result<Vec<(String, u32, bool)>, DockerError> {
        let c = color.map(|c| c.to_string());
        let mut filters = vec![(labels::SERVICE, service)];
        if let Some(c) = &c {
            filters.push((labels::COLOR, c.as_str()));
        }
        let found = self.list(&filters).await?;
        Ok(found
            .iter()
            .filter_map(|s| self.observed(s))
            .map(|(_, _, o)| (o.name, o.replica, o.running))
            .collect())
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
        Ok(())
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
        Ok(())
    }

    /// Removes every container of the service.
    pub async fn remove_service(&self, service: &str) -> Result<(), DockerError> {
        for (name, _, _) in self.of_color(service, None).await? {
            self.remove(&name).await?;
        }
        Ok(())
    }

    async fn stop(&self, name: &str) -> Result<(), DockerError> {
        let opts = StopContainerOptions {
            t: Some(STOP_GRACE_SECS),
            ..Default::default()
        };
        call("stop container", name, self.client.stop_container(name, Some(opts))).await
    }

    /// Runs `cmd` inside `container` and returns its exit code.
    pub async fn exec(&self, container: &str, cmd: &[String], timeout: Duration) -> Result<i64, DockerError> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        use futures_util::StreamExt;
        let run = async {
            let opts = CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            };
            let exec = self.client.create_exec(container, opts).await?;
            if let StartExecResults::Attached { mut output, .. } = self.client.start_exec(&exec.id, None).await? {
                while output.next().await.is_some() {}
            }
            let info = self.client.inspect_exec(&exec.id).await?;
            Ok::<_, bollard::errors::Error>(info.exit_code.unwrap_or(-1))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(e)) => Err(DockerError::Api {
                action: "exec in",
                target: container.to_string(),
                message: message(&e),
            }),
            Err(_) => Err(DockerError::Timeout {
                action: "exec in",
                target: container.to_string(),
                secs: timeout.as_secs(),
            }),
        }
    }
}
