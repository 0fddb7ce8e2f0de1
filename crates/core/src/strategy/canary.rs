//! Canary: the new color gets `weight` % of requests for each step, at
//! least `hold`, while analysis judges it; after the last step 100 %, then
//! the verify window if one is declared. A failed judgement puts all
//! traffic back at once.

use std::time::Duration;

use super::judge::{judge, Window};
use super::{blue_green, Action, Failure, Next, Observation, Phase, Progress, Reason, Verdict};
use crate::commit::ShortCommit;
use crate::spec::promote::Gate;
use crate::spec::{duration, Analysis, CanaryStep};

/// The first step: its weight on the new color.
pub fn start(steps: &[CanaryStep], p: &Progress, obs: &Observation) -> Next {
    enter_step(steps, 0, p, obs)
}

fn enter_step(steps: &[CanaryStep], index: usize, p: &Progress, obs: &Observation) -> Next {
    let Some(s) = steps.get(index) else {
        return full(p, obs, None);
    };
    let weight = s.weight;
    let phase = match s.manual {
        true => Phase::Waiting { index, weight },
        false => Phase::Step { index, weight },
    };
    Next {
        actions: vec![Action::Weights(p.split(weight))],
        progress: p.enter(phase, obs),
    }
}

/// One tick of a step waiting for a promotion: `abort:` and the deadline
/// put all traffic back, analysis judges the traffic it has (too little
/// is no failure: the wait may be long), and `promote:` moves on.
fn waiting(
    steps: &[CanaryStep],
    index: usize,
    analysis: Option<&Analysis>,
    deadline: Option<Duration>,
    p: &Progress,
    obs: &Observation,
) -> Next {
    let failure = |reason, figures: String| Failure { reason, figures };
    if obs.gate == Gate::Aborted {
        return p.roll_back(
            failure(
                Reason::Aborted,
                format!("aborted by a commit (abort: {})", ShortCommit::git(&p.commit)),
            ),
            obs,
        );
    }
    let elapsed = p.elapsed(obs.now_ms);
    if let Some(d) = deadline.filter(|d| elapsed > *d) {
        return p.roll_back(
            failure(
                Reason::Deadline,
                format!("not promoted within progress_deadline {}", duration::format(d)),
            ),
            obs,
        );
    }
    // Judged as a verify window that never ends by itself.
    let (verdict, prom) = judge(analysis, p, obs, Window::Verify(Duration::MAX));
    let p = &Progress { prom, ..p.clone() };
    match verdict {
        Verdict::Fail(f) => p.roll_back(f, obs),
        _ if obs.gate == Gate::Promoted && index + 1 < steps.len() => enter_step(steps, index + 1, p, obs),
        _ if obs.gate == Gate::Promoted => full(p, obs, analysis),
        _ => Next::stay(p),
    }
}

/// All traffic on the new color; verify next, if declared.
fn full(p: &Progress, obs: &Observation, analysis: Option<&Analysis>) -> Next {
    let verify = analysis.and_then(|a| a.verify).is_some();
    Next {
        actions: vec![Action::Weights(p.split(100))],
        progress: p.enter(if verify { Phase::Verify } else { Phase::Done }, obs),
    }
}

/// One tick of a canary; `deadline` bounds a wait for a promotion.
pub fn step(
    steps: &[CanaryStep],
    analysis: Option<&Analysis>,
    deadline: Option<Duration>,
    p: &Progress,
    obs: &Observation,
) -> Next {
    match &p.phase {
        Phase::Waiting { index, .. } => waiting(steps, *index, analysis, deadline, p, obs),
        Phase::Step { index, .. } => {
            let Some(s) = steps.get(*index) else {
                return full(p, obs, analysis);
            };
            let (verdict, prom) = judge(analysis, p, obs, Window::Step(s.hold));
            let p = &Progress { prom, ..p.clone() };
            match verdict {
                Verdict::Wait => Next::stay(p),
                Verdict::Fail(f) => p.roll_back(f, obs),
                Verdict::Pass if index + 1 < steps.len() => enter_step(steps, index + 1, p, obs),
                Verdict::Pass => full(p, obs, analysis),
            }
        }
        Phase::Verify => blue_green::step(analysis, p, obs),
        Phase::Done | Phase::RolledBack(_) => Next::stay(p),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::spec::promote::Gate;
    use crate::spec::Color::{Blue, Green};
    use crate::spec::PerColor;
    use crate::strategy::analysis::Counts;
    use crate::strategy::{begin, Reason};

    fn steps() -> Vec<CanaryStep> {
        vec![
            CanaryStep {
                weight: 10,
                hold: Duration::from_secs(30),
                manual: false,
            },
            CanaryStep {
                weight: 50,
                hold: Duration::from_secs(30),
                manual: false,
            },
        ]
    }

    fn obs(secs: u64, ok: u64, err: u64) -> Observation {
        Observation {
            now_ms: secs * 1000,
            counts: Counts {
                xx2: ok,
                xx5: err,
                ..Default::default()
            },
            prom: None,
            gate: Default::default(),
        }
    }

    fn w(blue: u32, green: u32) -> Vec<Action> {
        vec![Action::Weights(PerColor { blue, green })]
    }

    #[test]
    fn a_good_canary_walks_its_steps_then_takes_all_traffic() {
        let an = Analysis {
            max_errors: Some(1.0),
            min_requests: 20,
            verify: None,
            prometheus: None,
        };
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 0, 0));
        let n = start(&steps(), &p0, &obs(0, 0, 0));
        assert_eq!(n.actions, w(90, 10));
        assert_eq!(n.progress.phase, Phase::Step { index: 0, weight: 10 });
        // What the record says the proxy carries is what was set.
        assert_eq!(n.actions, vec![Action::Weights(n.progress.weights())]);
        // Held: 29 s in, nothing happens.
        let held = step(&steps(), Some(&an), None, &n.progress, &obs(29, 100, 0));
        assert_eq!(held.actions, vec![]);
        // 30 s with enough good responses: next step, judged from here.
        let n = step(&steps(), Some(&an), None, &n.progress, &obs(30, 100, 0));
        assert_eq!(n.actions, w(50, 50));
        assert_eq!(n.progress.baseline.xx2, 100);
        let n = step(&steps(), Some(&an), None, &n.progress, &obs(60, 400, 1));
        assert_eq!(n.actions, w(0, 100));
        assert_eq!(n.progress.phase, Phase::Done);
        assert_eq!(n.actions, vec![Action::Weights(n.progress.weights())]);
        assert!(n.progress.finished());
    }

    #[test]
    fn errors_above_the_budget_put_all_traffic_back_at_once() {
        let an = Analysis {
            max_errors: Some(5.0),
            min_requests: 20,
            verify: None,
            prometheus: None,
        };
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 0, 0));
        let n = start(&steps(), &p0, &obs(0, 0, 0));
        let n = step(&steps(), Some(&an), None, &n.progress, &obs(3, 163, 49));
        assert_eq!(n.actions, w(100, 0));
        assert_eq!(n.actions, vec![Action::Weights(n.progress.weights())]);
        let Phase::RolledBack(f) = &n.progress.phase else {
            panic!("{:?}", n.progress.phase)
        };
        assert_eq!(f.reason, Reason::Errors);
        assert_eq!(f.figures, "5xx 23.1 % of 212 responses > 5 %");
        // Finished: later ticks do nothing.
        assert_eq!(
            step(&steps(), Some(&an), None, &n.progress, &obs(9, 900, 0)).actions,
            vec![]
        );
    }

    #[test]
    fn without_analysis_steps_are_only_held() {
        let p0 = begin("web", "c1", "h", Green, Blue, &obs(0, 0, 0));
        let n = start(&steps(), &p0, &obs(0, 0, 0));
        assert_eq!(n.actions, w(10, 90), "green serves, blue is new");
        let n = step(&steps(), None, None, &n.progress, &obs(30, 0, 0));
        assert_eq!(n.actions, w(50, 50));
    }

    #[test]
    fn a_declared_verify_window_follows_the_last_step() {
        let an = Analysis {
            max_errors: Some(1.0),
            min_requests: 1,
            verify: Some(Duration::from_secs(60)),
            prometheus: None,
        };
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 0, 0));
        let n = start(&steps()[..1], &p0, &obs(0, 0, 0));
        let n = step(&steps()[..1], Some(&an), None, &n.progress, &obs(30, 50, 0));
        assert_eq!(n.progress.phase, Phase::Verify);
        let n = step(&steps()[..1], Some(&an), None, &n.progress, &obs(40, 60, 40));
        assert_eq!(n.actions, w(100, 0), "errors during verify switch back");
    }

    #[test]
    fn a_step_until_promoted_waits_for_the_word_and_judges_meanwhile() {
        let an = Analysis {
            max_errors: Some(5.0),
            min_requests: 20,
            verify: None,
            prometheus: None,
        };
        let manual = vec![
            CanaryStep {
                weight: 20,
                hold: Duration::ZERO,
                manual: true,
            },
            CanaryStep {
                weight: 50,
                hold: Duration::from_secs(30),
                manual: false,
            },
        ];
        let hour = Some(Duration::from_secs(3600));
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 0, 0));
        let n = start(&manual, &p0, &obs(0, 0, 0));
        assert_eq!(n.progress.phase, Phase::Waiting { index: 0, weight: 20 });
        assert_eq!(n.actions, w(80, 20));
        assert!(crate::strategy::describe(&n.progress)
            .starts_with("waiting for promotion of c1 (20 % of requests to green)"));
        // No traffic for long is no failure; good traffic is no promotion.
        let held = step(&manual, Some(&an), hour, &n.progress, &obs(600, 0, 0));
        assert_eq!(
            (held.actions.clone(), held.progress.phase.clone()),
            (vec![], Phase::Waiting { index: 0, weight: 20 })
        );
        let held = step(&manual, Some(&an), hour, &n.progress, &obs(900, 500, 0));
        assert!(held.actions.is_empty());
        // The word moves it on.
        let promoted = Observation {
            gate: Gate::Promoted,
            ..obs(901, 500, 0)
        };
        let next = step(&manual, Some(&an), hour, &n.progress, &promoted);
        assert_eq!(next.progress.phase, Phase::Step { index: 1, weight: 50 });
        // Errors over the budget while waiting: all traffic back.
        let bad = step(&manual, Some(&an), hour, &n.progress, &obs(60, 100, 50));
        assert!(matches!(&bad.progress.phase, Phase::RolledBack(f) if f.reason == Reason::Errors));
        // abort: and the deadline put traffic back too, with their reason.
        let aborted = Observation {
            gate: Gate::Aborted,
            ..obs(30, 0, 0)
        };
        let a = step(&manual, Some(&an), hour, &n.progress, &aborted);
        assert_eq!(a.actions, w(100, 0));
        let Phase::RolledBack(f) = &a.progress.phase else {
            panic!()
        };
        assert_eq!(
            (f.reason, f.figures.as_str()),
            (Reason::Aborted, "aborted by a commit (abort: c1)")
        );
        let late = step(&manual, Some(&an), hour, &n.progress, &obs(3601, 0, 0));
        let Phase::RolledBack(f) = &late.progress.phase else {
            panic!()
        };
        assert_eq!(
            (f.reason, f.figures.as_str()),
            (Reason::Deadline, "not promoted within progress_deadline 1h")
        );
    }
}
