//! Following Swarm's task replacements: a color's check starts over when
//! one of its tasks stops meanwhile, and when Swarm starts a new task (a
//! killed container, a lost node), the route is rewritten with the new
//! endpoint only once that task passed the commit's checks; endpoints that
//! are gone simply drop out. Containers in engine mode keep their
//! behaviour (a restarted container is routed at its new address).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Engine, StepError};
use crate::drivers::proxy::RouteSpec;
use crate::drivers::runtime::Runtime;
use crate::health::{self, Target};
use crate::spec::{Color, Service};

/// How often a check of Swarm tasks looks whether its tasks still run.
const WATCH: Duration = Duration::from_millis(500);

impl Engine<'_> {
    /// The checks of a color's tasks (Swarm mode), within the health
    /// deadline: once Swarm runs the desired tasks, each is probed; when
    /// one of them stops running meanwhile (killed, replaced, its node
    /// lost), the check starts over with the tasks that run then, instead
    /// of probing a gone endpoint until the deadline.
    pub(super) async fn check_tasks(&self, svc: &Service, color: Color) -> Result<(), StepError> {
        let until = tokio::time::Instant::now() + svc.health.deadline;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            self.docker.settle(svc, color, left).await?;
            let targets = self.targets(svc, color).await?;
            let health = crate::spec::Health {
                deadline: until.saturating_duration_since(tokio::time::Instant::now()),
                ..svc.health.clone()
            };
            tokio::select! {
                r = health::wait_healthy(&health, svc.port, &targets, self.docker) => {
                    return r.map(|_| ()).map_err(Into::into);
                }
                r = self.until_one_gone(svc, color, &targets) => r?,
            }
            tracing::info!(service = %svc.name, color = %color, "a task stopped during its checks; checking the tasks that run now");
        }
    }

    /// Returns once one of `targets` is no longer a running task of `color`.
    async fn until_one_gone(&self, svc: &Service, color: Color, targets: &[Target]) -> Result<(), StepError> {
        loop {
            tokio::time::sleep(WATCH).await;
            let now: BTreeSet<String> = self
                .targets(svc, color)
                .await?
                .into_iter()
                .map(|t| t.container)
                .collect();
            if targets.iter().any(|t| !now.contains(&t.container)) {
                return Ok(());
            }
        }
    }

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
            let failed = self.failing(svc, color, &fresh).await;
            route.backends.get_mut(color).addrs.retain(|a| !failed.contains(a));
        }
        Ok(route)
    }
}

impl Engine<'_> {
    /// The endpoints of `fresh` that do not pass the checks (all of them
    /// are probed together, within the health deadline).
    pub(super) async fn failing(&self, svc: &Service, color: Color, fresh: &[Target]) -> BTreeSet<SocketAddr> {
        let Err(f) = health::wait_healthy(&svc.health, svc.port, fresh, self.docker).await else {
            return BTreeSet::new();
        };
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
}

pub(super) fn endpoint(t: &Target, port: u16) -> SocketAddr {
    SocketAddr::new(t.addr, t.port.unwrap_or(port))
}
