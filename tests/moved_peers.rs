//! A deploy that keeps failing (and waits for its retries) while the
//! color that serves comes back at other addresses, as when dockerd
//! restarts without live-restore and hands the replicas new ones. The
//! fault soak found the old color's traffic going to whatever took the old
//! addresses (another service's replica) until the bad commit was
//! reverted: the plan now sets the live color's entry right first.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::process::Daemon;
use common::{app_image_version, proxy_or_fail};

fn ip_of(container: &str, network: &str) -> String {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}"),
            container,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A container of someone else's, removed at the end.
struct Stranger(String);

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// A host serving 1.0 on blue through a managed HAProxy, and a pushed
/// commit whose green image no registry serves: its deploy failed, traffic
/// stayed on blue, and the retry waits. The daemon, the 1.0 image and the
/// failed commit come along.
async fn failing_deploy(name: &str) -> (TestHost, Daemon, String, String) {
    proxy_or_fail("haproxy");
    let h = TestHost::new(name).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push(
        "broken",
        &h.service("green", &v1, Some("127.0.0.1:9/teal-test/missing:1"), ""),
    );
    let head = common::git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    while h.status().await["services"][&h.svc]["failed"].as_str() != Some(head.as_str()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the broken deploy never failed:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (h, daemon, v1, head)
}

#[tokio::test]
async fn a_failing_deploy_still_repairs_the_live_colors_moved_replicas() {
    let (h, _daemon, v1, head) = failing_deploy("mvp").await;

    // Blue's replica comes back at another address, and a stranger (a
    // container that is not teal's, answering HTTP too) takes its old one.
    let blue = format!("teal-{}-blue-0", h.svc);
    let before = ip_of(&blue, &h.network);
    docker(&["network", "disconnect", &h.network, &blue]);
    let stranger = Stranger(format!("{}-stranger", h.svc));
    docker(&["run", "-d", "--name", &stranger.0, "--network", &h.network, &v1]);
    assert_eq!(
        ip_of(&stranger.0, &h.network),
        before,
        "the stranger was to take blue's old address"
    );
    docker(&["network", "connect", &h.network, &blue]);
    assert_ne!(ip_of(&blue, &h.network), before);

    // Set right while the deploy still fails and waits for its retries.
    h.until_serves("1.0 blue\n", 60).await;
    let log = h.log_text();
    assert!(log.contains("update proxy entry (traffic stays on blue)"), "{log}");
    assert_eq!(
        h.status().await["services"][&h.svc]["failed"].as_str(),
        Some(head.as_str()),
        "the bad commit is still the failed one"
    );
}

#[tokio::test]
async fn a_failing_deploy_still_starts_the_live_colors_stopped_replicas() {
    let (h, _daemon, _, head) = failing_deploy("mvs").await;
    // Blue stops (a dockerd restarted without live-restore that did not
    // start it again): started, checked and served again while the
    // deploy still fails.
    docker(&["stop", "-t", "1", &format!("teal-{}-blue-0", h.svc)]);
    h.until_serves("1.0 blue\n", 60).await;
    assert!(h.log_text().contains("step=start blue"), "{}", h.log_text());
    assert_eq!(
        h.status().await["services"][&h.svc]["failed"].as_str(),
        Some(head.as_str())
    );
}
