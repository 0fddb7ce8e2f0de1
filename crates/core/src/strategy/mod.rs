//! Strategies: how a new version takes traffic once its checks passed. A
//! strategy is a pure step function, `(recorded progress, observation) ->
//! (actions, new progress)`: no IO, no clock of its own. The engine
//! records the new progress before it runs the actions through the
//! drivers, so a restart resumes from the record, and these functions are
//! tested without Docker or a proxy.

pub mod analysis;
pub mod blue_green;
pub mod canary;
pub mod judge;
pub mod prometheus;
pub mod rolling;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::promote::Gate;
use crate::spec::{Color, PerColor};
use crate::strategy::analysis::Counts;
pub use analysis::{Failure, Reason, Verdict};
pub use prometheus::{PromReading, PromTally};

/// How far one rollout of one service has come: recorded in the state dir
/// before every action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub service: String,
    /// The commit being rolled out.
    pub commit: String,
    /// Identity of the desired service (`plan::service_hash`): a later
    /// commit that leaves the service alone continues this rollout, one
    /// that changes it starts a new one.
    pub service_hash: String,
    /// The color that served before, and the new one.
    pub from: Color,
    pub to: Color,
    pub phase: Phase,
    /// The new color's counters when the phase began.
    pub baseline: Counts,
    /// When the phase began, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// Evaluations of the Prometheus query judged so far.
    #[serde(default, skip_serializing_if = "PromTally::is_zero")]
    pub prom: PromTally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Canary step `index` (from 0): `weight` % of requests on the new color.
    Step { index: usize, weight: u32 },
    /// A step that waits for a promotion (`hold: until_promoted`, or a
    /// manual blue-green at 0 %), with `weight` % on the new color: judged
    /// meanwhile, aborted by `abort:` or past the progress deadline.
    Waiting { index: usize, weight: u32 },
    /// All traffic on the new color, judged until the verify window ends.
    Verify,
    /// All traffic on the new color: the rollout is over.
    Done,
    /// All traffic back on the old color; the new one keeps running, idle.
    RolledBack(Failure),
}

impl Progress {
    /// True once nothing more will happen.
    pub fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::RolledBack(_))
    }

    /// Time spent in the current phase at `now_ms`.
    pub fn elapsed(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.since_ms))
    }

    /// A new phase beginning now, judged from the current counters.
    fn enter(&self, phase: Phase, obs: &Observation) -> Progress {
        Progress {
            phase,
            baseline: obs.counts,
            since_ms: obs.now_ms,
            prom: self.prom.new_phase(),
            ..self.clone()
        }
    }

    /// Traffic split with `weight` % on the new color.
    pub fn split(&self, weight: u32) -> PerColor<u32> {
        let mut w = PerColor::default();
        *w.get_mut(self.to) = weight;
        *w.get_mut(self.from) = 100 - weight;
        w
    }

    /// The traffic split this phase puts on the proxy.
    pub fn weights(&self) -> PerColor<u32> {
        match &self.phase {
            Phase::Step { weight, .. } | Phase::Waiting { weight, .. } => self.split(*weight),
            Phase::Verify | Phase::Done => self.split(100),
            Phase::RolledBack(_) => self.split(0),
        }
    }

    /// A step waiting for a promotion.
    pub fn waiting(&self) -> bool {
        matches!(self.phase, Phase::Waiting { .. })
    }

    /// Aborts: all traffic back on the old color, at once.
    fn roll_back(&self, f: Failure, obs: &Observation) -> Next {
        Next {
            actions: vec![Action::Weights(self.split(0))],
            progress: self.enter(Phase::RolledBack(f), obs),
        }
    }
}

/// What the engine saw this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The new color's response counters, as the proxy reports them.
    pub counts: Counts,
    /// The Prometheus query's newest evaluation, when one arrived since
    /// the last tick (each is judged once).
    pub prom: Option<PromReading>,
    /// What the repo says about this rollout: promoted, aborted, neither.
    pub gate: Gate,
}

/// What the engine does for a strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set the share of requests per color (summing to 100).
    Weights(PerColor<u32>),
}

/// A step function's result: record `progress`, then run `actions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Next {
    pub progress: Progress,
    pub actions: Vec<Action>,
}

impl Next {
    /// No action, same progress.
    fn stay(p: &Progress) -> Next {
        Next {
            progress: p.clone(),
            actions: vec![],
        }
    }
}

/// A phase in a few words: "canary step 1: 10 % of requests to green".
pub fn describe(p: &Progress) -> String {
    match &p.phase {
        Phase::Step { index, weight } => format!("canary step {}: {weight} % of requests to {}", index + 1, p.to),
        Phase::Waiting { weight, .. } => format!(
            "waiting for promotion of {} ({weight} % of requests to {}): teal promote {}, or teal abort {}",
            crate::commit::ShortCommit::git(&p.commit),
            p.to,
            p.service,
            p.service
        ),
        Phase::Verify => format!("verifying {} with all traffic", p.to),
        Phase::Done => format!("all traffic on {}", p.to),
        Phase::RolledBack(f) => format!("rolled back by analysis, all traffic back on {}: {}", p.from, f.figures),
    }
}

/// A fresh record for a rollout from `from` to `to` (its phase is set by
/// the strategy's `start`).
pub fn begin(service: &str, commit: &str, service_hash: &str, from: Color, to: Color, obs: &Observation) -> Progress {
    Progress {
        service: service.to_string(),
        commit: commit.to_string(),
        service_hash: service_hash.to_string(),
        from,
        to,
        phase: Phase::Done,
        baseline: obs.counts,
        since_ms: obs.now_ms,
        prom: PromTally::default(),
    }
}
