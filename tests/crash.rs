//! Crash safety: `kill -9` the daemon at each phase of a deploy, restart
//! it, and it converges with no orphan containers, never routing traffic to
//! a color whose checks have not passed.

mod common;

use std::time::{Duration, Instant};

use common::host::{Checks, TestHost};
use common::{app_image_version, get_via, git_in, proxy_or_fail};

/// Successful `step` events (e.g. `start_color`) in the log so far.
fn count(h: &TestHost, step: &str) -> usize {
    h.events().iter().filter(|e| e.step == step && e.result == "ok").count()
}

/// Waits for a successful `step` event beyond the `seen_before` there were.
async fn wait_event(h: &TestHost, step: &str, seen_before: usize) {
    let start = Instant::now();
    while count(h, step) <= seen_before {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {step} event; log:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `teal-web-blue-0 running`, ... for every container of the service.
fn containers(h: &TestHost) -> Vec<String> {
    let mut listed: Vec<String> = h
        .ps("{{.Names}} {{.State}}")
        .iter()
        .map(|l| l.replace(&h.svc, "web"))
        .collect();
    listed.sort();
    listed
}

#[tokio::test]
async fn kill_9_in_every_phase_then_restart_converges() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("k").await;
    let versions = ["1.0", "2.0", "3.0", "4.0", "5.0"];
    let mut images = vec![];
    for v in versions {
        images.push(app_image_version(&h.docker, v, true).await);
    }
    let image_of = |v: &str| images[versions.iter().position(|x| *x == v).unwrap()].clone();
    // Several consecutive passes make the check window wide enough to hit.
    let checks = Checks {
        interval: "200ms",
        successes: 8,
        deadline: "30s",
    };
    let file =
        |active: &str, blue: &str, green: &str| h.service_checked(active, blue, Some(green), &checks, "replicas: 2\n");
    h.push("deploy", &file("blue", &images[0], &images[0]));
    let proxy = h.operator_haproxy().await;
    h.write_config(&proxy.yaml);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;

    // (phase, step whose completion triggers the kill, extra delay)
    let phases = [
        ("after the image pull", "pull_image", 0),
        ("after containers start", "start_color", 0),
        ("during health checks", "start_color", 600),
        ("right after the switch", "switch", 0),
    ];
    let mut active = "blue";
    let mut colors = ("1.0", "1.0");
    for (i, (phase, step, delay)) in phases.iter().enumerate() {
        let version = versions[i + 1];
        let to = if active == "blue" { "green" } else { "blue" };
        let before = get_via(&h.listen, &h.host, "/").await.1;
        let seen = count(&h, step);
        let text = if to == "green" {
            colors.1 = version;
            file("green", &image_of(colors.0), &image_of(version))
        } else {
            colors.0 = version;
            file("blue", &image_of(version), &image_of(colors.1))
        };
        h.push("deploy", &text);
        wait_event(&h, step, seen).await;
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        daemon.kill_9();
        // Until a check passed, traffic is where it was (after the switch, on the new color).
        let now = get_via(&h.listen, &h.host, "/").await.1;
        let new = format!("{version} {to}\n");
        if *step == "switch" {
            assert_eq!(now, new, "{phase}");
        } else {
            assert_eq!(now, before, "{phase}: no traffic to the unchecked color");
        }
        daemon = h.start_daemon();
        h.until_serves(&new, 90).await;
        // The deploy has its one deploy line, also when the kill came
        // after its last step (found by the soak: none was written).
        let head = git_in(&h.work, &["rev-parse", "HEAD"]);
        let deployed = || {
            h.events()
                .iter()
                .filter(|e| e.commit == head && e.step == "deploy" && e.result == "ok")
                .count()
        };
        let start = Instant::now();
        while deployed() == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{phase}: no deploy line; log:\n{}",
                h.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(deployed(), 1, "{phase}: one deploy line");
        assert_eq!(
            containers(&h),
            [
                "teal-web-blue-0 running",
                "teal-web-blue-1 running",
                "teal-web-green-0 running",
                "teal-web-green-1 running"
            ],
            "{phase}: no orphans, both colors warm"
        );
        active = to;
    }
    daemon.kill_9();
    drop(proxy);
}
