//! The rollouts' clock: milliseconds since the Unix epoch, read from the
//! wall clock once per process and advanced by the monotonic clock after
//! that. A hold, a verify window or a progress deadline is a length of
//! time, not a date: a step of the wall clock (an NTP correction, an
//! operator's `date -s`, a VM resumed) must neither end one at once nor
//! stretch it by the step. The figures stay near the wall clock, so a
//! record written by an earlier process still reads as a time.
//!
//! A step between two processes is still seen: a restarted teal anchors on
//! the wall clock again. Only a wait for a promotion carries its start
//! across a restart (a hold begins afresh), so only its progress deadline
//! can be moved by such a step.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();

/// Milliseconds since the Unix epoch on the rollouts' clock.
pub(crate) fn now_ms() -> u64 {
    let (wall, at) = *ANCHOR.get_or_init(|| (wall_ms(), Instant::now()));
    wall.saturating_add(at.elapsed().as_millis() as u64)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_the_wall_clock_and_never_goes_back() {
        let before = wall_ms();
        let a = now_ms();
        let b = now_ms();
        assert!(a + 1000 >= before && a <= wall_ms() + 1000, "{a} vs {before}");
        assert!(b >= a);
    }
}
