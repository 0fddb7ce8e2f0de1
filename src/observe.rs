//! Observed state of a live host: what Docker runs and what the proxy
//! serves, merged into the plain `plan::Observed` the planner reads.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::drivers::docker::{DockerDriver, DockerError};
use crate::drivers::proxy::{ProxyDriver, ProxyError};
use crate::plan::{Observed, ObservedService};
use crate::spec::Desired;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("observing Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("observing the proxy: {0}")]
    Proxy(#[from] ProxyError),
}

/// Marks a proxy entry whose upstream addresses no longer match the running
/// containers of its live color (a container restarted with a new address):
/// any value unequal to the desired route hash makes the planner reroute.
pub const STALE_ADDRESSES: &str = "stale-addresses";

/// Reads Docker and the proxy afresh. `desired` supplies each service's port
/// so proxy upstreams can be compared with container addresses.
pub async fn observe(docker: &DockerDriver, proxy: &ProxyDriver, desired: &Desired) -> Result<Observed, ObserveError> {
    let containers = docker.observe().await?;
    let routes = proxy.observe().await?;
    let names: BTreeSet<&String> = containers.keys().chain(routes.keys()).collect();
    let mut observed = Observed::default();
    for name in names {
        let mut svc = ObservedService::default();
        if let Some(c) = containers.get(name) {
            svc.containers = c.clone();
        }
        if let Some(r) = routes.get(name) {
            svc.live = r.live();
            svc.route_hash = r.route_hash.clone();
            if let (Some(live), Some(d)) = (r.live(), desired.services.get(name)) {
                let running: BTreeSet<SocketAddr> = svc
                    .containers
                    .get(live)
                    .iter()
                    .filter(|c| c.running && c.replica < d.replicas)
                    .filter_map(|c| c.addr.map(|a| SocketAddr::new(a, d.port)))
                    .collect();
                let served: BTreeSet<SocketAddr> = r.addrs.get(live).iter().copied().collect();
                if !running.is_empty() && running != served {
                    svc.route_hash = Some(STALE_ADDRESSES.to_string());
                }
            }
        }
        observed.services.insert(name.clone(), svc);
    }
    Ok(observed)
}
