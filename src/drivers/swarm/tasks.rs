//! What runs where: teal's Swarm services and their tasks, as the same
//! observed replicas the engine driver reports for containers. A task's
//! endpoint is its node's address and the port Swarm published for it on
//! that node, so the planner, the health checks and the proxy treat tasks
//! and containers alike.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{Node, Task, TaskState};
use bollard::query_parameters::{ListNodesOptions, ListTasksOptions};

use super::service::{strip_digest, REPLICAS};
use super::SwarmDriver;
use crate::drivers::docker::{call, Containers, DockerError};
use crate::plan::ObservedContainer;
use crate::spec::container::{labels, read_labels};
use crate::spec::env_seal::EnvKey;
use crate::spec::{Color, PerColor};

/// A node's name and the address its published ports answer on.
struct NodeAddr {
    name: String,
    addr: Option<IpAddr>,
}

impl SwarmDriver {
    /// Every task Swarm means to run (desired state `running`) of teal's
    /// services, per service and color. Replicas are numbered by slot
    /// order, so a hand-scaled service reads as extra or missing replicas.
    /// A color scaled to 0 reads as its former replicas, stopped.
    pub async fn observe(&self) -> Result<Containers, DockerError> {
        self.observe_of(None).await
    }

    /// One service's tasks, as `observe` reads them: what a step needs,
    /// without listing every other service's.
    pub async fn observe_service(&self, service: &str) -> Result<PerColor<Vec<ObservedContainer>>, DockerError> {
        Ok(self
            .observe_of(Some(service))
            .await?
            .remove(service)
            .unwrap_or_default())
    }

    async fn observe_of(&self, service: Option<&str>) -> Result<Containers, DockerError> {
        let services = self.services(service).await?;
        if service.is_none() {
            if let Err(e) = self.sweep_secrets(&services).await {
                tracing::warn!(error = %e, "could not remove unused Swarm secrets");
            }
        }
        let mut out = Containers::new();
        if services.is_empty() {
            return Ok(out);
        }
        let nodes = self.nodes().await?;
        let mut filters = HashMap::from([("desired-state".to_string(), vec!["running".to_string()])]);
        if service.is_some() {
            let ids = services.iter().filter_map(|s| s.id.clone()).collect();
            filters.insert("service".to_string(), ids);
        }
        let opts = ListTasksOptions { filters: Some(filters) };
        let tasks = call(
            "list tasks",
            "of teal's services",
            self.docker.client().list_tasks(Some(opts)),
        )
        .await?;
        for s in services {
            let spec = s.spec.unwrap_or_default();
            let l = spec.labels.unwrap_or_default();
            let (Some(service), Some(color)) = (
                l.get(labels::SERVICE).cloned(),
                l.get(labels::COLOR).and_then(|c| c.parse::<Color>().ok()),
            ) else {
                continue;
            };
            let twin = l.contains_key(super::TWIN);
            let name = spec.name.clone().unwrap_or_default();
            let mut mine: Vec<&Task> = tasks.iter().filter(|t| t.service_id == s.id).collect();
            mine.sort_by_key(|t| t.slot.unwrap_or(i64::MAX));
            let mut have: Vec<ObservedContainer> = mine
                .iter()
                .enumerate()
                .map(|(n, t)| ObservedContainer {
                    twin,
                    ..observed(&name, n as u32, t, &nodes, self.docker.env_key())
                })
                .collect();
            let scaled_to_zero = spec
                .mode
                .and_then(|m| m.replicated)
                .and_then(|r| r.replicas)
                .is_some_and(|r| r == 0);
            if have.is_empty() && scaled_to_zero {
                let before: u32 = l.get(REPLICAS).and_then(|r| r.parse().ok()).unwrap_or(0);
                have = (0..before)
                    .map(|n| stopped(&name, n, &l, self.docker.env_key()))
                    .collect();
            }
            // A color's own service first, then a rolling update's twin.
            let all = out.entry(service).or_default().get_mut(color);
            if twin {
                all.extend(have);
            } else {
                have.append(all);
                *all = have;
            }
        }
        Ok(out)
    }

    async fn nodes(&self) -> Result<HashMap<String, NodeAddr>, DockerError> {
        let nodes = call(
            "list nodes",
            "of the swarm",
            self.docker.client().list_nodes(None::<ListNodesOptions>),
        )
        .await?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| Some((n.id.clone()?, node_addr(&n))))
            .collect())
    }

    /// The latest errors of a service's tasks, as `; task web-blue.1:
    /// no suitable node (...)`, for a deploy that did not settle.
    pub(super) async fn task_errors(&self, service: &str) -> String {
        let opts = ListTasksOptions {
            filters: Some([("service".to_string(), vec![service.to_string()])].into()),
        };
        let Ok(mut tasks) = self.docker.client().list_tasks(Some(opts)).await else {
            return String::new();
        };
        tasks.sort_by_key(|t| std::cmp::Reverse(t.updated_at.clone().map(|d| d.to_string())));
        let mut seen = std::collections::BTreeSet::new();
        let mut out = String::new();
        for t in tasks {
            let st = t.status.unwrap_or_default();
            let why = st.err.filter(|e| !e.is_empty()).or(st.message).unwrap_or_default();
            let slot = t.slot.unwrap_or_default();
            if why.is_empty() || !seen.insert(slot) {
                continue;
            }
            let state = st.state.map(|s| s.to_string()).unwrap_or_default();
            out.push_str(&format!("; task {service}.{slot}: {state}: {why}"));
        }
        out
    }
}

/// The address a node's host-mode ports answer on: its `Status.Addr`, or
/// for a manager that reports 0.0.0.0, the address of its manager endpoint.
fn node_addr(n: &Node) -> NodeAddr {
    let status = n.status.as_ref().and_then(|s| s.addr.clone()).unwrap_or_default();
    let manager = n
        .manager_status
        .as_ref()
        .and_then(|m| m.addr.as_deref())
        .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()));
    let addr = status
        .parse::<IpAddr>()
        .ok()
        .filter(|a| !a.is_unspecified())
        .or_else(|| manager.and_then(|m| m.parse().ok()));
    let name = n
        .description
        .as_ref()
        .and_then(|d| d.hostname.clone())
        .or_else(|| n.id.clone())
        .unwrap_or_default();
    NodeAddr { name, addr }
}

/// One task as an observed replica. A task whose image was changed by
/// hand (`docker service update --image`) reads as stopped: it runs
/// nothing teal checked, so it takes neither checks nor traffic, and the
/// planner starts the color again, which puts the image back. (Reading it
/// as another spec instead would make the planner refuse to touch the
/// live color, as it must for a change that comes from git.)
fn observed(name: &str, n: u32, t: &Task, nodes: &HashMap<String, NodeAddr>, key: &EnvKey) -> ObservedContainer {
    let cs = t
        .spec
        .as_ref()
        .and_then(|s| s.container_spec.clone())
        .unwrap_or_default();
    let l = cs.labels.unwrap_or_default();
    let image = l.get(labels::IMAGE).cloned().unwrap_or_default();
    let drifted = cs.image.as_deref().map(strip_digest) != Some(image.as_str());
    let status = t.status.clone().unwrap_or_default();
    let running = status.state == Some(TaskState::RUNNING) && !drifted;
    let port = status
        .port_status
        .and_then(|p| p.ports)
        .unwrap_or_default()
        .into_iter()
        .find_map(|p| p.published_port.filter(|p| *p > 0))
        .and_then(|p| u16::try_from(p).ok());
    let node = t.node_id.as_ref().and_then(|id| nodes.get(id));
    let slot = t.slot.unwrap_or_default();
    let id = t.id.clone().unwrap_or_default();
    let (hash, spec) = read_labels(l.get(labels::SPEC_JSON), l.get(labels::SPEC).map_or("", |h| h), key);
    ObservedContainer {
        // Docker's own name for the task's container (what `docker ps`
        // shows, and what an exec check runs in on this node).
        name: format!("{name}.{slot}.{id}"),
        replica: n,
        image,
        spec_hash: hash,
        running,
        commit: l.get(labels::COMMIT).cloned(),
        addr: node.and_then(|n| n.addr).filter(|_| running),
        port: port.filter(|_| running),
        node: Some(node.map_or_else(|| "(unassigned)".to_string(), |n| n.name.clone())),
        spec,
        twin: false,
    }
}

/// A replica of a color scaled to 0: no task, its spec from the service.
fn stopped(name: &str, n: u32, l: &HashMap<String, String>, key: &EnvKey) -> ObservedContainer {
    let (hash, spec) = read_labels(l.get(labels::SPEC_JSON), l.get(labels::SPEC).map_or("", |h| h), key);
    ObservedContainer {
        name: format!("{name}.{}", n + 1),
        replica: n,
        image: l.get(labels::IMAGE).cloned().unwrap_or_default(),
        spec_hash: hash,
        running: false,
        commit: l.get(labels::COMMIT).cloned(),
        addr: None,
        port: None,
        node: Some("(scaled to 0)".into()),
        spec,
        twin: false,
    }
}
