//! Runs a `Plan` step by step through the drivers. Every step is idempotent
//! (the drivers converge to a target rather than replaying an action), so a
//! pass cut off anywhere is finished by the next one.
//!
//! Services run concurrently and independently: one failing deploy stops
//! only its own service. Whatever the plan says, the engine refuses to move
//! traffic to a color that has not passed its checks in this run.

mod clock;
mod pause;
mod pins;
mod prometheus;
pub mod release;
mod rolling;
mod rollout;
mod swarm_roll;
mod tasks;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::drivers::docker::DockerError;
use crate::drivers::proxy::{Backend, PreviewRoute, ProxyDriver, ProxyError, RouteSpec};
use crate::drivers::runtime::Runtime;
pub use crate::events::StepEvent;
use crate::events::StepKind;
use crate::health::{self, HealthFailure, Target};
use crate::outcome::{Cause, Run, RunError};
use crate::plan::{route_hash, Plan, ServicePlan, Step};
use crate::records::Records;
use crate::spec::container::ContainerSpec;
use crate::spec::{Color, Desired, PerColor, Service};
use crate::strategy::{Failure, Progress};
pub use rollout::TICK;

/// What the engine needs to act.
pub struct Engine<'a> {
    /// Who runs the replicas: containers, or Swarm tasks.
    pub docker: &'a Runtime,
    pub proxy: &'a ProxyDriver,
    /// Where rollouts record their progress.
    pub records: &'a Records,
    /// The commit being applied (goes on containers and proxy config).
    pub commit: &'a str,
    /// Progress lines of long steps (image pulls), as (service, line).
    pub on_progress: &'a (dyn Fn(&str, &str) + Sync),
    /// Each new phase of a rollout (canary step, verify, done, rolled back).
    pub on_rollout: &'a (dyn Fn(&Progress) + Sync),
    /// News for the pass (a new commit): a wait for a promotion ends early.
    pub interrupted: &'a (dyn Fn() -> bool + Sync),
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Health(#[from] HealthFailure),
    #[error("refusing to send traffic to {0}: its health checks have not passed in this pass")]
    Unchecked(Color),
    #[error("rolled back by analysis: {}", .0.figures)]
    RolledBack(Failure),
    /// A rollout waits for a promotion (not a failure).
    #[error("{0}")]
    Waiting(String),
    /// The release command failed or timed out (or failed before, for
    /// this commit).
    #[error("{0}")]
    Release(String),
    #[error("{0}")]
    Invalid(String),
}

impl Engine<'_> {
    /// Runs every service's steps; services in parallel, steps in order.
    /// `on_step` sees each finished step (progress, event log).
    pub async fn execute(&self, plan: &Plan, desired: &Desired, on_step: &(dyn Fn(&StepEvent) + Sync)) -> Vec<Run> {
        let runs = plan
            .services
            .iter()
            .filter(|sp| !sp.steps.is_empty())
            .map(|sp| self.run_service(sp, desired.services.get(&sp.service), on_step));
        futures_util::future::join_all(runs).await
    }

    async fn run_service(&self, sp: &ServicePlan, svc: Option<&Service>, on_step: &(dyn Fn(&StepEvent) + Sync)) -> Run {
        let started = Instant::now();
        let mut checked = BTreeSet::new();
        let mut result = Ok(());
        // A pass that only goes on waiting for a promotion (checks again,
        // judges, waits) says nothing: its steps are said only when
        // something else comes of it.
        let resuming_wait = self
            .records
            .load(&sp.service)
            .is_some_and(|p| p.waiting() && svc.is_some_and(|s| crate::plan::is_service(&p.service_hash, s)));
        let mut held = vec![];
        for step in &sp.steps {
            let t = Instant::now();
            let r = self.run_step(&sp.service, svc, step, &mut checked).await;
            let e = StepEvent {
                service: sp.service.clone(),
                commit: self.commit.to_string(),
                step: step.clone(),
                result: r.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                duration: t.elapsed(),
                note: r.as_ref().ok().cloned().flatten(),
                waiting: matches!(r, Err(StepError::Waiting(_))),
            };
            match resuming_wait {
                true => held.push(e),
                false => on_step(&e),
            }
            if let Err(reason) = r {
                result = Err(run_error(&sp.service, StepKind::of(step), &reason));
                break;
            }
        }
        let still_waiting = matches!(&result, Err(e) if e.cause == Cause::Waiting);
        if !still_waiting {
            held.iter().for_each(on_step);
        }
        Run {
            service: sp.service.clone(),
            result,
            duration: started.elapsed(),
        }
    }

    async fn run_step(
        &self,
        name: &str,
        svc: Option<&Service>,
        step: &Step,
        checked: &mut BTreeSet<Color>,
    ) -> Result<Option<String>, StepError> {
        let need = || svc.ok_or_else(|| StepError::Invalid(format!("{name}: no desired spec for {step:?}")));
        match step {
            Step::PullImage { image, .. } => return self.pull(name, image).await,
            Step::Release { color, image } => {
                // Its outcome is recorded in the state dir; a success's last
                // lines go in the step's note (a failure's in its error).
                let note = self.release(need()?, *color, image).await?;
                (self.on_progress)(name, &format!("release: {note}"));
                return Ok(Some(note));
            }
            Step::StartColor { color, replicas, .. } => {
                let svc = need()?;
                let mut spec = container_spec(svc, *color)?;
                self.pin_spec(svc, &mut spec).await?;
                self.docker
                    .ensure_color(&spec, *replicas, &svc.placement, self.commit)
                    .await?;
            }
            Step::WaitHealthy { color } => {
                let svc = need()?;
                if matches!(self.docker, Runtime::Swarm(_)) {
                    self.check_tasks(svc, *color).await?;
                } else {
                    let targets = self.targets(svc, *color).await?;
                    if targets.is_empty() {
                        return Err(StepError::Invalid(format!(
                            "{name}/{color} has no running containers to check"
                        )));
                    }
                    health::wait_healthy(&svc.health, svc.port, &targets, self.docker).await?;
                }
                checked.insert(*color);
            }
            Step::Switch { to, .. } => {
                if !checked.contains(to) {
                    return Err(StepError::Unchecked(*to));
                }
                let started = std::time::Instant::now();
                let route = self.route(need()?, &all_on(*to), to.other()).await?;
                let listed = started.elapsed();
                self.proxy.apply(&route).await?;
                tracing::debug!(
                    service = name,
                    list_ms = listed.as_secs_f64() * 1e3,
                    proxy_ms = (started.elapsed() - listed).as_secs_f64() * 1e3,
                    "switch"
                );
            }
            Step::Canary { to, .. } => {
                if !checked.contains(to) {
                    return Err(StepError::Unchecked(*to));
                }
                self.rollout(need()?, step).await?;
            }
            Step::Verify { .. } => self.rollout(need()?, step).await?,
            Step::Roll { color, max_surge, .. } => self.roll(need()?, *color, *max_surge).await?,
            Step::Reroute { color } => {
                let svc = need()?;
                let route = self.route(svc, &all_on(*color), color.other()).await?;
                let route = self.only_checked(svc, route).await?;
                self.proxy.apply(&route).await?;
            }
            Step::Drain { duration, .. } => tokio::time::sleep(*duration).await,
            Step::RemoveReplicas { color, keep } => self.docker.remove_replicas(name, *color, *keep).await?,
            Step::StopColor { color } => self.docker.stop_color(name, *color).await?,
            Step::RemoveColor { color } => self.docker.remove_color(name, *color).await?,
            Step::RemoveService { drain } => {
                // Out of the proxy first; requests in flight finish before
                // the containers go.
                self.proxy.remove(name).await?;
                if let Some(d) = drain {
                    tokio::time::sleep(*d).await;
                }
                self.docker.remove_service(name).await?;
            }
        }
        Ok(None)
    }

    /// The running replicas of one color, fresh from Docker (containers
    /// or Swarm tasks). Replicas beyond the desired count are left out:
    /// they are about to be removed, so they get neither checks nor traffic.
    async fn targets(&self, svc: &Service, color: Color) -> Result<Vec<Target>, StepError> {
        Ok(self
            .docker
            .serving(svc, color)
            .await?
            .iter()
            .filter_map(target)
            .collect())
    }

    /// The proxy entry for `svc` with `weights` (percent per color) and,
    /// if declared, the preview on `preview`. Each color lists its running
    /// replicas.
    async fn route(&self, svc: &Service, weights: &PerColor<u32>, preview: Color) -> Result<RouteSpec, StepError> {
        let mut backends = PerColor::<Backend>::default();
        let serving = self.docker.serving_both(svc).await?;
        for c in Color::ALL {
            *backends.get_mut(c) = Backend {
                weight: *weights.get(c),
                addrs: serving
                    .get(c)
                    .iter()
                    .filter_map(target)
                    .map(|t| SocketAddr::new(t.addr, t.port.unwrap_or(svc.port)))
                    .collect(),
            };
        }
        let preview = svc.preview.as_ref().map(|p| PreviewRoute {
            host: p.host.clone(),
            allow: p.allow.clone(),
            color: preview,
        });
        Ok(RouteSpec {
            service: svc.name.clone(),
            host: svc.route.host.clone(),
            aliases: svc.route.aliases.clone(),
            path: svc.route.path.clone(),
            tls: svc.route.tls.clone(),
            backends,
            preview,
            commit: self.commit.to_string(),
            traffic: svc.traffic.clone(),
            next: None,
            route_hash: route_hash(svc),
        })
    }
}

/// A replica as a health-check target, when it has an address.
fn target(c: &crate::plan::ObservedContainer) -> Option<Target> {
    c.addr.map(|addr| Target {
        container: c.name.clone(),
        addr,
        port: c.port,
    })
}

/// All traffic on one color.
fn all_on(c: Color) -> PerColor<u32> {
    let mut w = PerColor::default();
    *w.get_mut(c) = 100;
    w
}

/// A failed step as plain data. Traffic stays where it was unless the
/// step was after the switch (drain, cleanup).
fn run_error(service: &str, step: StepKind, reason: &StepError) -> RunError {
    RunError {
        error: format!("{service}: {step} failed: {reason}"),
        reason: reason.to_string(),
        cause: match reason {
            StepError::RolledBack(f) => Cause::RolledBack(f.clone()),
            StepError::Waiting(_) => Cause::Waiting,
            StepError::Docker(d) if d.is_no_quorum() => Cause::NoQuorum,
            _ => Cause::Other,
        },
        step,
    }
}

fn container_spec(svc: &Service, color: Color) -> Result<ContainerSpec, StepError> {
    ContainerSpec::of(svc, color)
        .ok_or_else(|| StepError::Invalid(format!("{}/{color} has no image in the desired state", svc.name)))
}

impl health::Exec for Runtime {
    async fn exec(&self, container: &str, cmd: &[String], timeout: Duration) -> Result<i64, String> {
        self.docker()
            .exec(container, cmd, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}
