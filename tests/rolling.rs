//! Rolling updates against real Docker, both proxies and wrk: replicas
//! replaced one at a time with no failed request and never more than
//! `replicas + max_surge` containers; a new replica that fails its checks
//! stops the roll with traffic on the old ones; analysis rolls a bad batch
//! back; kill -9 in the middle is finished by the restarted daemon.

mod common;

use std::time::Duration;

use common::host::TestHost;
use common::wrk::Wrk;
use common::{app_image_version, failing_app_image, get_via, proxy_or_fail};

const ROLLING: &str = "replicas: 3\nstrategy: rolling\nrolling: {max_surge: 1}\n";

fn rolling_service(h: &TestHost, image: &str, extra: &str) -> String {
    format!(
        "active: blue\nblue:\n  image: {image}\nport: 8080\nroute: {{host: {}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\n  deadline: 5s\nswitch: {{drain: 200ms}}\n{ROLLING}{extra}",
        h.host
    )
}

/// The service's containers, by name and image, now.
fn containers(h: &TestHost) -> Vec<(String, String)> {
    h.ps("{{.Names}} {{.Image}}")
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(n, i)| (n.to_string(), i.to_string())))
        .collect()
}

async fn a_rolling_update_under_load(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("roll").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &rolling_service(&h, &v1, ""));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let watch = common::CountWatch::start(&h.svc, true);
    let load = Wrk::start(&h.listen, &h.host, 120);
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.push("web 2.0", &rolling_service(&h, &v2, ""));
    h.until_logged("rolling: 3 of 3 replicas run", 60).await;
    let r = load.stop();
    let most = watch.most();
    assert_eq!(
        r.failed(),
        0,
        "{kind}: {r:?}\nproxy log:\n{}\ndaemon log:\n{}",
        h.proxy_log_tail(),
        h.log_text()
    );
    assert!(most <= 4, "{kind}: {} containers at once", most);
    assert!(most >= 3);
    let want: Vec<(String, String)> = (0..3)
        .map(|n| (format!("teal-{}-blue-{n}", h.svc), v2.clone()))
        .collect();
    assert_eq!(
        containers(&h),
        want,
        "{kind}: three replicas of 2.0 under their own names"
    );
    // The record is written before traffic moves: wait for the move.
    h.until_only_serves("2.0 blue\n", 10).await;
}

#[tokio::test]
async fn haproxy_rolling_update_under_load() {
    a_rolling_update_under_load("haproxy").await;
}

#[tokio::test]
async fn nginx_rolling_update_under_load() {
    a_rolling_update_under_load("nginx").await;
}

#[tokio::test]
async fn a_failing_new_replica_stops_the_roll() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("rollfail").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = app_image_version(&h.docker, "3.0", false).await;
    h.push("web 1.0", &rolling_service(&h, &v1, ""));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 3.0", &rolling_service(&h, &bad, ""));
    h.until_logged("deploy failed, traffic stays where it was", 60).await;
    let status = h.status().await;
    let error = status["services"][&h.svc]["last_deploy"]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        error.contains(&format!("teal-{}-blue-0-next", h.svc)) && error.contains("503"),
        "names the failed replica and why: {error}"
    );
    let want: Vec<(String, String)> = (0..3)
        .map(|n| (format!("teal-{}-blue-{n}", h.svc), v1.clone()))
        .collect();
    assert_eq!(
        containers(&h),
        want,
        "the failed new replica is removed, the old ones kept"
    );
    // The record is written before traffic moves: wait for the move.
    h.until_only_serves("1.0 blue\n", 10).await;
}

#[tokio::test]
async fn analysis_rolls_a_bad_batch_back() {
    proxy_or_fail("nginx");
    let h = TestHost::new("rollbad").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 50).await;
    let analysis = "analysis: {max_errors: 5%, min_requests: 10}\n";
    let with_hold =
        |image: &str| rolling_service(&h, image, analysis).replace("{max_surge: 1}", "{max_surge: 1, hold: 5s}");
    h.push("web 1.0", &with_hold(&v1));
    h.managed_config("nginx");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let load = Wrk::start(&h.listen, &h.host, 120);
    h.push("web 3.0", &with_hold(&bad));
    h.until_phase("rolled_back", 60).await;
    let _ = load.stop();
    let want: Vec<(String, String)> = (0..3)
        .map(|n| (format!("teal-{}-blue-{n}", h.svc), v1.clone()))
        .collect();
    // The record says rolled back before the bad replica is removed (on a
    // loaded machine that takes a while): wait for it.
    let start = std::time::Instant::now();
    while containers(&h) != want && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(containers(&h), want, "the bad batch is gone, the old replicas serve");
    // The record is written before traffic moves: wait for the move.
    h.until_only_serves("1.0 blue\n", 10).await;
    let status = h.status().await;
    assert!(
        status["services"][&h.svc]["rolled_back"]["figures"]
            .as_str()
            .is_some_and(|f| f.starts_with("5xx ")),
        "{status}"
    );
}

#[tokio::test]
async fn kill_9_mid_roll_is_finished_by_the_restarted_daemon() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("rollkill").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let slow = |image: &str| rolling_service(&h, image, "").replace("drain: 200ms", "drain: 2s");
    h.push("web 1.0", &slow(&v1));
    h.managed_config("haproxy");
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let load = Wrk::start(&h.listen, &h.host, 120);
    h.push("web 2.0", &slow(&v2));
    h.until_logged("rolling: 1 of 3 replicas run", 60).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    daemon.kill_9();
    let _daemon = h.start_daemon();
    let start = std::time::Instant::now();
    let want: Vec<(String, String)> = (0..3)
        .map(|n| (format!("teal-{}-blue-{n}", h.svc), v2.clone()))
        .collect();
    while containers(&h) != want {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}\n{}",
            containers(&h),
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = load.stop();
    assert_eq!(r.failed(), 0, "{r:?}");
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 blue\n");
}
