//! Running a pass's plan and recording what came of each service: the
//! event log, the status, the metrics, backoff, and what peers read.

use std::time::Instant;

use tracing::{error, info, warn};

use super::{log_step, rollouts, round, short, status, Daemon};
use crate::engine::{StepError, StepEvent};
use crate::events::{Event, EventResult, StepKind};
use crate::reconcile::Revision;

impl Daemon {
    /// Runs the plan and records each service's outcome. Returns the
    /// problem to report when a deploy stopped because the swarm lost
    /// quorum: such a deploy is tried again next poll, not backed off.
    pub(super) async fn execute(
        &mut self,
        plan: &crate::plan::Plan,
        rev: &Revision,
        new_commit: bool,
    ) -> Option<String> {
        let mut problem = None;
        let log = self.log.clone();
        let progress = self.progress.clone();
        let on_step = move |e: &StepEvent| {
            progress.touch();
            log_step(e);
            if let Err(err) = log.append(&Event::from(e)) {
                warn!(path = %log.path().display(), error = %err, "cannot append to the event log");
            }
        };
        let on_progress = |service: &str, line: &str| info!(service = %service, "{line}");
        let on_rollout = rollouts::on_rollout(self.shared.clone(), self.progress.clone());
        let hooks = crate::reconcile::Hooks {
            on_step: &on_step,
            on_progress: &on_progress,
            on_rollout: &on_rollout,
        };
        for o in self.host.execute(plan, rev, &hooks).await {
            let ms = o.duration.as_millis() as u64;
            if !new_commit {
                *self
                    .shared
                    .metrics
                    .write()
                    .expect("metrics lock")
                    .drift_corrections
                    .entry(o.service.clone())
                    .or_default() += 1;
            }
            match o.result {
                Ok(()) => {
                    self.backoff.succeeded(&o.service);
                    self.mark(&o.service, Some(&rev.commit), None);
                    info!(service = %o.service, commit = %short(&rev.commit), took = %crate::spec::duration::format(round(o.duration)), "converged");
                    self.record(&o.service, &rev.commit, EventResult::Ok, ms, None);
                }
                Err(e) if matches!(e.reason, StepError::RolledBack(_)) => {
                    self.mark(&o.service, None, Some(&rev.commit));
                    rollouts::count(&self.shared, &o.service, &e.reason);
                    self.record(
                        &o.service,
                        &rev.commit,
                        EventResult::RolledBack,
                        ms,
                        Some(e.reason.to_string()),
                    );
                }
                Err(e) if matches!(&e.reason, StepError::Docker(d) if d.is_no_quorum()) => {
                    self.mark(&o.service, None, Some(&rev.commit));
                    error!(service = %o.service, commit = %short(&rev.commit), error = %e, "deploy stopped: the swarm lost quorum; traffic stays where it was, tried again next poll");
                    self.record(&o.service, &rev.commit, EventResult::Failed, ms, Some(e.to_string()));
                    problem = Some(e.to_string());
                }
                Err(e) => {
                    self.mark(&o.service, None, Some(&rev.commit));
                    let retry = self.backoff.failed(&o.service, &rev.commit, Instant::now());
                    error!(service = %o.service, commit = %short(&rev.commit), error = %e, retry_in = %crate::spec::duration::format(retry), "deploy failed, traffic stays where it was");
                    if e.step == StepKind::WaitHealthy {
                        *self
                            .shared
                            .metrics
                            .write()
                            .expect("metrics lock")
                            .failed_checks
                            .entry(o.service.clone())
                            .or_default() += 1;
                    }
                    self.record(&o.service, &rev.commit, EventResult::Failed, ms, Some(e.to_string()));
                }
            }
        }
        problem
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

    /// Live color, images and running replicas from an observation.
    pub(super) fn update_services(&self, o: &crate::plan::Observed) {
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
