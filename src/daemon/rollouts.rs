//! What the daemon makes of rollouts: each new phase in the status and the
//! log, and rollbacks in the metrics.

use tracing::{info, warn};

use super::status::Shared;
use super::systemd::Progress as Watchdog;
use crate::commit::ShortCommit;
use crate::strategy::{describe, Failure, Phase, Progress};

/// The engine's rollout hook: one log line per phase, the phase in
/// `/status` with its weights, and a touch of the watchdog (a long canary is progress).
pub fn on_rollout(shared: Shared, watchdog: Watchdog) -> impl Fn(&Progress) + Sync {
    move |p: &Progress| {
        watchdog.touch();
        let commit = ShortCommit::of(&p.commit);
        let what = describe(p);
        match &p.phase {
            Phase::RolledBack(f) => {
                warn!(service = %p.service, color = %p.from, commit = %commit, reason = f.reason.as_str(), "{what}")
            }
            _ => info!(service = %p.service, color = %p.to, commit = %commit, "{what}"),
        }
        // The weights follow each phase live (the pass's own observation
        // comes only once the rollout is over).
        let mut status = shared.status.write().expect("status lock");
        let s = status.services.entry(p.service.clone()).or_default();
        s.weights = p.weights();
        s.rollout = Some(p.clone());
    }
}

/// Counts a rollback in `teal_rollbacks_total`.
pub fn count(shared: &Shared, service: &str, f: &Failure) {
    *shared
        .metrics
        .write()
        .expect("metrics lock")
        .rollbacks
        .entry((service.to_string(), f.reason.as_str().to_string()))
        .or_default() += 1;
}
