//! Blue-green: all traffic moves at once (the planner's switch step); with
//! `analysis.verify`, the new color is then judged for that long and a
//! failure switches back.

use super::judge::{judge, Window};
use super::{Next, Observation, Phase, Progress, Verdict};
use crate::spec::Analysis;

/// After the switch: judge for the verify window, when one is declared.
pub fn start(analysis: Option<&Analysis>, p: &Progress, obs: &Observation) -> Next {
    let verify = analysis.and_then(|a| a.verify).is_some();
    Next {
        actions: vec![],
        progress: p.enter(if verify { Phase::Verify } else { Phase::Done }, obs),
    }
}

/// One tick of the verify window.
pub fn step(analysis: Option<&Analysis>, p: &Progress, obs: &Observation) -> Next {
    let (Phase::Verify, Some(window)) = (&p.phase, analysis.and_then(|a| a.verify)) else {
        return Next::stay(p);
    };
    let (verdict, prom) = judge(analysis, p, obs, Window::Verify(window));
    let p = &Progress { prom, ..p.clone() };
    match verdict {
        Verdict::Wait => Next::stay(p),
        Verdict::Pass => Next {
            actions: vec![],
            progress: p.enter(Phase::Done, obs),
        },
        Verdict::Fail(f) => p.roll_back(f, obs),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::spec::Color::{Blue, Green};
    use crate::strategy::analysis::Counts;
    use crate::strategy::{begin, Action};

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

    #[test]
    fn verify_judges_after_the_switch_and_switches_back_on_errors() {
        let an = Analysis {
            max_errors: Some(1.0),
            min_requests: 20,
            verify: Some(Duration::from_secs(60)),
            prometheus: None,
        };
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 10, 0));
        let n = start(Some(&an), &p0, &obs(0, 10, 0));
        assert_eq!(n.progress.phase, Phase::Verify);
        assert_eq!(step(Some(&an), &n.progress, &obs(5, 50, 0)).actions, vec![]);
        let bad = step(Some(&an), &n.progress, &obs(6, 60, 30));
        assert_eq!(
            bad.actions,
            vec![Action::Weights(crate::spec::PerColor { blue: 100, green: 0 })]
        );
        let good = step(Some(&an), &n.progress, &obs(60, 500, 0));
        assert_eq!(good.progress.phase, Phase::Done);
    }

    #[test]
    fn without_verify_the_switch_is_the_end() {
        let p0 = begin("web", "c1", "h", Blue, Green, &obs(0, 0, 0));
        assert_eq!(start(None, &p0, &obs(0, 0, 0)).progress.phase, Phase::Done);
    }
}
