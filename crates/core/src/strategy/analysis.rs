//! Analysis: a pure judgement of the new color on two snapshots of the
//! proxy's own response counters (never sampling by teal).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::{duration, Analysis};

/// Responses a proxy counted for one color of one service since it
/// started (HAProxy) or since the counters were created (nginx balancer).
/// Monotonic: analysis judges the difference of two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub xx2: u64,
    pub xx3: u64,
    pub xx4: u64,
    pub xx5: u64,
}

impl Counts {
    /// Every counted response.
    pub fn total(&self) -> u64 {
        self.xx2 + self.xx3 + self.xx4 + self.xx5
    }

    /// Adds one response of `status` (1xx are counted as 2xx: they are
    /// never an error).
    pub fn add(&mut self, status_class: u16, n: u64) {
        match status_class {
            5 => self.xx5 += n,
            4 => self.xx4 += n,
            3 => self.xx3 += n,
            _ => self.xx2 += n,
        }
    }
}

/// What a judgement concludes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Good enough: the step may end.
    Pass,
    /// Not yet decided: keep the step.
    Wait,
    /// Abort: all traffic back.
    Fail(Failure),
}

/// Why a step failed, with the measured figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub reason: Reason,
    /// For people: "5xx 23.1 % of 212 responses > 5 %".
    pub figures: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The 5xx share was above `max_errors`.
    Errors,
    /// Fewer than `min_requests` responses within 3 x the hold.
    NoTraffic,
    /// The Prometheus query's value was above `max` or below `min`.
    Prometheus,
    /// `inconclusive` evaluations of the Prometheus query in a row gave
    /// no value.
    Inconclusive,
    /// A commit said `abort:` (`teal abort`).
    Aborted,
    /// Waited for a promotion past `progress_deadline`.
    Deadline,
}

impl Reason {
    /// The label of `teal_rollbacks_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Errors => "errors",
            Reason::NoTraffic => "no_traffic",
            Reason::Prometheus => "prometheus",
            Reason::Inconclusive => "inconclusive",
            Reason::Aborted => "aborted",
            Reason::Deadline => "deadline",
        }
    }
}

/// Responses counted between two snapshots. A proxy that restarted (or
/// reloaded, for HAProxy) counts from zero again: then all it counted is new.
pub fn delta(before: Counts, now: Counts) -> Counts {
    if now.total() < before.total() || now.xx5 < before.xx5 {
        return now;
    }
    Counts {
        xx2: now.xx2.saturating_sub(before.xx2),
        xx3: now.xx3.saturating_sub(before.xx3),
        xx4: now.xx4.saturating_sub(before.xx4),
        xx5: now.xx5 - before.xx5,
    }
}

/// Judges a canary step `elapsed` into its `hold`: fails as soon as enough
/// responses show too many errors; passes once the hold is over with
/// enough responses; past 3 x hold without enough responses, fails for
/// lack of traffic.
/// Without `max_errors` the counters judge nothing: the hold alone.
pub fn judge_step(a: &Analysis, before: Counts, now: Counts, elapsed: Duration, hold: Duration) -> Verdict {
    if a.max_errors.is_none() {
        return held(elapsed, hold);
    }
    let d = delta(before, now);
    if let Some(f) = too_many_errors(a, d) {
        return Verdict::Fail(f);
    }
    if d.total() < a.min_requests {
        if elapsed >= hold * 3 {
            return Verdict::Fail(Failure {
                reason: Reason::NoTraffic,
                figures: format!(
                    "not enough traffic to judge: {} response{} in {}, {} needed",
                    d.total(),
                    if d.total() == 1 { "" } else { "s" },
                    duration::format(round(elapsed)),
                    a.min_requests
                ),
            });
        }
        return Verdict::Wait;
    }
    held(elapsed, hold)
}

/// Pass once `elapsed` reached `hold`.
pub fn held(elapsed: Duration, hold: Duration) -> Verdict {
    if elapsed >= hold {
        Verdict::Pass
    } else {
        Verdict::Wait
    }
}

/// Judges the verify window after a full switch: fails as soon as enough
/// responses show too many errors, passes when the window is over (little
/// traffic is no reason to move traffic back).
pub fn judge_verify(a: &Analysis, before: Counts, now: Counts, elapsed: Duration, window: Duration) -> Verdict {
    if let Some(f) = too_many_errors(a, delta(before, now)) {
        return Verdict::Fail(f);
    }
    held(elapsed, window)
}

fn too_many_errors(a: &Analysis, d: Counts) -> Option<Failure> {
    let max = a.max_errors?;
    let n = d.total();
    if n == 0 || n < a.min_requests {
        return None;
    }
    let share = d.xx5 as f64 * 100.0 / n as f64;
    (share > max).then(|| Failure {
        reason: Reason::Errors,
        figures: format!("5xx {share:.1} % of {n} responses > {max} %"),
    })
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(max_errors: f64, min_requests: u64) -> Analysis {
        Analysis {
            max_errors: Some(max_errors),
            min_requests,
            verify: None,
            prometheus: None,
        }
    }

    fn c(ok: u64, err: u64) -> Counts {
        Counts {
            xx2: ok,
            xx5: err,
            ..Default::default()
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn steps_are_judged_on_the_difference_of_two_snapshots() {
        let rows: Vec<(Analysis, Counts, Counts, u64, u64, Verdict)> = vec![
            // Enough traffic, few errors: wait for the hold, then pass.
            (a(5.0, 20), c(100, 1), c(200, 2), 10, 30, Verdict::Wait),
            (a(5.0, 20), c(100, 1), c(200, 2), 30, 30, Verdict::Pass),
            // Exactly at the budget passes; above it fails at once.
            (a(5.0, 20), c(0, 0), c(95, 5), 30, 30, Verdict::Pass),
            (
                a(5.0, 20),
                c(0, 0),
                c(163, 49),
                2,
                30,
                Verdict::Fail(Failure {
                    reason: Reason::Errors,
                    figures: "5xx 23.1 % of 212 responses > 5 %".into(),
                }),
            ),
            // Too few responses to judge errors: wait, then fail at 3 x hold.
            (a(1.0, 20), c(0, 0), c(5, 5), 40, 30, Verdict::Wait),
            (
                a(1.0, 20),
                c(0, 0),
                c(12, 0),
                90,
                30,
                Verdict::Fail(Failure {
                    reason: Reason::NoTraffic,
                    figures: "not enough traffic to judge: 12 responses in 1m 30s, 20 needed".into(),
                }),
            ),
            // A proxy restart reset its counters: what it counted since is new.
            (a(5.0, 20), c(1000, 0), c(30, 0), 30, 30, Verdict::Pass),
        ];
        for (an, before, now, elapsed, hold, want) in rows {
            assert_eq!(
                judge_step(&an, before, now, S(elapsed), S(hold)),
                want,
                "{before:?} -> {now:?} at {elapsed}s"
            );
        }
    }

    #[test]
    fn verify_fails_on_errors_and_otherwise_passes_at_the_end() {
        let an = a(1.0, 20);
        assert_eq!(judge_verify(&an, c(0, 0), c(3, 0), S(10), S(60)), Verdict::Wait);
        assert_eq!(judge_verify(&an, c(0, 0), c(3, 0), S(60), S(60)), Verdict::Pass);
        assert!(matches!(
            judge_verify(&an, c(0, 0), c(70, 30), S(5), S(60)),
            Verdict::Fail(Failure {
                reason: Reason::Errors,
                ..
            })
        ));
    }
}
