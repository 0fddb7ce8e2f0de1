//! The Docker driver (bollard): observe the containers teal labelled, and
//! converge one color of one service to its desired container spec. It
//! never touches a container without the `teal.service` label.

//!
//! Split by concern: `observe` (what runs), `lifecycle` (create, start,
//! stop, remove), `mounts` (bind sources checked as Docker mounts them),
//! `network`, `exec` (checks inside a container), `image` (build,
//! remove), `pull` with `auth` (whose credentials) and `progress`.

pub mod auth;
mod exec;
pub mod gc;
mod image;
mod lifecycle;
mod lost_task;
mod mounts;
mod network;
mod observe;
mod progress;
mod pull;
mod release;
mod replace;
mod secrets;
mod watch;

pub(crate) use lifecycle::env;
pub use mounts::MountRules;
pub use pull::PullSettings;
pub use release::{ReleaseRun, ReleaseSpec};

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bollard::Docker;

use crate::plan::ObservedContainer;
use crate::spec::env_seal::EnvKey;
use crate::spec::PerColor;

/// Time any single Docker API call may take (pulls and builds excepted).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    #[error("image {image} could not be pulled: {message}")]
    Pull { image: String, message: String },
    #[error("building image {tag}: {message}")]
    Build { tag: String, message: String },
    #[error("docker.mode: swarm needs a Swarm manager, but the engine at {endpoint} is not one (swarm state: {state}): make it one with `docker swarm init --advertise-addr <this node's address>` (or join it as a manager: `docker swarm join-token manager` on a manager), or set docker.mode: engine")]
    NotManager { endpoint: String, state: String },
    #[error("{service}/{color}: {message}")]
    Swarm {
        service: String,
        color: String,
        message: String,
    },
    /// A bind source resolves outside the host policy when Docker is about
    /// to mount it (or just did): the path changed after admission.
    #[error("{service}/{color}: container {container}: {reason} now, {done} (traffic stays where it was). The path changed on this host after the commit was admitted (a directory replaced by a symlink?): look at it before deploying again")]
    Mount {
        service: String,
        color: String,
        container: String,
        reason: String,
        done: &'static str,
    },
    /// The Swarm manager answers, but the swarm has no leader: too few
    /// managers are online. Nothing about teal's services can be read or
    /// changed until more than half of them are back.
    #[error("Swarm lost quorum: no manager is leader, so teal cannot {action} {target} (Docker: {message}). The proxy keeps its routes and teal retries each poll; bring managers back until more than half are online (`docker node ls` on a manager), or if they are gone for good run `docker swarm init --force-new-cluster` on this one")]
    NoQuorum {
        action: &'static str,
        target: String,
        message: String,
    },
}

impl DockerError {
    /// Whether this is the swarm without a leader (it heals by itself
    /// when managers come back, so callers retry rather than back off).
    pub fn is_no_quorum(&self) -> bool {
        matches!(self, DockerError::NoQuorum { .. })
    }
}

/// A connection to one Docker engine and the network teal manages on it.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    client: Docker,
    network: String,
    /// Containers created at once: the engine creates a hundred requests
    /// made together slower than the same in batches of a few.
    creates: std::sync::Arc<tokio::sync::Semaphore>,
    /// What bind sources may resolve to when Docker mounts them.
    mounts: std::sync::Arc<MountRules>,
    /// The host's key for env digests, to read an older teal's labels
    /// (see `ContainerSpec::from_label`).
    env_key: EnvKey,
    /// Whose credentials pulls send, and how long they may take.
    pulls: std::sync::Arc<PullSettings>,
    /// The daemon's: Docker's events, which let an idle pass reuse the
    /// last listing (`watch`).
    watch: Option<std::sync::Arc<watch::Watch>>,
    /// The engine's platform, read once (`docker info` lists every
    /// container: at hundreds, a pull's check paid for it each time).
    platform: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

/// How many containers are created at the same time.
const PARALLEL_CREATES: usize = 8;

/// Runs one Docker call with a timeout, naming what it was about on error.
pub(crate) async fn call<T>(
    action: &'static str,
    target: &str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, DockerError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(api_error(action, target, &e)),
        Err(_) => Err(DockerError::Timeout {
            action,
            target: target.to_string(),
            secs: CALL_TIMEOUT.as_secs(),
        }),
    }
}

/// The engine's own message when there is one, not bollard's wrapping.
pub(crate) fn message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, status_code } => {
            format!("{message} (HTTP {status_code})")
        }
        other => other.to_string(),
    }
}

/// An engine's answer as an error; the swarm's "no leader" answer as
/// `NoQuorum`, whatever the call was.
pub(crate) fn api_error(action: &'static str, target: &str, e: &bollard::errors::Error) -> DockerError {
    let message = message(e);
    let target = target.to_string();
    if says_no_quorum(&message) {
        DockerError::NoQuorum {
            action,
            target,
            message,
        }
    } else {
        DockerError::Api {
            action,
            target,
            message,
        }
    }
}

/// Docker's words for a swarm without a leader: "The swarm does not have
/// a leader. It's possible that too few managers are online. ..." (and
/// swarmkit's own "lost quorum" while a manager finds that out).
fn says_no_quorum(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not have a leader") || m.contains("too few managers are online") || m.contains("lost quorum")
}

pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
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
            creates: std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_CREATES)),
            mounts: std::sync::Arc::new(MountRules::default()),
            env_key: EnvKey::default(),
            pulls: std::sync::Arc::new(PullSettings::default()),
            watch: None,
            platform: Default::default(),
        })
    }

    /// Follows Docker's events for teal's containers, so that an idle pass
    /// (`observe_idle`) reuses the last listing while nothing changed.
    pub fn with_watch(mut self) -> DockerDriver {
        let owner = format!("{}={}", crate::spec::container::labels::OWNER, self.network);
        self.watch = Some(watch::Watch::start(self.client.clone(), owner));
        self
    }

    /// Reads labels with the host's key (`state_dir/env.key`).
    pub fn with_env_key(self, env_key: EnvKey) -> DockerDriver {
        DockerDriver { env_key, ..self }
    }

    pub(crate) fn env_key(&self) -> &EnvKey {
        &self.env_key
    }

    /// The managed network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The engine's API client, for the Swarm driver (same connection).
    pub(crate) fn client(&self) -> &Docker {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status_code: u16, message: &str) -> bollard::errors::Error {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message: message.into(),
        }
    }

    #[test]
    fn a_swarm_without_a_leader_reads_as_lost_quorum() {
        let no_leader = answer(
            500,
            "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.",
        );
        let e = api_error("list services", "owned by this teal", &no_leader);
        assert!(e.is_no_quorum(), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(
                "Swarm lost quorum: no manager is leader, so teal cannot list services owned by this teal"
            ) && text.contains("The swarm does not have a leader")
                && text.contains("retries each poll"),
            "{text}"
        );
        let other = api_error("inspect service", "web-blue", &answer(500, "rpc error: something else"));
        assert!(!other.is_no_quorum());
        assert_eq!(
            other.to_string(),
            "Docker: inspect service web-blue: rpc error: something else (HTTP 500)"
        );
    }
}
