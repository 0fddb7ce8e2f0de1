//! Found by reading for the soak's clock-step fault (issue 24): a canary's
//! hold was timed on the wall clock, so a step of it forward (an NTP
//! correction, `date -s`, a VM resumed) ended the hold at once and moved
//! all traffic onto the new version early; a step back would have
//! stretched it by the step. teal runs here under libfaketime, and the
//! test steps its wall clock an hour forward in the middle of a hold.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::faketime::FakeClock;
use common::host::TestHost;
use common::{app_image_version, proxy_or_fail};

const CANARY: &str = "strategy: canary\ncanary:\n  steps:\n    - {weight: 50, hold: 20s}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_the_wall_clock_does_not_end_a_hold() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("clock").await;
    let clock = FakeClock::new(h.state.parent().unwrap());
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, CANARY));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon_with(&clock.env());
    h.until_serves("1.0 blue\n", 60).await;

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), CANARY));
    h.until_phase("step 0", 30).await;
    let held = Instant::now();
    clock.set("+1h");
    // The offset is read within a second; the rollout ticks every 250 ms.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        h.phase().as_deref(),
        Some("step 0"),
        "the hold of 20s ended {:?} after it began, when the clock stepped:\n{}",
        held.elapsed(),
        h.log_text()
    );

    h.until_phase("done", 40).await;
    assert!(
        held.elapsed() >= Duration::from_secs(17),
        "the hold ended after {:?}",
        held.elapsed()
    );
    h.until_only_serves("2.0 green\n", 10).await;
    // The clock did step for teal: what it logged after the step is stamped an hour ahead.
    let last = h.events().pop().expect("teal logged the deploy");
    let at = humantime::parse_rfc3339(&last.time).unwrap();
    assert!(
        at > SystemTime::now() + Duration::from_secs(50 * 60),
        "teal's clock did not step: its last event is stamped {}",
        last.time
    );
}
