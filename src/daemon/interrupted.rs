//! Deploys a crash cut short after their last step. A teal killed between
//! a run's last step and its `deploy` line (kill -9, a power cut) leaves
//! the run open in the event log; when the next teal finds the service
//! already converged on that commit, nothing is left to run and no deploy
//! line would ever follow. So at start teal reads the log's tail for runs
//! left open, and its first pass that plans writes the deploy line of each
//! service it finds converged on that run's commit. (Found by the fault
//! soak: kill -9 right after a switch.) A run cut short earlier is run
//! again by that pass, which writes its own deploy line.

use std::collections::BTreeMap;
use std::path::Path;

use crate::events::{self, StepKind};

/// How much of the log's tail is read for open runs.
const TAIL: u64 = 1 << 20;

/// Service -> commit of each run the event log leaves open.
pub(super) fn open_runs(log: &Path) -> BTreeMap<String, String> {
    let Ok(tail) = events::read_tail(log, TAIL) else {
        return BTreeMap::new();
    };
    let mut open = BTreeMap::new();
    for e in tail.events {
        match e.step {
            StepKind::Deploy => {
                open.remove(&e.service);
            }
            StepKind::Certificate | StepKind::Other(_) => {}
            _ => {
                open.insert(e.service, e.commit);
            }
        }
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, EventLog, EventResult};

    fn step(service: &str, commit: &str, step: &str) -> Event {
        Event {
            step: step.into(),
            ..Event::outcome(service, commit, EventResult::Ok, 1, None)
        }
    }

    #[test]
    fn a_run_without_its_deploy_line_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        for e in [
            step("web", "a1", "start_color"),
            step("web", "a1", "switch"),
            Event::outcome("web", "a1", EventResult::Ok, 9, None),
            step("api", "a1", "start_color"),
            step("web", "b2", "start_color"),
            step("web", "b2", "switch"),
            step("api", "a1", "certificate"),
            Event::outcome("api", "a1", EventResult::Failed, 9, None),
            step("db", "b2", "certificate"),
        ] {
            log.append(&e).unwrap();
        }
        let open = open_runs(log.path());
        assert_eq!(open, BTreeMap::from([("web".to_string(), "b2".to_string())]));
    }
}
