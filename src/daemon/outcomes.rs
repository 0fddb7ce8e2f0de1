//! Running a pass's plan and recording what came of each service: the
//! event log, the status, the metrics, backoff, and what peers read.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{error, info, warn};

use super::scheduler::backoff::Backoff;
use super::status::Metrics;
use super::{log_step, rollouts, round, short, status, Daemon};
use crate::engine::StepEvent;
use crate::events::{Event, EventResult, StepKind};
use crate::outcome::{self, Outcome, Retry, ServiceOutcome};
use crate::reconcile::Revision;

/// Per service, the plan's last step that moves or judges traffic: once
/// it succeeded the host serves the commit (what is left is draining
/// and removing the old color).
fn last_traffic_steps(plan: &crate::plan::Plan) -> BTreeMap<String, crate::plan::Step> {
    use crate::plan::Step;
    plan.services
        .iter()
        .filter_map(|sp| {
            let last = sp.steps.iter().rev().find(|s| {
                matches!(
                    s,
                    Step::Switch { .. }
                        | Step::Canary { .. }
                        | Step::Roll { .. }
                        | Step::Verify { .. }
                        | Step::Reroute { .. }
                )
            })?;
            Some((sp.service.clone(), last.clone()))
        })
        .collect()
}

impl Daemon {
    /// Runs the plan and records each service's outcome. Returns the
    /// problem to report when a deploy stopped because the swarm lost
    /// quorum: such a deploy is tried again next poll, not backed off.
    pub(super) async fn execute(
        &mut self,
        plan: &crate::plan::Plan,
        rev: &Revision,
        new_commit: bool,
        backoff: &mut Backoff,
        unrecorded: &mut Vec<Unrecorded>,
    ) -> Option<String> {
        let mut problem = None;
        let log = self.log.clone();
        let progress = self.progress.clone();
        let shared = self.shared.clone();
        let last_moves = last_traffic_steps(plan);
        let commit = rev.commit.clone();
        let on_step = move |e: &StepEvent| {
            progress.touch();
            if matches!(e.step, crate::plan::Step::PullImage { .. }) {
                pulling(&shared, &e.service, None);
            }
            // Traffic is on the new version for good (its analysis passed):
            // later waves may go now, not after the drain and cleanup.
            if e.result.is_ok() && last_moves.get(&e.service) == Some(&e.step) {
                super::mark(&shared, &e.service, Some(&commit), None);
            }
            log_step(e);
            if let Err(err) = log.append(&Event::from(e)) {
                warn!(path = %log.path().display(), error = %err, "cannot append to the event log");
            }
        };
        let shared = self.shared.clone();
        let on_progress = move |service: &str, line: &str| {
            info!(service = %service, "{line}");
            if line.starts_with("pulling:") {
                pulling(&shared, service, Some(line));
            }
        };
        let on_rollout = rollouts::on_rollout(self.shared.clone(), self.progress.clone());
        let news = self.news.clone();
        let interrupted = move || {
            news.as_ref()
                .is_some_and(|n| n.load(std::sync::atomic::Ordering::Relaxed))
        };
        let hooks = crate::reconcile::Hooks {
            on_step: &on_step,
            on_progress: &on_progress,
            on_rollout: &on_rollout,
            interrupted: &interrupted,
        };
        for run in self.host.execute(plan, rev, &hooks).await {
            if !new_commit {
                self.count(&run.service, |m| &mut m.drift_corrections);
            }
            problem = self.ran(outcome::ran(&run), rev, backoff, unrecorded).or(problem);
        }
        problem
    }

    /// Acts on what came of one service's run: backoff, what peers read,
    /// the log and the metrics; the deploy line goes to `unrecorded`.
    /// Returns the problem to report when the swarm lost quorum.
    fn ran(
        &mut self,
        o: ServiceOutcome,
        rev: &Revision,
        backoff: &mut Backoff,
        unrecorded: &mut Vec<Unrecorded>,
    ) -> Option<String> {
        let ms = o.duration.as_millis() as u64;
        let mut record = |result, error| {
            unrecorded.push(Unrecorded {
                service: o.service.clone(),
                result,
                ms,
                error,
            })
        };
        let commit = short(&rev.commit);
        match &o.outcome {
            Outcome::Deployed => {
                backoff.succeeded(&o.service);
                self.mark(&o.service, Some(&rev.commit), None);
                if let Err(e) = self.host.records.forget_rolled_back(&o.service) {
                    warn!(service = %o.service, error = %e, "cannot remove the rolled-back record");
                }
                info!(service = %o.service, commit = %commit, took = %crate::spec::duration::format(round(o.duration)), "converged");
                record(EventResult::Ok, None);
            }
            Outcome::RolledBack(f) => {
                self.mark(&o.service, None, Some(&rev.commit));
                rollouts::count(&self.shared, &o.service, f);
                record(EventResult::RolledBack, o.reason.clone());
            }
            Outcome::Failed {
                retry: Retry::NextPass, ..
            } => {
                self.mark(&o.service, None, Some(&rev.commit));
                let e = o.error.clone().unwrap_or_default();
                error!(service = %o.service, commit = %commit, error = %e, "deploy stopped: the swarm lost quorum; traffic stays where it was, tried again next poll");
                record(EventResult::Failed, o.error.clone());
                return Some(e);
            }
            Outcome::Failed {
                retry: Retry::Backoff,
                step,
            } => {
                self.mark(&o.service, None, Some(&rev.commit));
                let retry = backoff.failed(&o.service, &rev.commit, Instant::now());
                let e = o.error.clone().unwrap_or_default();
                error!(service = %o.service, commit = %commit, error = %e, retry_in = %crate::spec::duration::format(retry), "deploy failed, traffic stays where it was");
                if *step == StepKind::WaitHealthy {
                    self.count(&o.service, |m| &mut m.failed_checks);
                }
                record(EventResult::Failed, o.error.clone());
            }
            Outcome::Waiting => {
                // Said once per commit: the wait goes on pass after pass.
                backoff.succeeded(&o.service);
                if self
                    .refused
                    .insert((o.service.clone(), format!("waiting {}", rev.commit)))
                {
                    info!(service = %o.service, commit = %commit, "{}", o.reason.as_deref().unwrap_or("waiting for promotion"));
                }
            }
            // Not from a run: the plan's refusals and holds (`planned`).
            Outcome::Refused | Outcome::NotAgain => self.planned(&o, rev),
        }
        None
    }

    /// The plan's refusals and holds: each said once per commit, a
    /// refusal also in the event log; a held service has failed this
    /// commit, for later waves.
    pub(super) fn planned(&mut self, o: &ServiceOutcome, rev: &Revision) {
        let why = o.error.as_deref().unwrap_or("");
        let first = self.refused.insert((o.service.clone(), rev.commit.clone()));
        match o.outcome {
            Outcome::Refused if first => {
                error!(service = %o.service, commit = %short(&rev.commit), reason = %why, "refused");
                self.record(&o.service, &rev.commit, EventResult::Refused, 0, Some(why.to_string()));
            }
            Outcome::NotAgain => {
                if first {
                    warn!(service = %o.service, commit = %short(&rev.commit), reason = %why, "not deployed again");
                }
                self.mark(&o.service, None, Some(&rev.commit));
            }
            _ => {}
        }
    }

    /// One more for `service` in a per-service counter of the metrics.
    fn count(&self, service: &str, counter: fn(&mut Metrics) -> &mut BTreeMap<String, u64>) {
        let mut m = self.shared.metrics.write().expect("metrics lock");
        *counter(&mut m).entry(service.to_string()).or_default() += 1;
    }

    /// Records a deploy result in the event log, the status and the deploy counter.
    pub(super) fn record(
        &self,
        service: &str,
        commit: &str,
        result: EventResult,
        duration_ms: u64,
        error: Option<String>,
    ) {
        let outcome = Event::outcome(service, commit, result.clone(), duration_ms, error.clone());
        if let Err(err) = self.log.append(&outcome) {
            warn!(path = %self.log.path().display(), error = %err, "cannot append to the event log");
        }
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let d = status::Deploy {
            commit: commit.to_string(),
            result: result.clone(),
            duration_ms,
            error,
            at,
            message: None,
            author: None,
        };
        self.shared
            .status
            .write()
            .expect("status lock")
            .services
            .entry(service.to_string())
            .or_default()
            .last_deploy = Some(d);
        *self
            .shared
            .metrics
            .write()
            .expect("metrics lock")
            .deploys
            .entry((service.to_string(), result))
            .or_default() += 1;
    }

    /// Writes the deploy lines the runs of this pass left.
    pub(super) fn record_runs(&self, commit: &str, unrecorded: Vec<Unrecorded>) {
        for u in unrecorded {
            self.record(&u.service, commit, u.result, u.ms, u.error);
        }
    }

    /// Live color, images and running replicas from an observation.
    pub(super) fn update_services(&self, o: &crate::plan::Observed) {
        let pins = crate::pins::Pins::new(&self.host.config.state_dir).all();
        let mut status = self.shared.status.write().expect("status lock");
        status.services.retain(|name, _| o.services.contains_key(name));
        for (name, obs) in &o.services {
            let s = status.services.entry(name.clone()).or_default();
            s.live = obs.live;
            s.weights = obs.weights.clone();
            s.rolled_back = obs.rolled_back.as_ref().map(|rb| status::RolledBackStatus {
                commit: rb.commit.clone(),
                figures: rb.figures.clone(),
            });
            for c in crate::spec::Color::ALL {
                let cs = obs.containers.get(c);
                *s.images.get_mut(c) = cs.first().map(|x| x.image.clone());
                *s.digests.get_mut(c) = cs.first().and_then(|x| pins.get(&x.image).cloned());
                *s.running.get_mut(c) = cs.iter().filter(|x| x.running).count() as u32;
                *s.tasks.get_mut(c) = cs
                    .iter()
                    .filter_map(|x| {
                        Some(status::TaskStatus {
                            name: x.name.clone(),
                            node: x.node.clone()?,
                            endpoint: x.port.and(x.endpoint(0)).map(|e| e.to_string()),
                            running: x.running,
                        })
                    })
                    .collect();
            }
        }
    }
}

/// A run's deploy line, held until the status shows what the run left
/// running: whoever reads a deploy as done then reads its traffic too.
pub(super) struct Unrecorded {
    service: String,
    result: EventResult,
    ms: u64,
    error: Option<String>,
}

/// The pull in flight of `service` in the status (the dashboard shows it).
fn pulling(shared: &status::Shared, service: &str, line: Option<&str>) {
    let mut st = shared.status.write().expect("status lock");
    st.services.entry(service.to_string()).or_default().pulling = line.map(String::from);
}
