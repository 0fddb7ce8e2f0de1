//! Canary: the new color gets `weight` % of requests for each step, at
//! least `hold`, while analysis judges it; after the last step 100 %, then
//! the verify window if one is declared. A failed judgement puts all
//! traffic back at once.

use super::judge::{judge, Window};
use super::{blue_green, Action, Next, Observation, Phase, Progress, Verdict};
use crate::spec::{Analysis, CanaryStep};

/// The first step: its weight on the new color.
pub fn start(steps: &[CanaryStep], p: &Progress, obs: &Observation) -> Next {
    enter_step(steps, 0, p, obs)
}

fn enter_step(steps: &[CanaryStep], index: usize, p: &Progress, obs: &Observation) -> Next {
    let Some(s) = steps.get(index) else {
        return full(p, obs, None);
    };
    Next {
        actions: vec![Action::Weights(p.split(s.weight))],
        progress: p.enter(
            Phase::Step {
                index,
                weight: s.weight,
            },
            obs,
        ),
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

/// One tick of a canary.
pub fn step(steps: &[CanaryStep], analysis: Option<&Analysis>, p: &Progress, obs: &Observation) -> Next {
    match &p.phase {
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
    use crate::spec::Color::{Blue, Green};
    use crate::spec::PerColor;
    use crate::strategy::analysis::Counts;
    use crate::strategy::{begin, Reason};

    fn steps() -> Vec<CanaryStep> {
        vec![
            CanaryStep {
                weight: 10,
                hold: Duration::from_secs(30),
            },
            CanaryStep {
                weight: 50,
                hold: Duration::from_secs(30),
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
        let held = step(&steps(), Some(&an), &n.progress, &obs(29, 100, 0));
        assert_eq!(held.actions, vec![]);
        // 30 s with enough good responses: next step, judged from here.
        let n = step(&steps(), Some(&an), &n.progress, &obs(30, 100, 0));
        assert_eq!(n.actions, w(50, 50));
        assert_eq!(n.progress.baseline.xx2, 100);
        let n = step(&steps(), Some(&an), &n.progress, &obs(60, 400, 1));
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
        let n = step(&steps(), Some(&an), &n.progress, &obs(3, 163, 49));
        assert_eq!(n.actions, w(100, 0));
        assert_eq!(n.actions, vec![Action::Weights(n.progress.weights())]);
        let Phase::RolledBack(f) = &n.progress.phase else {
            panic!("{:?}", n.progress.phase)
        };
        assert_eq!(f.reason, Reason::Errors);
        assert_eq!(f.figures, "5xx 23.1 % of 212 responses > 5 %");
        // Finished: later ticks do nothing.
        assert_eq!(step(&steps(), Some(&an), &n.progress, &obs(9, 900, 0)).actions, vec![]);
    }

    #[test]
    fn without_analysis_steps_are_only_held() {
        let p0 = begin("web", "c1", "h", Green, Blue, &obs(0, 0, 0));
        let n = start(&steps(), &p0, &obs(0, 0, 0));
        assert_eq!(n.actions, w(10, 90), "green serves, blue is new");
        let n = step(&steps(), None, &n.progress, &obs(30, 0, 0));
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
        let n = step(&steps()[..1], Some(&an), &n.progress, &obs(30, 50, 0));
        assert_eq!(n.progress.phase, Phase::Verify);
        let n = step(&steps()[..1], Some(&an), &n.progress, &obs(40, 60, 40));
        assert_eq!(n.actions, w(100, 0), "errors during verify switch back");
    }
}
