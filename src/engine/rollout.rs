//! Running a strategy: each tick observes the new color's counters, asks
//! the strategy's pure step function what to do, records the progress and
//! then acts (an abort acts while its record is written, so traffic goes
//! back without waiting on the disk). A recorded rollout of the same
//! service is resumed after a restart, its step begun afresh.

use std::time::Duration;

use super::clock::now_ms;
use super::prometheus::PromPoller;
use super::{Engine, StepError};
use crate::drivers::route::Counts;
use crate::plan::{is_service, service_hash, Step};
use crate::spec::{Color, PerColor, Service};
use crate::strategy::{self, blue_green, canary, Action, Next, Observation, Phase, Progress};

/// How often a rollout is judged: the time from the error budget being
/// crossed to all traffic back is about this plus one proxy call.
pub const TICK: Duration = Duration::from_millis(250);

/// How long one pass judges a rollout that waits for a promotion before
/// it moves on (the wait goes on at the next pass, from its record).
pub const WAIT_SLICE: Duration = Duration::from_secs(5);

impl Engine<'_> {
    /// Runs a `Canary` or `Verify` step to its end: Ok when all traffic is
    /// on the new color, `RolledBack` when analysis put it back.
    pub(super) async fn rollout(&self, svc: &Service, step: &Step) -> Result<(), StepError> {
        let (from, to) = match step {
            Step::Canary { from, to, .. } => (*from, *to),
            Step::Verify { color, from, .. } => (*from, *color),
            _ => return Err(StepError::Invalid(format!("{step:?} is not a rollout"))),
        };
        let hash = service_hash(svc);
        let obs = self.observe(svc, to, None).await?;
        let next = match self.records.load(&svc.name) {
            Some(p) if resumable(&p, svc, from, to, step) => resume(&p, &obs),
            _ => {
                let p0 = strategy::begin(&svc.name, self.commit, &hash, from, to, &obs);
                match step {
                    Step::Canary { steps, .. } => canary::start(steps, &p0, &obs),
                    _ => blue_green::start(svc.analysis.as_ref(), &p0, &obs),
                }
            }
        };
        let mut p = self.record_and_act(svc, None, next).await?;
        // The commit of the record: a resumed rollout keeps its own.
        let prom = PromPoller::start(svc.analysis.as_ref(), &svc.name, to, &p.commit);
        let started = std::time::Instant::now();
        while !p.finished() {
            if p.waiting() && (started.elapsed() >= WAIT_SLICE || (self.interrupted)()) {
                // The pass goes on without this service; the next one
                // resumes the wait (and reads a promotion committed meanwhile).
                return Err(StepError::Waiting(strategy::describe(&p)));
            }
            tokio::time::sleep(TICK).await;
            let mut obs = self.observe(svc, to, prom.as_ref()).await?;
            obs.gate = svc.promotion.gate(&p.commit);
            let next = match step {
                Step::Canary { steps, .. } => {
                    canary::step(steps, svc.analysis.as_ref(), svc.promotion.deadline, &p, &obs)
                }
                _ => blue_green::step(svc.analysis.as_ref(), &p, &obs),
            };
            if next.progress != p || !next.actions.is_empty() {
                p = self.record_and_act(svc, Some(&p), next).await?;
            }
        }
        match p.phase {
            Phase::RolledBack(f) => Err(StepError::RolledBack(f)),
            _ => Ok(()),
        }
    }

    /// Records the new progress, then runs its actions. Moving traffic
    /// back (an abort) does not wait for the disk: the record is written
    /// while the proxy acts.
    async fn record_and_act(
        &self,
        svc: &Service,
        before: Option<&Progress>,
        next: Next,
    ) -> Result<Progress, StepError> {
        let records = self.records.clone();
        let p = next.progress.clone();
        let mut save = Some(tokio::task::spawn_blocking(move || records.save(&p)));
        let aborting = matches!(next.progress.phase, Phase::RolledBack(_));
        if !aborting {
            if let Some(s) = save.take() {
                s.await
                    .map_err(|e| StepError::Invalid(format!("recording the rollout: {e}")))?
                    .map_err(|e| StepError::Invalid(format!("recording the rollout of {}: {e}", svc.name)))?;
            }
        }
        for a in &next.actions {
            match a {
                Action::Weights(w) => self.set_weights(svc, &next.progress, w).await?,
            }
        }
        if let Some(s) = save {
            let _ = s.await;
        }
        if before.map(|b| &b.phase) != Some(&next.progress.phase) {
            (self.on_rollout)(&next.progress);
        }
        Ok(next.progress)
    }

    /// Routes `w` (percent per color); the preview serves the new color
    /// until it has all traffic, then the old one. Testers (a declared
    /// match) reach the new color during the steps.
    async fn set_weights(&self, svc: &Service, p: &Progress, w: &PerColor<u32>) -> Result<(), StepError> {
        let preview = if *w.get(p.to) == 100 { p.from } else { p.to };
        let mut route = self.route(svc, w, preview).await?;
        if svc.traffic.testers.is_some() && matches!(p.phase, Phase::Step { .. } | Phase::Waiting { .. }) {
            route.next = Some(p.to);
        }
        self.proxy.apply(&route).await?;
        Ok(())
    }

    /// The clock, the new color's counters and the newest Prometheus
    /// reading. Counters are read only when analysis judges them, so a
    /// proxy that cannot count (nginx with reloads) will do otherwise.
    pub(super) async fn observe(
        &self,
        svc: &Service,
        to: Color,
        prom: Option<&PromPoller>,
    ) -> Result<Observation, StepError> {
        let counts = match &svc.analysis {
            Some(a) if a.max_errors.is_some() => self
                .proxy
                .counters()
                .await?
                .get(&svc.name)
                .map(|c| *c.get(to))
                .unwrap_or_default(),
            _ => Counts::default(),
        };
        Ok(Observation {
            now_ms: now_ms(),
            counts,
            prom: prom.and_then(PromPoller::take),
            gate: Default::default(),
        })
    }
}

/// A record of the same rollout (same service content, same colors, same
/// kind of step) that has not finished.
fn resumable(p: &Progress, svc: &Service, from: Color, to: Color, step: &Step) -> bool {
    let same_kind = matches!(
        (&p.phase, step),
        (Phase::Step { .. } | Phase::Waiting { .. }, Step::Canary { .. }) | (Phase::Verify, _)
    );
    is_service(&p.service_hash, svc) && p.from == from && p.to == to && !p.finished() && same_kind
}

/// Resumes the recorded phase from now: its weights set again, its hold
/// and judgement begun afresh. A wait for a promotion goes on as it was:
/// since when it waits (for the deadline) and what it has judged.
fn resume(p: &Progress, obs: &Observation) -> Next {
    let weight = match p.phase {
        Phase::Step { weight, .. } => weight,
        Phase::Waiting { weight, .. } => {
            return Next {
                actions: vec![Action::Weights(p.split(weight))],
                progress: p.clone(),
            }
        }
        _ => 100,
    };
    Next {
        actions: vec![Action::Weights(p.split(weight))],
        progress: Progress {
            baseline: obs.counts,
            since_ms: obs.now_ms,
            prom: p.prom.new_phase(),
            ..p.clone()
        },
    }
}
