//! Observed state of a live host: what Docker runs and what the proxy
//! serves, merged into the plain `plan::Observed` the planner reads.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::drivers::docker::DockerError;
use crate::drivers::proxy::{ObservedRoute, ProxyDriver, ProxyError};
use crate::drivers::runtime::Runtime;
use crate::plan::{Observed, ObservedService};
use crate::records::Records;
use crate::spec::{Color, Desired, Service};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("observing Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("observing the proxy: {0}")]
    Proxy(#[from] ProxyError),
}

impl ObserveError {
    /// Whether Swarm could not answer for want of a leader.
    pub fn is_no_quorum(&self) -> bool {
        matches!(self, ObserveError::Docker(d) if d.is_no_quorum())
    }
}

/// Reads Docker, the proxy and the rollout records afresh. `desired`
/// supplies each service's port, so the proxy's peers can be compared with
/// container addresses, and its active color, to read a split of traffic.
pub async fn observe(
    docker: &Runtime,
    proxy: &ProxyDriver,
    records: &Records,
    desired: &Desired,
) -> Result<Observed, ObserveError> {
    observe_with(docker, proxy, records, desired, false).await
}

/// `observe` at the start of a pass: Docker's last listing is reused while
/// no container event came since (`Runtime::observe_idle`).
pub async fn observe_idle(
    docker: &Runtime,
    proxy: &ProxyDriver,
    records: &Records,
    desired: &Desired,
) -> Result<Observed, ObserveError> {
    observe_with(docker, proxy, records, desired, true).await
}

async fn observe_with(
    docker: &Runtime,
    proxy: &ProxyDriver,
    records: &Records,
    desired: &Desired,
    idle: bool,
) -> Result<Observed, ObserveError> {
    let containers = async {
        if idle {
            docker.observe_idle().await
        } else {
            docker.observe().await
        }
    };
    // Both at once: at hundreds of services each takes tens of ms.
    let ((containers, docker_ms), (routes, proxy_ms)) = tokio::join!(timed(containers), timed(proxy.observe()));
    tracing::debug!(docker_ms, proxy_ms, "observed");
    let (containers, routes) = (containers?, routes?);
    let mut rolled_back = records.rolled_back();
    let names: BTreeSet<&String> = containers.keys().chain(routes.keys()).collect();
    let mut observed = Observed::default();
    for name in names {
        let mut svc = ObservedService {
            rolled_back: rolled_back.remove(name),
            ..Default::default()
        };
        if let Some(c) = containers.get(name) {
            svc.containers = c.clone();
        }
        if let Some(r) = routes.get(name) {
            let d = desired.services.get(name);
            svc.weights = r.weights.clone();
            svc.live = live(r, d.map(|d| d.active));
            svc.route_hash = r.route_hash.clone();
            svc.route_drifted = r.drifted;
            svc.stale_peers = d.is_some_and(|d| stale(&svc, r, d));
        }
        observed.services.insert(name.clone(), svc);
    }
    Ok(observed)
}

/// The color that serves. Traffic split between both colors (a canary cut
/// off) counts as still on the old one, the color the commit does not make
/// active, so the planner resumes or redoes the move with its checks.
fn live(r: &ObservedRoute, active: Option<Color>) -> Option<Color> {
    match (r.weights.blue > 0, r.weights.green > 0, active) {
        (true, true, Some(a)) => Some(a.other()),
        _ => r.live(),
    }
}

/// `f`'s output and how long it took, in ms.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    let t = std::time::Instant::now();
    let out = f.await;
    (out, t.elapsed().as_millis() as u64)
}

/// True when a color that takes traffic is served by other addresses than
/// its running replicas (a container restarted with a new address, a
/// Swarm task replaced by one on another port or node).
fn stale(svc: &ObservedService, r: &ObservedRoute, d: &Service) -> bool {
    Color::ALL.iter().filter(|c| *r.weights.get(**c) > 0).any(|c| {
        let running: BTreeSet<SocketAddr> = svc
            .containers
            .get(*c)
            .iter()
            .filter(|x| x.running && x.replica < d.replicas && x.at_rest(&d.name, *c))
            .filter_map(|x| x.endpoint(d.port))
            .collect();
        let served: BTreeSet<SocketAddr> = r.addrs.get(*c).iter().copied().collect();
        !running.is_empty() && running != served
    })
}
