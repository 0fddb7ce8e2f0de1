//! Backoff for failed deploys: a commit whose deploy of a service failed is
//! not retried in a hot loop. It is tried again after a growing delay, or at
//! once when a new commit arrives (a fix, or a revert).

use std::collections::HashMap;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Backoff {
    /// service -> (commit, failures, not before)
    failed: HashMap<String, (String, u32, Instant)>,
}

impl Backoff {
    /// Whether `service` may be deployed at `commit` now.
    pub fn allows(&self, service: &str, commit: &str, now: Instant) -> bool {
        match self.failed.get(service) {
            Some((c, _, until)) if c == commit => now >= *until,
            _ => true,
        }
    }

    /// Records a failure; returns the delay before the next try.
    pub fn failed(&mut self, service: &str, commit: &str, now: Instant) -> Duration {
        let n = match self.failed.get(service) {
            Some((c, n, _)) if c == commit => n + 1,
            _ => 1,
        };
        let delay = FIRST.saturating_mul(1 << (n - 1).min(5)).min(MAX);
        self.failed
            .insert(service.to_string(), (commit.to_string(), n, now + delay));
        delay
    }

    /// Records a success: the service is healthy again.
    pub fn succeeded(&mut self, service: &str) {
        self.failed.remove(service);
    }
}

/// Time to the next pass when the last `failing` passes in a row hit a
/// repo, Docker or proxy problem: the poll interval, doubling per failure,
/// capped at five minutes (never below the poll interval).
pub fn problem_delay(poll: Duration, failing: u32) -> Duration {
    poll.saturating_mul(1 << failing.min(16)).min(MAX.max(poll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_slow_the_loop_down_up_to_five_minutes() {
        let poll = Duration::from_secs(15);
        assert_eq!(problem_delay(poll, 0), poll);
        assert_eq!(problem_delay(poll, 1), Duration::from_secs(30));
        assert_eq!(problem_delay(poll, 3), Duration::from_secs(120));
        assert_eq!(problem_delay(poll, 30), Duration::from_secs(300));
        assert_eq!(
            problem_delay(Duration::from_secs(600), 2),
            Duration::from_secs(600),
            "never below the poll"
        );
    }

    #[test]
    fn failures_back_off_per_commit_and_a_new_commit_goes_at_once() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.allows("web", "c1", t0));
        assert_eq!(b.failed("web", "c1", t0), Duration::from_secs(10));
        assert!(!b.allows("web", "c1", t0 + Duration::from_secs(9)));
        assert!(b.allows("web", "c1", t0 + Duration::from_secs(10)));
        assert!(b.allows("web", "c2", t0), "a new commit is tried at once");
        assert!(b.allows("api", "c1", t0), "other services are not blocked");
        assert_eq!(b.failed("web", "c1", t0), Duration::from_secs(20));
        for _ in 0..10 {
            b.failed("web", "c1", t0);
        }
        assert_eq!(b.failed("web", "c1", t0), Duration::from_secs(300), "capped");
        b.succeeded("web");
        assert!(b.allows("web", "c1", t0));
    }
}
