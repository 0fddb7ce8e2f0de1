//! The Swarm driver (`docker.mode: swarm`, DESIGN section 10): each color
//! of a service is a Swarm service `<service>-<color>`, its tasks are the
//! replicas. Swarm places, restarts and reschedules them; teal reads each
//! running task's node address and published port, and the engine probes
//! and routes those endpoints exactly as it does containers.
//!
//! Split by concern: `service` (the service spec, create, update, scale,
//! remove) and `tasks` (what runs where, as observed replicas). Images and
//! `exec` checks go through the engine driver on the same connection: an
//! `exec` probe reaches only the tasks on the manager's own node.

mod secrets;
mod service;
mod tasks;
mod twin;
mod unsupported;

pub use twin::{ColorServices, Side};

use std::time::Duration;

use bollard::query_parameters::ListServicesOptions;

use super::docker::{call, DockerDriver, DockerError};
use crate::spec::container::labels;
use crate::spec::Color;

/// A connection to a Swarm manager, and the owner name of teal's services
/// (the host config's `docker.network`, as on containers).
#[derive(Debug, Clone)]
pub struct SwarmDriver {
    docker: DockerDriver,
}

/// Said at the start of a daemon in swarm mode and under `teal status`'s
/// tasks: Swarm cannot bind a published port to one address (its
/// `EndpointPortConfig` has no host IP; moby/moby#26696), so what stops
/// others from reaching an idle or preview color past the proxy is the
/// nodes' firewall.
pub const PUBLISHED_EVERYWHERE: &str = "swarm mode: each task's port is published on every interface of its node (Swarm cannot bind it to one address), so idle and preview colors are reachable past the proxy and preview.allow unless each node's firewall drops those ports for all but the proxy: see the rule in README \"Swarm mode\"";

/// The Swarm service of one color: `<service>-<color>`.
pub fn service_name(service: &str, color: Color) -> String {
    format!("{service}-{color}")
}

/// The label (on the service only) that marks a rolling update's twin
/// service (see `twin`).
const TWIN: &str = "teal.twin";

/// How often a wait polls the swarm.
const POLL: Duration = Duration::from_millis(250);

impl SwarmDriver {
    /// Uses `docker`'s engine as a Swarm manager; refuses an engine that is
    /// not one (not in a swarm, or a worker), saying how to make it one.
    pub async fn on_manager(docker: DockerDriver, endpoint: &str) -> Result<SwarmDriver, DockerError> {
        let info = call("read system info", endpoint, docker.client().info()).await?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.control_available != Some(true) {
            let state = swarm
                .local_node_state
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "inactive".into());
            let state = if state == "active" {
                "active, as a worker".to_string()
            } else {
                state
            };
            return Err(DockerError::NotManager {
                endpoint: endpoint.to_string(),
                state,
            });
        }
        Ok(SwarmDriver { docker })
    }

    /// The engine driver on the same connection (images, exec).
    pub fn docker(&self) -> &DockerDriver {
        &self.docker
    }

    fn owner(&self) -> &str {
        self.docker.network()
    }

    /// teal's Swarm services (of this owner), optionally of one service.
    async fn services(&self, service: Option<&str>) -> Result<Vec<bollard::models::Service>, DockerError> {
        let mut label = vec![format!("{}={}", labels::OWNER, self.owner())];
        if let Some(s) = service {
            label.push(format!("{}={s}", labels::SERVICE));
        }
        let opts = ListServicesOptions {
            filters: Some([("label".to_string(), label)].into()),
            ..Default::default()
        };
        call(
            "list services",
            "owned by this teal",
            self.docker.client().list_services(Some(opts)),
        )
        .await
    }

    /// Waits until `color` of `service` has exactly `replicas` tasks, all
    /// running with spec `hash` and reachable (a port on a node), for at
    /// most `deadline`: in the color's own service, or with `twin` in a
    /// rolling update's twin. Past it, the error names the tasks' own
    /// errors (no node matches the placement, an image a node cannot pull).
    pub async fn settle(
        &self,
        service: &str,
        color: Color,
        twin: bool,
        hash: &str,
        replicas: u32,
        deadline: Duration,
    ) -> Result<(), DockerError> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let have: Vec<_> = self
                .observe_service(service)
                .await?
                .get(color)
                .clone()
                .into_iter()
                .filter(|t| t.twin == twin)
                .collect();
            let ready = have
                .iter()
                .filter(|t| t.running && t.spec_hash == hash && t.addr.is_some() && t.port.is_some())
                .count();
            if ready == replicas as usize && have.len() == replicas as usize {
                return Ok(());
            }
            // Scaled by hand while we wait: it would never settle, so
            // say so now and let the next pass put it back.
            let found = self.color_services(service, color).await?;
            let side = if twin { found.twin } else { found.rest };
            let set = side.as_ref().map(|s| s.replicas);
            if set != Some(replicas) {
                return Err(DockerError::Swarm {
                    service: service.to_string(),
                    color: color.to_string(),
                    message: match set {
                        Some(n) => format!(
                            "set to {n} replicas (not {replicas}) while its tasks were awaited: changed by hand; the next pass puts it back"
                        ),
                        None => "its Swarm service was removed while its tasks were awaited".to_string(),
                    },
                });
            }
            if tokio::time::Instant::now() >= until {
                let why = match side.map(|s| s.name) {
                    Some(n) => self.task_errors(&n).await,
                    None => String::new(),
                };
                return Err(DockerError::Swarm {
                    service: service.to_string(),
                    color: color.to_string(),
                    message: format!(
                        "{ready} of {replicas} tasks running the desired spec after {} ({} scheduled){why}",
                        crate::spec::duration::format(Duration::from_millis(
                            deadline.as_millis().div_ceil(100) as u64 * 100
                        )),
                        have.len()
                    ),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
