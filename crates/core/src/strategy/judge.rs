//! One tick's judgement of a phase by every kind of analysis declared: the
//! proxy's counters (when `max_errors` is judged) and the Prometheus query
//! (when set). Either failing fails at once; the phase passes only when
//! both pass (the counters: the hold kept with enough good responses;
//! Prometheus: at least one good evaluation within the phase).

use std::time::Duration;

use super::analysis::{held, judge_step, judge_verify};
use super::prometheus::judge_prom;
use super::{Observation, Progress, PromTally, Verdict};
use crate::spec::Analysis;

/// What a phase is judged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A canary step or a rolling batch, held this long; too little
    /// traffic fails it at 3 x the hold.
    Step(Duration),
    /// The verify window after a full switch: little traffic is no reason
    /// to move traffic back.
    Verify(Duration),
}

/// The verdict on `p`'s phase at `obs`, and the Prometheus tally to record.
pub fn judge(a: Option<&Analysis>, p: &Progress, obs: &Observation, w: Window) -> (Verdict, PromTally) {
    let elapsed = p.elapsed(obs.now_ms);
    let Some(a) = a else {
        let (Window::Step(d) | Window::Verify(d)) = w;
        return (held(elapsed, d), p.prom.clone());
    };
    let counters = match w {
        Window::Step(hold) => judge_step(a, p.baseline, obs.counts, elapsed, hold),
        Window::Verify(window) => judge_verify(a, p.baseline, obs.counts, elapsed, window),
    };
    let (prom, tally) = match &a.prometheus {
        Some(c) => {
            let query = c.render(&p.service, p.to, &p.commit);
            judge_prom(c, &query, &p.prom, obs.prom.as_ref(), p.since_ms)
        }
        None => (Verdict::Pass, p.prom.clone()),
    };
    (both(counters, prom), tally)
}

fn both(counters: Verdict, prom: Verdict) -> Verdict {
    match (counters, prom) {
        (Verdict::Fail(f), _) | (_, Verdict::Fail(f)) => Verdict::Fail(f),
        (Verdict::Pass, Verdict::Pass) => Verdict::Pass,
        _ => Verdict::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::prometheus::PromCheck;
    use crate::spec::Color::{Blue, Green};
    use crate::strategy::analysis::Counts;
    use crate::strategy::{begin, PromReading, Reason};

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn analysis(max_errors: Option<f64>) -> Analysis {
        Analysis {
            max_errors,
            min_requests: 10,
            verify: None,
            prometheus: Some(PromCheck {
                url: "http://p:9090".into(),
                query: "errors{service=\"{{service}}\",color=\"{{color}}\",commit=\"{{commit}}\"}".into(),
                max: Some(0.01),
                min: None,
                interval: S(1),
                inconclusive: 3,
            }),
        }
    }

    fn obs(secs: u64, ok: u64, err: u64, prom: Option<f64>) -> Observation {
        Observation {
            now_ms: secs * 1000,
            counts: Counts {
                xx2: ok,
                xx5: err,
                ..Default::default()
            },
            prom: prom.map(|v| PromReading {
                at_ms: secs * 1000,
                value: Ok(v),
            }),
            gate: Default::default(),
        }
    }

    fn start() -> Progress {
        begin("web", "c0ffee", "h", Blue, Green, &obs(0, 0, 0, None))
    }

    /// Judges a run of observations as the step functions do: the tally
    /// carried from one tick to the next.
    fn run(a: &Analysis, w: Window, ticks: &[Observation]) -> Vec<Verdict> {
        let mut p = start();
        ticks
            .iter()
            .map(|o| {
                let (v, t) = judge(Some(a), &p, o, w);
                p.prom = t;
                v
            })
            .collect()
    }

    #[test]
    fn both_kinds_must_pass_and_either_fails() {
        use Verdict::{Pass, Wait};
        let a = analysis(Some(5.0));
        let step = Window::Step(S(3));
        // Counters fine and held, no Prometheus value yet: wait; the first
        // good value passes.
        assert_eq!(
            run(&a, step, &[obs(3, 100, 0, None), obs(4, 120, 0, Some(0.0))]),
            [Wait, Pass]
        );
        // A good value early, the hold not kept: wait for the hold.
        assert_eq!(
            run(
                &a,
                step,
                &[obs(1, 100, 0, Some(0.0)), obs(2, 110, 0, None), obs(3, 120, 0, None)]
            ),
            [Wait, Wait, Pass]
        );
        // Counters over their budget while Prometheus is fine: fail.
        let v = run(&a, step, &[obs(1, 50, 50, Some(0.0))]);
        assert!(matches!(&v[0], Verdict::Fail(f) if f.reason == Reason::Errors), "{v:?}");
        // Prometheus over its max while the counters are fine: fail, with
        // the rendered query in the figures.
        let v = run(&a, step, &[obs(1, 100, 0, Some(0.5))]);
        let Verdict::Fail(f) = &v[0] else { panic!("{v:?}") };
        assert_eq!(f.reason, Reason::Prometheus);
        assert_eq!(
            f.figures,
            "prometheus: 0.5 > 0.01 (errors{service=\"web\",color=\"green\",commit=\"c0ffee\"})"
        );
    }

    #[test]
    fn prometheus_alone_needs_a_value_and_aborts_on_a_run_of_none() {
        let a = analysis(None);
        // No counters judged: no traffic needed, the hold and a good value.
        let v = run(&a, Window::Step(S(2)), &[obs(2, 0, 0, None), obs(3, 0, 0, Some(0.001))]);
        assert_eq!(v, [Verdict::Wait, Verdict::Pass]);
        let down = |secs: u64| Observation {
            prom: Some(PromReading {
                at_ms: secs * 1000,
                value: Err("connection refused".into()),
            }),
            ..obs(secs, 0, 0, None)
        };
        let v = run(&a, Window::Step(S(2)), &[down(1), down(2), obs(3, 0, 0, None), down(4)]);
        assert_eq!(v[..3], [Verdict::Wait, Verdict::Wait, Verdict::Wait]);
        assert!(
            matches!(&v[3], Verdict::Fail(f) if f.reason == Reason::Inconclusive),
            "{v:?}"
        );
        // The verify window too: judged until it ends, never passed
        // without a value.
        let v = run(&a, Window::Verify(S(2)), &[obs(2, 0, 0, None), obs(3, 0, 0, Some(0.0))]);
        assert_eq!(v, [Verdict::Wait, Verdict::Pass]);
    }
}
