//! Found by the fault soak (issue 24): a canary that analysis rolled back,
//! then reverted, then pushed again as a new commit is tried again, as
//! DESIGN section 6 says ("not retried until a new commit arrives"). The
//! revert only removed the idle color, so no rollout replaced the
//! rolled-back record, and the record held the new commit with the old
//! commit's figures for good.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::load::Load;
use common::{app_image_version, failing_app_image, git_in, proxy_or_fail};

const CANARY: &str =
    "strategy: canary\ncanary:\n  steps:\n    - {weight: 50, hold: 2s}\nanalysis: {max_errors: 5%, min_requests: 10}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_rolled_back_reverted_and_pushed_again_is_tried_again() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("again").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "9.0", 50).await;
    h.push("web 1.0", &h.service("blue", &v1, None, CANARY));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let load = Load::start(&h.listen, &h.host, 4);

    let failing = h.service("green", &v1, Some(&bad), CANARY);
    h.push("web 9.0", &failing);
    h.until_phase("rolled_back", 60).await;
    h.until_only_serves("1.0 blue\n", 10).await;

    // The revert: green goes away, blue keeps serving.
    git_in(&h.work, &["revert", "--no-edit", "HEAD"]);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    let start = Instant::now();
    while !h.ps("{{.Label \"teal.color\"}}").iter().all(|c| c == "blue") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "green stays:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The same change again, as a new commit: a new rollout, judged anew.
    h.push("web 9.0 again", &failing);
    let again = git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    loop {
        let r = h.rollout().unwrap_or_default();
        if r["commit"] == again.as_str() && r["phase"]["phase"] == "rolled_back" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the new commit was not tried (record {r}); status: {}",
            h.status().await["services"][&h.svc]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.until_only_serves("1.0 blue\n", 10).await;
    let tally = load.stop().await;
    assert_eq!(tally.errors, 0, "{tally:?}");
}
