//! The daemon's fetch: the branch head admitted or refused, and what the
//! status and the log say about it.

use tracing::{error, info, warn};

use super::{short, status, unix_now, Daemon, Problem, REPO};
use crate::commit::ShortCommit;
use crate::events::{Event, EventResult};
use crate::reconcile::{fetch_desired_with, DesiredError};

impl Daemon {
    /// Fetches the branch head; returns the problem it met, if any, for
    /// the pass to report.
    pub(super) async fn fetch(&mut self) -> Option<Problem> {
        let config = self.host.config.clone();
        let known = self.last_good.as_ref().map(|r| r.commit.clone());
        let cache = self.read_cache.clone();
        let fetched = tokio::task::spawn_blocking(move || {
            let rev = fetch_desired_with(&config, &cache)?;
            // The fast-forward baseline: the last commit accepted here.
            if known.as_deref() != Some(rev.commit.as_str()) {
                if let Err(e) = crate::reconcile::record_applied(&config.state_dir, &rev.commit) {
                    warn!(error = %e, "cannot record the applied commit");
                }
            }
            Ok(rev)
        })
        .await;
        // The status is edited in place: cloning it (every service's
        // entry) at each poll was a share of an idle daemon's time.
        let problem = match fetched {
            Ok(Ok(rev)) => {
                if self.last_good.as_ref().map(|r| &r.commit) != Some(&rev.commit) {
                    info!(commit = %short(&rev.commit), services = rev.desired.services.len(), "new commit");
                    self.shared.metrics.write().expect("metrics lock").last_applied_unix = Some(unix_now());
                }
                {
                    let mut status = self.shared.status.write().expect("status lock");
                    status.fetched_commit = Some(rev.commit.clone());
                    status.applied_commit = Some(rev.commit.clone());
                    status.config_errors.clear();
                    status.refused = None;
                }
                self.last_good = Some(std::sync::Arc::new(rev));
                None
            }
            Ok(Err(DesiredError::Refused { commit, reason })) => {
                {
                    let mut status = self.shared.status.write().expect("status lock");
                    status.fetched_commit = Some(commit.clone());
                    status.refused = Some(status::RefusedCommit {
                        commit: commit.clone(),
                        reason: reason.clone(),
                    });
                }
                self.refused_commit(&commit, &reason);
                Some(Problem::said(format!(
                    "refused {}: {reason}",
                    ShortCommit::git(&commit)
                )))
            }
            Ok(Err(DesiredError::Invalid { commit, diagnostics })) => {
                {
                    let mut status = self.shared.status.write().expect("status lock");
                    status.fetched_commit = Some(commit.clone());
                    status.config_errors = diagnostics.0.iter().map(|d| d.to_string()).collect();
                }
                Some(Problem::said(format!(
                    "commit {} has an invalid config, not applied:\n{diagnostics}",
                    short(&commit)
                )))
            }
            Ok(Err(e)) => Some(Problem::outage(e.to_string())),
            Err(e) => Some(Problem::outage(format!("fetch task: {e}"))),
        };
        if problem.is_some() {
            self.shared.metrics.write().expect("metrics lock").fetch_errors += 1;
        }
        problem
    }

    /// A head that is not signed as required, rewinds history or asks for
    /// more than the policy allows: said once per commit in the log and
    /// the event log; the last applied commit keeps being served.
    fn refused_commit(&mut self, commit: &str, reason: &str) {
        if !self.refused.insert((REPO.to_string(), commit.to_string())) {
            return;
        }
        error!(commit = %short(commit), reason = %reason, "refused: not applied, still serving the last applied commit");
        let event = Event::outcome(REPO, commit, EventResult::Refused, 0, Some(reason.to_string()));
        if let Err(err) = self.log.append(&event) {
            warn!(path = %self.log.path().display(), error = %err, "cannot append to the event log");
        }
    }
}
