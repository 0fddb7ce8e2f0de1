//! Promotion latency, through `teal daemon`, real Docker and a managed
//! proxy of each kind: a canary waits at 50 % (`hold: until_promoted`);
//! `teal promote` is committed and pushed to the host's repo, and the
//! figures are the time from the push to the rollout's record moving on,
//! and to every answer coming from the new version (all traffic moved).
//! The repo is on this machine, so the push wakes the daemon at once, as
//! a webhook does; with polling alone, add up to one `repo.poll`.
//! Run: `cargo bench --bench promote` (needs Docker, nginx with its Lua
//! module and HAProxy). `TEAL_BENCH_PROXY=haproxy|nginx` runs one.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{app_image_version, git_in, teal};

const RUNS: usize = 3;

async fn once(kind: &str) -> (Duration, Duration) {
    let h = TestHost::new("bench-pr").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let canary = "strategy: canary\ncanary:\n  steps:\n    - {weight: 50, hold: until_promoted}\n";
    h.push("1.0", &h.service("blue", &v1, None, canary));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("2.0", &h.service("green", &v1, Some(&v2), canary));
    h.until_phase("waiting 0", 60).await;
    // Let it settle into its waiting passes.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let run = teal(&h.work, &["promote", &h.svc]);
    assert_eq!(run.code, 0, "{run:?}");
    let t = Instant::now();
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    h.until_phase("done", 60).await;
    let moved = t.elapsed();
    h.until_only_serves("2.0 green\n", 60).await;
    (moved, t.elapsed())
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    for kind in ["haproxy", "nginx"] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        for _ in 0..RUNS {
            let (moved, all) = once(kind).await;
            println!(
                "{kind}: teal promote pushed -> rollout moved on: {} ms; -> only the new version answers (20 in a row): {} ms",
                moved.as_millis(),
                all.as_millis()
            );
        }
    }
}
