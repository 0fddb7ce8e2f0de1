//! An idle daemon reuses its last listing of containers (issue 24: at 500
//! services the listing was most of an idle pass) while Docker reports no
//! event of teal's containers, and still sees a container stopped by hand
//! at once, not after the minute a listing may be kept.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{app_image_version, proxy_or_fail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_pass_reuses_the_listing_and_an_event_ends_it() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("idle").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let log = [("TEAL_LOG".to_string(), "info,teal::observe=debug".to_string())];
    let _daemon = h.start_daemon_with(&log);
    h.until_serves("1.0 blue\n", 60).await;

    // Idle passes (a 500 ms poll) ask Docker nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let reused = h
        .log_text()
        .lines()
        .filter(|l| l.contains("observed") && l.contains("docker_ms=0"))
        .count();
    assert!(reused >= 3, "no idle pass reused the listing:\n{}", h.log_text());

    let name = format!("teal-{}-blue-0", h.svc);
    let started = |name: &str| {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = started(&name);
    assert!(before.starts_with("true "), "{before}");
    assert!(Command::new("docker")
        .args(["stop", "-t", "1", &name])
        .status()
        .unwrap()
        .success());
    let stopped = Instant::now();
    loop {
        let now = started(&name);
        if now.starts_with("true ") && now != before {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(20),
            "the stopped replica was not started again (a listing kept past an event?): {now}\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.until_serves("1.0 blue\n", 30).await;
}
