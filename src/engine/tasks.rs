//! Following Swarm's task replacements: when Swarm starts a new task (a
//! killed container, a lost node), the route is rewritten with the new
//! endpoint only once that task passed the commit's checks; endpoints that
//! are gone simply drop out. Containers in engine mode keep their
//! behaviour (a restarted container is routed at its new address).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::{Engine, StepError};
use crate::drivers::proxy::RouteSpec;
use crate::drivers::runtime::Runtime;
use crate::health::{self, Target};
use crate::spec::{Color, Service};

impl Engine<'_> {
    /// `route` with every endpoint the proxy does not serve yet checked
    /// first (Swarm mode): those that fail the checks are left out, and
    /// the rest of the route is applied all the same.
    pub(super) async fn only_checked(&self, svc: &Service, mut route: RouteSpec) -> Result<RouteSpec, StepError> {
        if !matches!(self.docker, Runtime::Swarm(_)) {
            return Ok(route);
        }
        let served = self.proxy.observe().await?.remove(&svc.name).unwrap_or_default();
        for color in Color::ALL {
            let known: BTreeSet<SocketAddr> = served.addrs.get(color).iter().copied().collect();
            let fresh: Vec<Target> = self
                .targets(svc, color)
                .await?
                .into_iter()
                .filter(|t| !known.contains(&endpoint(t, svc.port)))
                .collect();
            if fresh.is_empty() {
                continue;
            }
            let failed: BTreeSet<SocketAddr> =
                match health::wait_healthy(&svc.health, svc.port, &fresh, self.docker).await {
                    Ok(_) => BTreeSet::new(),
                    Err(f) => {
                        tracing::warn!(service = %svc.name, color = %color, error = %f, "new tasks not routed");
                        let bad: BTreeSet<&str> = f
                            .replicas
                            .iter()
                            .filter(|r| r.passes < f.needed)
                            .map(|r| r.container.as_str())
                            .collect();
                        fresh
                            .iter()
                            .filter(|t| bad.contains(t.container.as_str()))
                            .map(|t| endpoint(t, svc.port))
                            .collect()
                    }
                };
            route.backends.get_mut(color).addrs.retain(|a| !failed.contains(a));
        }
        Ok(route)
    }
}

fn endpoint(t: &Target, port: u16) -> SocketAddr {
    SocketAddr::new(t.addr, t.port.unwrap_or(port))
}
