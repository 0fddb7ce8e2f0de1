//! A rolling update in Swarm mode, in teal's batches rather than Swarm's
//! own `service update`: Swarm's update stops an old task as soon as the
//! new one runs, before teal's checks and analysis have judged it, and
//! cannot be told which task to stop. So the new spec comes up as the
//! color's twin service (see `drivers::swarm::twin`), `max_surge` tasks
//! at a time: each batch settles, is checked, joins the route beside the
//! old tasks and is judged (when analysis is declared); then the color's
//! own service shrinks by as many. Swarm picks which old tasks stop: they
//! leave the route the moment Swarm means to stop them, and the proxy
//! retries the requests they were answering. At most `replicas +
//! max_surge` tasks of the color exist, except while a failed update
//! brings the old ones back. A failed check or verdict rolls the whole
//! color back to its old service; progress is the two services
//! themselves, so a restarted teal continues.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::{container_spec, target, Engine, StepError};
use crate::drivers::swarm::{Side, SwarmDriver};
use crate::health::{self, Target};
use crate::plan::ObservedContainer;
use crate::spec::{Color, Service};
use crate::strategy::rolling::{swarm_move, SwarmMove};

/// How often the roll looks whether Swarm marked old tasks to stop.
const FOLLOW: Duration = Duration::from_millis(50);

impl Engine<'_> {
    pub(super) async fn roll_swarm(
        &self,
        s: &SwarmDriver,
        svc: &Service,
        color: Color,
        max_surge: u32,
    ) -> Result<(), StepError> {
        let spec = container_spec(svc, color)?;
        let hash = spec.hash();
        let n = svc.replicas;
        let found = s.color_services(&svc.name, color).await?;
        if let Some(twin) = found.twin.as_ref().filter(|t| t.hash != hash) {
            // A newer commit came during an update: its tasks leave the
            // route, then it goes; this update starts from the old tasks.
            tracing::info!(service = %svc.name, twin = %twin.name, "a rolling update of another spec is left behind");
            self.back_to_rest(s, svc, color).await?;
        }
        let found = s.color_services(&svc.name, color).await?;
        if found.twin.is_none() && found.rest.as_ref().is_some_and(|r| r.hash == hash) {
            // The color runs the spec already (a hand-scaled service):
            // put its replicas back, check the new tasks, route them.
            s.ensure_color(&spec, n, &svc.placement, self.commit).await?;
            self.check_tasks(svc, color).await?;
            return self.route_swarm_color(svc, color).await;
        }
        loop {
            let found = s.color_services(&svc.name, color).await?;
            let old = found.rest.as_ref().map_or(0, |r| r.replicas);
            let new = found.twin.as_ref().map_or(0, |t| t.replicas);
            let (want, keep) = match swarm_move(n, max_surge, old, new) {
                SwarmMove::Promote => {
                    s.ensure_twin(&spec, n, &svc.placement, self.commit).await?;
                    s.promote_twin(&svc.name, color).await?;
                    return self.route_swarm_color(svc, color).await;
                }
                SwarmMove::Batch { twin, old } => (twin, old),
            };
            s.ensure_twin(&spec, want, &svc.placement, self.commit).await?;
            if let Err(e) = self.batch_up(s, svc, color, &hash, want).await {
                self.back_to_rest(s, svc, color).await?;
                return Err(e);
            }
            if let Err(e) = self.judge_batch(svc, color).await {
                self.back_to_rest(s, svc, color).await?;
                return Err(e);
            }
            if let Some(rest) = &found.rest {
                s.set_replicas(&rest.name, keep).await?;
                self.follow_scale_down(s, svc, color, &rest.name, keep).await?;
            }
            (self.on_progress)(
                &svc.name,
                &format!("rolling: {want} of {n} replicas run {}", spec.image),
            );
        }
    }

    /// The twin's `want` tasks settle and pass their checks (those not
    /// routed yet), then serve beside the color's old tasks.
    async fn batch_up(
        &self,
        s: &SwarmDriver,
        svc: &Service,
        color: Color,
        hash: &str,
        want: u32,
    ) -> Result<(), StepError> {
        s.settle(&svc.name, color, true, hash, want, svc.health.deadline)
            .await?;
        let served = self.served(svc, color).await?;
        let (_, twin) = self.sides(svc, color).await?;
        let fresh = unrouted(&twin, &served, svc.port);
        health::wait_healthy(&svc.health, svc.port, &fresh, self.docker).await?;
        let (rest, twin) = self.sides(svc, color).await?;
        let addrs = rest.iter().chain(&twin).filter_map(|t| t.endpoint(svc.port)).collect();
        self.route_color(svc, color, addrs).await
    }

    /// Waits until the color's own service (`name`) runs no more than
    /// `keep` tasks, taking each out of the route as soon as Swarm means
    /// to stop it (it no longer reads as desired running), and then until
    /// those tasks have stopped: the next batch starts no earlier.
    async fn follow_scale_down(
        &self,
        s: &SwarmDriver,
        svc: &Service,
        color: Color,
        name: &str,
        keep: u32,
    ) -> Result<(), StepError> {
        let until = tokio::time::Instant::now() + svc.health.deadline;
        loop {
            let (rest, _) = self.sides(svc, color).await?;
            self.route_swarm_color(svc, color).await?;
            if rest.len() <= keep as usize {
                break;
            }
            if tokio::time::Instant::now() >= until {
                return Err(StepError::Invalid(format!(
                    "Swarm did not scale {name} down to {keep} tasks within {}",
                    crate::spec::duration::format(svc.health.deadline)
                )));
            }
            tokio::time::sleep(FOLLOW).await;
        }
        while s.still_running(name).await? > keep as usize && tokio::time::Instant::now() < until {
            tokio::time::sleep(FOLLOW).await;
        }
        Ok(())
    }

    /// Undoes a rolling update: the color's own service runs all its
    /// replicas again (of its old spec), checked, and takes all the
    /// traffic; the twin drains and goes.
    async fn back_to_rest(&self, s: &SwarmDriver, svc: &Service, color: Color) -> Result<(), StepError> {
        let found = s.color_services(&svc.name, color).await?;
        if let Some(Side { name, hash, .. }) = &found.rest {
            s.set_replicas(name, svc.replicas).await?;
            s.settle(&svc.name, color, false, hash, svc.replicas, svc.health.deadline)
                .await?;
            let (rest, _) = self.sides(svc, color).await?;
            let targets: Vec<_> = rest.iter().filter_map(target).collect();
            health::wait_healthy(&svc.health, svc.port, &targets, self.docker).await?;
            let addrs = rest.iter().filter_map(|t| t.endpoint(svc.port)).collect();
            self.route_color(svc, color, addrs).await?;
            tokio::time::sleep(svc.switch.drain).await;
        }
        s.remove_twin(&svc.name, color).await?;
        Ok(())
    }

    /// All of the color's traffic on its running tasks of both services
    /// that the proxy serves already or that pass their checks now.
    async fn route_swarm_color(&self, svc: &Service, color: Color) -> Result<(), StepError> {
        let served = self.served(svc, color).await?;
        let (rest, twin) = self.sides(svc, color).await?;
        let all: Vec<ObservedContainer> = rest.into_iter().chain(twin).collect();
        let addrs: BTreeSet<SocketAddr> = all.iter().filter_map(|t| t.endpoint(svc.port)).collect();
        let fresh = unrouted(&all, &served, svc.port);
        let failed = if fresh.is_empty() {
            BTreeSet::new()
        } else {
            self.failing(svc, color, &fresh).await
        };
        let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| !failed.contains(a)).collect();
        if addrs.iter().copied().collect::<BTreeSet<_>>() == served {
            return Ok(());
        }
        self.route_color(svc, color, addrs).await
    }

    /// The endpoints the proxy sends `color`'s traffic to now.
    async fn served(&self, svc: &Service, color: Color) -> Result<BTreeSet<SocketAddr>, StepError> {
        let served = self.proxy.observe().await?.remove(&svc.name).unwrap_or_default();
        Ok(served.addrs.get(color).iter().copied().collect())
    }

    /// The running tasks of the color's own service and of its twin.
    async fn sides(
        &self,
        svc: &Service,
        color: Color,
    ) -> Result<(Vec<ObservedContainer>, Vec<ObservedContainer>), StepError> {
        let tasks = self.docker.observe_service(&svc.name).await?.get(color).clone();
        Ok(tasks.into_iter().filter(|t| t.running).partition(|t| !t.twin))
    }
}

/// The tasks among `tasks` the proxy does not route to yet, as check targets.
fn unrouted(tasks: &[ObservedContainer], served: &BTreeSet<SocketAddr>, port: u16) -> Vec<Target> {
    tasks
        .iter()
        .filter(|t| t.endpoint(port).is_some_and(|a| !served.contains(&a)))
        .filter_map(target)
        .collect()
}
