//! What came of each service in a pass, sorted in one place: deployed,
//! rolled back by analysis, failed (backed off, or tried again next pass
//! when the swarm lost quorum), refused, or not tried again after a
//! rollback. `teal apply` and the daemon act on these (event log, status,
//! metrics, backoff, exit code) instead of each reading the plan and the
//! engine's errors again.

use std::time::Duration;

use crate::events::{EventResult, StepKind};
use crate::plan::{Change, Plan};
use crate::strategy::Failure;

/// How the engine's run of one service ended, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub service: String,
    pub duration: Duration,
    pub result: Result<(), RunError>,
}

/// The step a run stopped at, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RunError {
    pub step: StepKind,
    /// The whole error: `<service>: <step> failed: <reason>`.
    pub error: String,
    /// The reason alone.
    pub reason: String,
    pub cause: Cause,
}

/// What kind of failure stopped a run: what decides the outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// Analysis of a canary or verify window put all traffic back.
    RolledBack(Failure),
    /// The swarm has no leader: nothing is wrong with the commit.
    NoQuorum,
    /// A rollout waits for a promotion: nothing failed.
    Waiting,
    Other,
}

/// What came of one service in one pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The service runs the commit.
    Deployed,
    /// Analysis put all traffic back on the old color.
    RolledBack(Failure),
    /// Traffic stays where it was; `step` is where the run stopped.
    Failed { retry: Retry, step: StepKind },
    /// The plan would not apply the commit to the service.
    Refused,
    /// Rolled back by analysis at an earlier pass: not tried again until a
    /// commit changes the service.
    NotAgain,
    /// A rollout waits for a promotion, traffic as it is; the next pass
    /// goes on with it.
    Waiting,
}

/// When a failed deploy is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// After a backoff (a new commit tries at once).
    Backoff,
    /// At the next pass: the cause heals by itself (a swarm regaining quorum).
    NextPass,
}

/// One service's outcome with what a report of it says.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceOutcome {
    pub service: String,
    pub outcome: Outcome,
    /// How long the run took (zero when nothing ran).
    pub duration: Duration,
    /// Why it was refused or not tried again (the plan's words), or the
    /// run's whole error.
    pub error: Option<String>,
    /// A failed run's reason alone (without service and step).
    pub reason: Option<String>,
}

impl Outcome {
    /// The `result` of the service's `deploy` line and deploy counter;
    /// none when nothing was tried.
    pub fn result(&self) -> Option<EventResult> {
        match self {
            Outcome::Deployed => Some(EventResult::Ok),
            Outcome::RolledBack(_) => Some(EventResult::RolledBack),
            Outcome::Failed { .. } => Some(EventResult::Failed),
            Outcome::Refused => Some(EventResult::Refused),
            Outcome::NotAgain | Outcome::Waiting => None,
        }
    }
}

/// The services the plan will not deploy, in plan order: refused, or
/// held after a rollback.
pub fn planned(plan: &Plan) -> Vec<ServiceOutcome> {
    plan.services
        .iter()
        .filter_map(|sp| {
            let outcome = match sp.change {
                Change::Refused => Outcome::Refused,
                Change::RolledBack => Outcome::NotAgain,
                _ => return None,
            };
            Some(ServiceOutcome {
                service: sp.service.clone(),
                outcome,
                duration: Duration::ZERO,
                error: Some(sp.refused.clone().unwrap_or_default()),
                reason: None,
            })
        })
        .collect()
}

/// What came of one run of the engine.
pub fn ran(run: &Run) -> ServiceOutcome {
    let (outcome, error, reason) = match &run.result {
        Ok(()) => (Outcome::Deployed, None, None),
        Err(e) => {
            let outcome = match &e.cause {
                Cause::RolledBack(f) => Outcome::RolledBack(f.clone()),
                Cause::Waiting => Outcome::Waiting,
                Cause::NoQuorum => Outcome::Failed {
                    retry: Retry::NextPass,
                    step: e.step.clone(),
                },
                Cause::Other => Outcome::Failed {
                    retry: Retry::Backoff,
                    step: e.step.clone(),
                },
            };
            (outcome, Some(e.error.clone()), Some(e.reason.clone()))
        }
    };
    ServiceOutcome {
        service: run.service.clone(),
        outcome,
        duration: run.duration,
        error,
        reason,
    }
}

/// Every service's outcome in a pass: the plan's refusals and holds,
/// then each run, in order.
pub fn sort(plan: &Plan, runs: &[Run]) -> Vec<ServiceOutcome> {
    let mut out = planned(plan);
    out.extend(runs.iter().map(ran));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ServicePlan, Transition};
    use crate::spec::PerColor;
    use crate::strategy::Reason;

    fn service(name: &str, change: Change, refused: Option<&str>) -> ServicePlan {
        ServicePlan {
            service: name.into(),
            change,
            active: Transition { from: None, to: None },
            images: PerColor {
                blue: Transition { from: None, to: None },
                green: Transition { from: None, to: None },
            },
            gate: None,
            steps: vec![],
            refused: refused.map(String::from),
            hosts: vec![],
            secrets: vec![],
        }
    }

    fn failed(name: &str, step: StepKind, cause: Cause) -> Run {
        Run {
            service: name.into(),
            duration: Duration::from_millis(900),
            result: Err(RunError {
                error: format!("{name}: {step} failed: boom"),
                step,
                reason: "boom".into(),
                cause,
            }),
        }
    }

    #[test]
    fn each_service_is_sorted_once_with_its_result() {
        let plan = Plan {
            services: vec![
                service("api", Change::Refused, Some("the live color would change")),
                service("db", Change::None, None),
                service("web", Change::RolledBack, Some("rolled back by analysis at 4be1c0aa7f")),
            ],
        };
        let f = Failure {
            reason: Reason::Errors,
            figures: "5xx 23.1 %".into(),
        };
        let runs = [
            Run {
                service: "a".into(),
                duration: Duration::from_millis(5),
                result: Ok(()),
            },
            failed("b", StepKind::Canary, Cause::RolledBack(f.clone())),
            failed("c", StepKind::StartColor, Cause::NoQuorum),
            failed("d", StepKind::WaitHealthy, Cause::Other),
        ];
        let got: Vec<(String, Outcome, Option<EventResult>)> = sort(&plan, &runs)
            .into_iter()
            .map(|o| (o.service, o.outcome.clone(), o.outcome.result()))
            .collect();
        let want = [
            ("api", Outcome::Refused, Some(EventResult::Refused)),
            ("web", Outcome::NotAgain, None),
            ("a", Outcome::Deployed, Some(EventResult::Ok)),
            ("b", Outcome::RolledBack(f), Some(EventResult::RolledBack)),
            (
                "c",
                Outcome::Failed {
                    retry: Retry::NextPass,
                    step: StepKind::StartColor,
                },
                Some(EventResult::Failed),
            ),
            (
                "d",
                Outcome::Failed {
                    retry: Retry::Backoff,
                    step: StepKind::WaitHealthy,
                },
                Some(EventResult::Failed),
            ),
        ]
        .map(|(s, o, r)| (s.to_string(), o, r));
        assert_eq!(got, want);
        let d = ran(&runs[3]);
        assert_eq!(
            (d.error.as_deref(), d.reason.as_deref(), d.duration),
            (
                Some("d: wait_healthy failed: boom"),
                Some("boom"),
                Duration::from_millis(900)
            )
        );
        assert_eq!(planned(&plan)[0].error.as_deref(), Some("the live color would change"));
    }
}
