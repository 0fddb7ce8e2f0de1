//! `docker.mode: swarm` when the swarm loses quorum (issue 14): two
//! managers on this machine (the main engine and a second engine), teal's
//! tasks pinned to the main engine's node, then the second engine stops.
//! With one manager of two, the swarm has no leader: nothing about the
//! services can be read or changed. The tasks keep running, so the proxy
//! must keep serving the last routes, the daemon must say what is wrong,
//! and keep trying, so a commit pushed meanwhile is deployed once the
//! second manager is back, without restarting teal.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::host::{Checks, TestHost};
use common::swarm::{all_serve, docker, reachable_managers, swarm_config, until_only, SecondManager, SwarmGuard};
use common::wrk::Wrk;
use common::{app_image_version, proxy_or_fail, teal};

/// A node label set for one test, removed on drop.
struct NodeLabel {
    node: String,
    key: String,
}

impl NodeLabel {
    fn add(node: &str, key: &str, value: &str) -> NodeLabel {
        docker(&["node", "update", "--label-add", &format!("{key}={value}"), node]);
        NodeLabel {
            node: node.into(),
            key: key.into(),
        }
    }
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["node", "update", "--label-rm", &self.key, &self.node])
            .output();
    }
}

/// The daemon's `last_error` once it contains `text` (at most `secs`).
async fn until_problem(h: &TestHost, text: &str, secs: u64) -> String {
    let start = Instant::now();
    loop {
        let s = h.status().await;
        if let Some(e) = s["last_error"].as_str().filter(|e| e.contains(text)) {
            return e.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "the status never said {text:?} (last_error {}); log:\n{}",
            s["last_error"],
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_without_quorum_keeps_serving_is_reported_and_the_deploy_follows_when_it_is_back() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("quorum").await;
    // Declared in this order so they drop in reverse: the daemon first,
    // then the second manager (quorum back, demoted, gone), the label, and
    // the swarm last.
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let main = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    let label = format!("teal-test-{}", h.svc);
    let _label = NodeLabel::add(&main, &label, "main");
    let mut second = SecondManager::join();
    swarm_config(&h, None);
    let checks = Checks {
        deadline: "60s",
        ..Default::default()
    };
    // Pinned to the main engine's node: its tasks keep running while the
    // second engine is down.
    let placed = format!("replicas: 2\nplacement: {{{label}: main}}\n");
    h.push("web 1.0", &h.service_checked("blue", &v1, None, &checks, &placed));
    let mut d = h.start_daemon();
    h.until_serves("1.0 blue\n", 120).await;
    all_serve(&h, "1.0 blue\n", 10).await;

    // The second manager's engine stops: no leader.
    let load = Wrk::start(&h.listen, &h.host, 600);
    let lost = Instant::now();
    second.engine.stop();
    let problem = until_problem(&h, "Swarm lost quorum", 120).await;
    let reported = h.log_text().len();
    eprintln!("quorum loss reported after {:?}: {problem}", lost.elapsed());
    assert!(
        problem.contains("does not have a leader") && problem.contains("retries each poll"),
        "the status names the cause and says teal retries: {problem}"
    );
    let cli = teal(h.dir.path(), &["status", "--config", h.config.to_str().unwrap()]);
    assert!(
        cli.stdout
            .contains("problem: observing Docker: Swarm lost quorum: no manager is leader"),
        "teal status says it:\n{}{}",
        cli.stdout,
        cli.stderr
    );
    h.push("web 2.0", &h.service_checked("green", &v1, Some(&v2), &checks, &placed));
    // Many polls without a leader: v1 keeps serving, the problem stays.
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(15) {
        all_serve(&h, "1.0 blue\n", 10).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let st = h.status().await;
    assert_eq!(st["services"][&h.svc]["live"], "blue", "{st:#}");
    assert!(
        st["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Swarm lost quorum")),
        "{st:#}"
    );
    let log = h.log_text();
    assert!(log.contains("still serving the last good state"), "{log}");
    assert!(
        !log[reported..].contains("recovered"),
        "the problem is said once and stays until it clears:\n{log}"
    );
    let r = load.stop();
    eprintln!("wrk while the swarm had no leader ({:?}): {r:?}", lost.elapsed());
    assert_eq!(r.failed(), 0, "failed requests while the swarm had no leader: {r:?}");

    // The second engine starts again on its data root and rejoins as a
    // manager: a leader again, and the same daemon deploys 2.0 by itself.
    let load = Wrk::start(&h.listen, &h.host, 600);
    second.engine.restart().expect("the second manager starts again");
    let back = Instant::now();
    h.until_serves("2.0 green\n", 120).await;
    let took = back.elapsed();
    eprintln!(
        "2.0 served {took:?} after the second manager started again ({} managers reachable)",
        reachable_managers()
    );
    // An election and a deploy (some 4 s here), not a backed-off loop
    // waiting out a delay doubled at each failed pass.
    assert!(took < Duration::from_secs(30), "2.0 took {took:?}:\n{}", h.log_text());
    until_only(&h, "2.0 green\n", 30).await;
    all_serve(&h, "2.0 green\n", 20).await;
    let r = load.stop();
    assert_eq!(
        r.failed(),
        0,
        "failed requests while quorum came back and 2.0 went live: {r:?}"
    );
    assert!(
        matches!(d.0.try_wait(), Ok(None)),
        "the daemon kept running: {}",
        h.log_text()
    );
    // Two managers may elect once more right after one rejoins: a pass
    // then meets "no leader" again and says so, and the next clears it.
    let cleared = Instant::now();
    let mut st = h.status().await;
    while !st["last_error"].is_null() && cleared.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        st = h.status().await;
    }
    assert!(st["last_error"].is_null(), "the problem cleared: {st:#}");
    assert!(h.log_text()[reported..].contains("recovered"), "{}", h.log_text());
}
