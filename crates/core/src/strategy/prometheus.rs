//! The Prometheus kind of analysis: a pure judgement of the newest value
//! of the service's query, which the engine reads each interval. A reading
//! without a value (Prometheus unreachable, an error, no series, NaN) is
//! inconclusive: never a pass, and a run of them aborts.

use serde::{Deserialize, Serialize};

use super::analysis::{Failure, Reason, Verdict};
use crate::spec::prometheus::PromCheck;

/// One evaluation of the query, as the engine read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromReading {
    /// When the query was sent, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The query's one value, or why there is none.
    pub value: Result<f64, String>,
}

/// Evaluations judged so far, recorded with the progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromTally {
    /// Evaluations taken in the current phase that passed.
    #[serde(default)]
    pub good: u32,
    /// Inconclusive evaluations in a row, across phases: a run of them is
    /// one problem, wherever the phases begin.
    #[serde(default)]
    pub inconclusive: u32,
}

impl PromTally {
    /// Nothing counted (a rollout without Prometheus records no tally).
    pub fn is_zero(&self) -> bool {
        *self == PromTally::default()
    }

    /// The tally for a phase beginning: no good evaluation in it yet.
    pub fn new_phase(&self) -> PromTally {
        PromTally {
            good: 0,
            inconclusive: self.inconclusive,
        }
    }
}

/// Judges `reading`, the newest one not judged yet (if any), for a phase
/// that began at `since_ms`: fails past the threshold, or when the run of
/// inconclusive ones reaches the limit; passes once an evaluation sent
/// within the phase passed; otherwise waits. `query` is the rendered
/// query, for the figures.
pub fn judge_prom(
    c: &PromCheck,
    query: &str,
    tally: &PromTally,
    reading: Option<&PromReading>,
    since_ms: u64,
) -> (Verdict, PromTally) {
    let mut t = tally.clone();
    if let Some(r) = reading {
        match &r.value {
            Ok(v) if !v.is_nan() => {
                t.inconclusive = 0;
                if let Some(f) = beyond(c, *v, query) {
                    return (Verdict::Fail(f), t);
                }
                if r.at_ms >= since_ms {
                    t.good += 1;
                }
            }
            other => {
                t.inconclusive += 1;
                if t.inconclusive >= c.inconclusive {
                    let why = match other {
                        Err(e) => e.as_str(),
                        Ok(_) => "the query returned NaN",
                    };
                    let f = Failure {
                        reason: Reason::Inconclusive,
                        figures: format!(
                            "prometheus: no value {} time{} in a row, last: {why} ({})",
                            t.inconclusive,
                            if t.inconclusive == 1 { "" } else { "s" },
                            short(query)
                        ),
                    };
                    return (Verdict::Fail(f), t);
                }
            }
        }
    }
    let verdict = if t.good > 0 { Verdict::Pass } else { Verdict::Wait };
    (verdict, t)
}

/// The failure when `v` is above max or below min.
fn beyond(c: &PromCheck, v: f64, query: &str) -> Option<Failure> {
    let (op, limit) = match (c.max, c.min) {
        (Some(max), _) if v > max => (">", max),
        (_, Some(min)) if v < min => ("<", min),
        _ => return None,
    };
    Some(Failure {
        reason: Reason::Prometheus,
        figures: format!("prometheus: {} {op} {limit} ({})", num(v), short(query)),
    })
}

/// A value in four significant digits, without trailing zeros:
/// 0.0341234 -> 0.03412, 1234.56 -> 1235, 12 -> 12.
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A query short enough for a status line.
fn short(q: &str) -> String {
    const MAX: usize = 200;
    match q.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &q[..i]),
        None => q.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn check(max: Option<f64>, min: Option<f64>) -> PromCheck {
        PromCheck {
            url: "http://p:9090".into(),
            query: "q".into(),
            max,
            min,
            interval: Duration::from_secs(1),
            inconclusive: 3,
        }
    }

    fn ok(at_ms: u64, v: f64) -> PromReading {
        PromReading { at_ms, value: Ok(v) }
    }

    fn err(at_ms: u64, e: &str) -> PromReading {
        PromReading {
            at_ms,
            value: Err(e.into()),
        }
    }

    #[test]
    fn a_value_within_bounds_passes_once_taken_within_the_phase() {
        let c = check(Some(0.01), None);
        let t0 = PromTally::default();
        // No reading yet: wait.
        assert_eq!(judge_prom(&c, "q", &t0, None, 1000), (Verdict::Wait, t0.clone()));
        // A good value sent before the phase began does not count for it.
        let (v, t) = judge_prom(&c, "q", &t0, Some(&ok(999, 0.0)), 1000);
        assert_eq!((v, t.good), (Verdict::Wait, 0));
        let (v, t) = judge_prom(&c, "q", &t, Some(&ok(1000, 0.01)), 1000);
        assert_eq!((v, t.good), (Verdict::Pass, 1));
        // Later ticks without a new reading keep the pass.
        assert_eq!(judge_prom(&c, "q", &t, None, 1000).0, Verdict::Pass);
        // A new phase needs its own good evaluation.
        assert_eq!(judge_prom(&c, "q", &t.new_phase(), None, 5000).0, Verdict::Wait);
    }

    #[test]
    fn a_value_above_max_or_below_min_fails_with_its_figures() {
        let q = "sum(rate(errors{service=\"web\"}[30s]))";
        let (v, _) = judge_prom(
            &check(Some(0.01), None),
            q,
            &PromTally::default(),
            Some(&ok(5, 0.0341234)),
            0,
        );
        assert_eq!(
            v,
            Verdict::Fail(Failure {
                reason: Reason::Prometheus,
                figures: format!("prometheus: 0.03412 > 0.01 ({q})"),
            })
        );
        let (v, _) = judge_prom(
            &check(None, Some(0.99)),
            "q",
            &PromTally::default(),
            Some(&ok(5, 0.5)),
            0,
        );
        assert_eq!(
            v,
            Verdict::Fail(Failure {
                reason: Reason::Prometheus,
                figures: "prometheus: 0.5 < 0.99 (q)".into(),
            })
        );
        // Both bounds: inside passes.
        let both = check(Some(2.0), Some(1.0));
        assert_eq!(
            judge_prom(&both, "q", &PromTally::default(), Some(&ok(5, 1.5)), 0).0,
            Verdict::Pass
        );
        assert!(matches!(
            judge_prom(&both, "q", &PromTally::default(), Some(&ok(5, f64::INFINITY)), 0).0,
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn inconclusive_readings_never_pass_and_a_run_of_them_aborts() {
        let c = check(Some(1.0), None);
        let mut t = PromTally::default();
        for (i, r) in [err(1, "connection refused"), ok(2, f64::NAN)].iter().enumerate() {
            let (v, next) = judge_prom(&c, "q", &t, Some(r), 0);
            assert_eq!((v, next.inconclusive), (Verdict::Wait, i as u32 + 1));
            t = next;
        }
        // A value breaks the run, and passes.
        let (v, reset) = judge_prom(&c, "q", &t, Some(&ok(3, 0.5)), 0);
        assert_eq!((v, reset.inconclusive), (Verdict::Pass, 0));
        // Three in a row abort, naming the last problem.
        let (_, t) = judge_prom(&c, "q", &t, Some(&err(3, "empty result")), 0);
        assert_eq!(t.inconclusive, 3);
        let mut t = PromTally {
            good: 0,
            inconclusive: 2,
        };
        let (v, next) = judge_prom(&c, "q", &t, Some(&err(4, "connection refused")), 0);
        assert_eq!(
            v,
            Verdict::Fail(Failure {
                reason: Reason::Inconclusive,
                figures: "prometheus: no value 3 times in a row, last: connection refused (q)".into(),
            })
        );
        t = next;
        assert_eq!(t.inconclusive, 3);
        // Even with a good evaluation earlier in the phase.
        let (v, _) = judge_prom(
            &c,
            "q",
            &PromTally {
                good: 1,
                inconclusive: 2,
            },
            Some(&ok(5, f64::NAN)),
            0,
        );
        assert!(
            matches!(v, Verdict::Fail(Failure { reason: Reason::Inconclusive, ref figures }) if figures.contains("NaN"))
        );
    }

    #[test]
    fn numbers_read_short() {
        let cases = [
            (0.0341234, "0.03412"),
            (12.0, "12"),
            (1234.56, "1235"),
            (0.5, "0.5"),
            (0.0, "0"),
        ];
        for (v, want) in cases {
            assert_eq!(num(v), want);
        }
        assert_eq!(short(&"x".repeat(300)).chars().count(), 201);
    }
}
