//! A rolling update of one color, in batches of `max_surge` replicas: a
//! new container per replica (`-next`), checked, added to the proxy beside
//! the old ones, the old ones taken out and drained, the batch judged when
//! analysis is declared, then the old containers removed and the new ones
//! renamed. At most `replicas + max_surge` containers of the color exist,
//! and the proxy only ever routes to replicas whose checks passed in this
//! run. Progress is the containers themselves: a restart continues.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::prometheus::PromPoller;
use super::{container_spec, Engine, StepError};
use crate::drivers::proxy::{Backend, RouteSpec};
use crate::drivers::runtime::Runtime;
use crate::health::{self, Target};
use crate::plan::{route_hash, service_hash, ObservedContainer};
use crate::spec::container::ContainerSpec;
use crate::spec::{Color, PerColor, Service, Strategy};
use crate::strategy::judge::{judge, Window};
use crate::strategy::{self, Phase, Verdict};

impl Engine<'_> {
    /// Replaces every replica of `color` that does not run the desired
    /// spec under its own name.
    pub(super) async fn roll(&self, svc: &Service, color: Color, max_surge: u32) -> Result<(), StepError> {
        if let Runtime::Swarm(s) = self.docker {
            return self.roll_swarm(s, svc, color, max_surge).await;
        }
        let mut spec = container_spec(svc, color)?;
        self.pin_spec(svc, &mut spec).await?;
        let hash = spec.hash();
        let mut done = 0;
        loop {
            let have = self.containers(svc, color).await?;
            let todo: Vec<u32> = (0..svc.replicas)
                .filter(|n| {
                    let settled =
                        find(&have, &spec.container_name(*n)).is_some_and(|c| c.spec_hash == hash && c.running);
                    !settled || find(&have, &spec.next_name(*n)).is_some()
                })
                .collect();
            if todo.is_empty() {
                // The swapped-out replicas' secret files go with them.
                self.docker.docker().sweep_secrets(&svc.name).await?;
                break;
            }
            let batch: Vec<u32> = todo.iter().copied().take(max_surge.max(1) as usize).collect();
            self.roll_batch(svc, &spec, &batch, &have).await?;
            done += batch.len();
            (self.on_progress)(
                &svc.name,
                &format!(
                    "rolling: {done} of {} replicas run {}",
                    todo.len() + done - batch.len(),
                    spec.image
                ),
            );
        }
        Ok(())
    }

    async fn roll_batch(
        &self,
        svc: &Service,
        spec: &ContainerSpec,
        batch: &[u32],
        have: &[ObservedContainer],
    ) -> Result<(), StepError> {
        let color = spec.color;
        let hash = spec.hash();
        for n in batch {
            match find(have, &spec.next_name(*n)) {
                Some(c) if c.spec_hash == hash && c.running => {}
                Some(c) if c.spec_hash == hash => self.docker.docker().start(&c.name).await?,
                Some(c) => {
                    self.docker.docker().stop_and_remove(&c.name).await?;
                    self.docker.docker().create_next(spec, *n, self.commit).await?;
                }
                None => {
                    self.docker.docker().create_next(spec, *n, self.commit).await?;
                }
            }
        }
        let have = self.containers(svc, color).await?;
        let new: Vec<&ObservedContainer> = batch.iter().filter_map(|n| find(&have, &spec.next_name(*n))).collect();
        let targets: Vec<Target> = new.iter().filter_map(|c| super::target(c)).collect();
        if let Err(e) = health::wait_healthy(&svc.health, svc.port, &targets, self.docker).await {
            // Never routed: removing them leaves traffic where it was.
            for c in &new {
                self.docker.docker().stop_and_remove(&c.name).await?;
            }
            return Err(e.into());
        }
        let addr = |c: &ObservedContainer| c.addr.map(|a| SocketAddr::new(a, svc.port));
        let old: BTreeSet<SocketAddr> = batch
            .iter()
            .filter_map(|n| find(&have, &spec.container_name(*n)))
            .filter_map(addr)
            .collect();
        // What serves now: the replicas at rest (new ones of earlier batches
        // were renamed), plus this batch's checked new ones.
        let serving: BTreeSet<SocketAddr> = have
            .iter()
            .filter(|c| c.running && c.replica < svc.replicas && c.name == spec.container_name(c.replica))
            .filter_map(addr)
            .collect();
        let fresh: BTreeSet<SocketAddr> = new.iter().filter_map(|c| addr(c)).collect();
        let with_both: Vec<SocketAddr> = serving.union(&fresh).copied().collect();
        let without_old: Vec<SocketAddr> = with_both.iter().filter(|a| !old.contains(a)).copied().collect();
        self.route_color(svc, color, with_both).await?;
        self.route_color(svc, color, without_old).await?;
        tokio::time::sleep(svc.switch.drain).await;
        if let Err(e) = self.judge_batch(svc, color).await {
            let back: Vec<SocketAddr> = serving.iter().copied().collect();
            self.route_color(svc, color, back).await?;
            for c in &new {
                self.docker.docker().stop_and_remove(&c.name).await?;
            }
            return Err(e);
        }
        for n in batch {
            if let Some(c) = find(&have, &spec.container_name(*n)) {
                self.docker.docker().stop_and_remove(&c.name).await?;
            }
            self.docker
                .docker()
                .rename(&spec.next_name(*n), &spec.container_name(*n))
                .await?;
        }
        Ok(())
    }

    /// With analysis: the color's responses over the batch's hold (old and
    /// new replicas alike: the proxy counts per color), and the Prometheus
    /// query for the color. A failure is recorded, so the same service is
    /// not rolled again.
    pub(super) async fn judge_batch(&self, svc: &Service, color: Color) -> Result<(), StepError> {
        let (Some(a), Strategy::Rolling { hold, .. }) = (&svc.analysis, &svc.strategy) else {
            return Ok(());
        };
        let obs = self.observe(svc, color, None).await?;
        let mut p = strategy::begin(&svc.name, self.commit, &service_hash(svc), color, color, &obs);
        let prom = PromPoller::start(Some(a), &svc.name, color, self.commit);
        loop {
            tokio::time::sleep(super::TICK).await;
            let obs = self.observe(svc, color, prom.as_ref()).await?;
            let (verdict, tally) = judge(Some(a), &p, &obs, Window::Step(*hold));
            p.prom = tally;
            match verdict {
                Verdict::Wait => {}
                Verdict::Pass => return Ok(()),
                Verdict::Fail(f) => {
                    p.phase = Phase::RolledBack(f.clone());
                    let _ = self.records.save(&p);
                    (self.on_rollout)(&p);
                    return Err(StepError::RolledBack(f));
                }
            }
        }
    }

    /// Every container of one color, fresh from Docker.
    async fn containers(&self, svc: &Service, color: Color) -> Result<Vec<ObservedContainer>, StepError> {
        Ok(self.docker.observe_service(&svc.name).await?.get(color).clone())
    }

    /// All traffic of the service on exactly `addrs` of `color`.
    pub(super) async fn route_color(
        &self,
        svc: &Service,
        color: Color,
        addrs: Vec<SocketAddr>,
    ) -> Result<(), StepError> {
        let mut backends = PerColor::<Backend>::default();
        *backends.get_mut(color) = Backend { weight: 100, addrs };
        let route = RouteSpec {
            service: svc.name.clone(),
            host: svc.route.host.clone(),
            aliases: svc.route.aliases.clone(),
            path: svc.route.path.clone(),
            tls: svc.route.tls.clone(),
            backends,
            preview: None,
            commit: self.commit.to_string(),
            traffic: svc.traffic.clone(),
            next: None,
            route_hash: route_hash(svc),
        };
        self.proxy.apply(&route).await?;
        Ok(())
    }
}

fn find<'a>(have: &'a [ObservedContainer], name: &str) -> Option<&'a ObservedContainer> {
    have.iter().find(|c| c.name == name)
}
