//! `teal daemon` against a bare repo the test pushes to, real Docker and a
//! real HAProxy run as an operator's proxy (the daemon drives it through
//! its config file, admin socket and reload command).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::{Checks, TestHost};
use common::{app_image_version, get_via, git_in, promtool_check, proxy_or_fail, teal_bin};

#[tokio::test]
async fn the_daemon_follows_pushes_keeps_serving_through_bad_ones_and_backs_off() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("d").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let bad = app_image_version(&h.docker, "3.0", false).await;
    // A short deadline, so a failing build fails within the test's window.
    let checks = Checks {
        deadline: "3s",
        ..Checks::default()
    };
    let file = |active: &str, blue: &str, green: Option<&str>| h.service_checked(active, blue, green, &checks, "");
    h.push("web 1.0", &file("blue", &v1, None));
    let proxy = h.operator_haproxy().await;
    h.write_config(&proxy.yaml);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    // A second daemon on the same state dir is refused.
    let second = Command::new(teal_bin())
        .args(["daemon", "--config", h.config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another teal daemon (pid ") && err.contains("teal.lock; stop it or use another --state-dir"),
        "{err}"
    );

    let blue_ids = || {
        let out = Command::new("docker")
            .args([
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("label=teal.service={}", h.svc),
                "--filter",
                "label=teal.color=blue",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let blue_before = blue_ids();
    assert!(!blue_before.is_empty());

    h.push("bump", &file("green", &v1, Some(&v2)));
    h.until_serves("2.0 green\n", 60).await;

    // git revert: back on the warm blue, the very same containers.
    git_in(&h.work, &["revert", "--no-edit", "HEAD"]);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    h.until_serves("1.0 blue\n", 60).await;
    assert_eq!(blue_ids(), blue_before, "no container was created for the revert");

    // Broken YAML: not applied, still serving, the problem logged with its position.
    h.push("typo", "active: green\nblue:\n  imgae: x\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    let text = h.log_text();
    let located = format!("services/{}.yaml:3:3: blue: unknown field", h.svc);
    assert!(text.contains(&located), "{text}");
    assert_eq!(
        text.matches("has an invalid config").count(),
        1,
        "logged once, not every pass:\n{text}"
    );
    let status = h.status().await;
    let errors = status["config_errors"].as_array().unwrap();
    assert!(errors[0].as_str().unwrap().starts_with(&located), "{status}");
    assert_ne!(status["fetched_commit"], status["applied_commit"], "{status}");

    // The fix deploys.
    h.push("fix", &file("green", &v1, Some(&v2)));
    h.until_serves("2.0 green\n", 60).await;

    // An unhealthy build: no switch, and no retry storm (backoff: one attempt
    // in the next seconds, though the daemon polls twice a second).
    h.push("bad build", &file("blue", &bad, Some(&v2)));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        get_via(&h.listen, &h.host, "/").await.1,
        "2.0 green\n",
        "traffic stayed"
    );
    let events = h.events();
    let checks = events
        .iter()
        .filter(|e| e.step == "wait_healthy" && e.result == "failed")
        .count();
    assert_eq!(checks, 1, "one failed attempt in 8s, not one per poll: {events:?}");
    let text = h.log_text();
    assert!(
        text.contains("deploy failed, traffic stays where it was") && text.contains("-> 503 (expected 200)"),
        "{text}"
    );
    // Fields print plain values: `color=green`, never `color=Some(Green)`.
    assert!(text.contains(&format!("service={} color=green ", h.svc)), "{text}");
    assert!(!text.contains("Some("), "{text}");
    let status = h.status().await;
    let web = &status["services"][&h.svc];
    assert_eq!(web["live"], "green", "{status}");
    assert_eq!(web["last_deploy"]["result"], "failed", "{status}");
    assert!(
        web["last_deploy"]["error"]
            .as_str()
            .unwrap()
            .contains("-> 503 (expected 200)"),
        "{status}"
    );
    let cli = Command::new(teal_bin())
        .args(["status", "--config", h.config.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        out.contains(&format!("{}: traffic on green\n", h.svc)) && out.contains("last deploy failed of"),
        "{out}"
    );
    // The live daemon's metrics, after deploys, a failed check and an
    // invalid commit, pass promtool.
    let (code, metrics) = get_via(&h.api, "localhost", "/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("teal_failed_checks_total{service="), "{metrics}");
    if let Err(e) = promtool_check(&metrics) {
        panic!("{metrics}\n{e}");
    }
    drop(proxy);
}

#[tokio::test]
async fn sighup_reloads_the_host_config() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("h").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("main", &h.service("blue", &v1, Some(&v1), ""));
    h.push_to("prod", "prod runs 2.0", &h.service("green", &v1, Some(&v2), ""));
    let proxy = h.operator_haproxy().await;
    h.write_config_with(", branch: main", &proxy.yaml);
    let daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.write_config_with(", branch: prod", &proxy.yaml);
    let pid = daemon.pid().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    h.until_serves("2.0 green\n", 60).await;
    h.until_logged("SIGHUP: host config reloaded", 10).await;
    drop(proxy);
}

/// CI once read a bump as deployed in `/status` while `live` still named
/// the old color: the pass wrote the deploy line before it observed what
/// the deploy left running. Read as fast as the API answers through the
/// deploy, the first status that shows the deploy done shows its traffic.
#[tokio::test]
async fn a_deploy_the_status_shows_done_comes_with_its_traffic() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("s").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let proxy = h.operator_haproxy().await;
    h.write_config(&proxy.yaml);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    let head = git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    for reads in 1.. {
        let st = h.status().await;
        let web = &st["services"][&h.svc];
        if web["history"][0]["commit"] == head.trim() && web["history"][0]["result"] == "ok" {
            let seen = (&web["live"], &web["versions"]["green"], &web["running"]["green"]);
            assert_eq!(seen, (&"green".into(), &"2.0".into(), &1.into()), "read {reads}: {st}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "2.0 never deployed: {st}\nlog:\n{}",
            h.log_text()
        );
    }
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");
    drop(proxy);
}
