//! `strategy: rolling` in `docker.mode: swarm`: teal's own batches over a
//! twin Swarm service (Swarm's update would stop old tasks before teal
//! checked the new ones). Under keep-alive load a bump rolls task by task
//! with at most `replicas + max_surge` tasks running and the color's
//! service name alternating; a build that fails its checks, and one that
//! analysis judges bad, both leave the color on its old service with all
//! of its replicas and all of the traffic.

mod common;

use std::time::Duration;

use common::host::TestHost;
use common::swarm::*;
use common::wrk::Wrk;
use common::{app_image_version, failing_app_image, proxy_or_fail, teal};

fn rolling_service(h: &TestHost, image: &str, extra: &str) -> String {
    format!(
        "active: blue\nblue:\n  image: {image}\nport: 8080\nroute: {{host: {}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\n  deadline: 20s\nswitch: {{drain: 300ms}}\nreplicas: 3\nstrategy: rolling\n{extra}",
        h.host
    )
}

/// teal's Swarm services of the test's service: (name, replicas, image).
fn services(h: &TestHost) -> Vec<(String, String, String)> {
    let out = docker(&[
        "service",
        "ls",
        "--filter",
        &format!("label=teal.service={}", h.svc),
        "--format",
        "{{.Name}} {{.Replicas}} {{.Image}}",
    ]);
    let mut all: Vec<(String, String, String)> = out
        .lines()
        .filter_map(|l| {
            let mut p = l.split(' ');
            Some((p.next()?.into(), p.next()?.into(), p.next()?.split('@').next()?.into()))
        })
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_over_swarm_tasks_goes_batch_by_batch_and_a_bad_one_goes_back() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swroll").await;
    let mut swarm = SwarmGuard::join(&h.svc);
    let (blue, next) = (format!("{}-blue", h.svc), format!("{}-blue-next", h.svc));
    swarm.services.push(next.clone());
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let unhealthy = app_image_version(&h.docker, "3.0", false).await;
    let erring = failing_app_image(&h.docker, "4.0", 50).await;
    swarm_config(&h, None);
    let surge_1 = "rolling: {max_surge: 1}\n";

    // First deploy: the color's own service, all replicas.
    h.push("web 1.0", &rolling_service(&h, &v1, surge_1));
    let mut d = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    assert_eq!(services(&h), vec![(blue.clone(), "3/3".into(), v1.clone())]);
    // `teal plan` lists the tasks it planned against, per node.
    let config = h.config.to_str().unwrap();
    let run = teal(h.dir.path(), &["plan", "--config", config, "--format", "json"]);
    assert_eq!(run.code, 0, "teal plan: {}{}", run.stdout, run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).expect("plan JSON");
    let tasks = plan["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 3, "{plan:#}");
    assert!(
        tasks.iter().all(|t| t["color"] == "blue"
            && t["running"] == true
            && t["task"].as_str().is_some_and(|n| n.starts_with(&format!("{blue}.")))
            && t["node"].as_str().is_some_and(|n| !n.is_empty())
            && t["endpoint"].as_str().is_some_and(|e| e.contains(':'))),
        "{plan:#}"
    );
    let run = teal(h.dir.path(), &["plan", "--config", config]);
    let node = tasks[0]["node"].as_str().unwrap();
    assert!(
        run.stdout.contains("Swarm tasks now, per node:")
            && run.stdout.contains(&format!("{}/blue on {node}: {blue}.", h.svc)),
        "{}",
        run.stdout
    );

    // A bump under keep-alive load: batch by batch, never more than
    // replicas + max_surge tasks, no failed request; the color's service
    // is now the twin, under the other name.
    let watch = common::CountWatch::start(&h.svc, false);
    let load = Wrk::start(&h.listen, &h.host, 120);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.push("web 2.0", &rolling_service(&h, &v2, surge_1));
    h.until_logged("rolling: 1 of 3 replicas run", 60).await;
    h.until_logged(&format!("rolling: 3 of 3 replicas run {v2}"), 90).await;
    h.until_only_serves("2.0 blue\n", 30).await;
    let r = load.stop();
    let most = watch.most();
    eprintln!("wrk through a rolling update over Swarm tasks: {r:?}");
    assert_eq!(r.failed(), 0, "failed requests during the rolling update: {r:?}");
    assert!(r.requests > 100, "the load ran: {r:?}");
    let seen = most;
    assert!(
        (3..=4).contains(&seen),
        "at most replicas + max_surge tasks ran: {seen}"
    );
    until("the old service goes", 30, &h, || {
        services(&h) == vec![(next.clone(), "3/3".into(), v2.clone())]
    })
    .await;

    // A build that fails its checks: its batch never takes traffic, the
    // twin goes, the color's service keeps all its replicas.
    h.push("web 3.0 (unhealthy)", &rolling_service(&h, &unhealthy, surge_1));
    h.until_logged("health checks did not pass", 60).await;
    until("the twin goes", 30, &h, || {
        services(&h) == vec![(next.clone(), "3/3".into(), v2.clone())]
    })
    .await;
    all_serve(&h, "2.0 blue\n", 20).await;

    // A build that answers half its requests with 500s: analysis judges
    // its first batch, and the whole color goes back to its old service.
    let analysis = "rolling: {max_surge: 1, hold: 4s}\nanalysis: {max_errors: 5%, min_requests: 10}\n";
    let load = Wrk::start(&h.listen, &h.host, 120);
    h.push("web 4.0 (erring)", &rolling_service(&h, &erring, analysis));
    h.until_phase("rolled_back", 90).await;
    let _ = load.stop();
    until("the twin goes", 30, &h, || {
        services(&h) == vec![(next.clone(), "3/3".into(), v2.clone())]
    })
    .await;
    h.until_only_serves("2.0 blue\n", 20).await;
    let status = h.status().await;
    assert!(
        status["services"][&h.svc]["rolled_back"]["figures"]
            .as_str()
            .is_some_and(|f| f.starts_with("5xx ")),
        "{status}"
    );

    // The next good commit rolls again, back to the first name; teal is
    // killed (-9) in the middle, and the restarted one finishes the roll
    // from the two services as they are.
    let slow = rolling_service(&h, &v1, surge_1).replace("drain: 300ms", "drain: 2s");
    h.push("web 1.0 again", &slow);
    h.until_logged(&format!("rolling: 1 of 3 replicas run {v1}"), 120).await;
    d.kill_9();
    assert_eq!(services(&h).len(), 2, "killed in the middle: {:?}", services(&h));
    let _d = h.start_daemon();
    until("the restarted teal finishes the roll", 120, &h, || {
        services(&h) == vec![(blue.clone(), "3/3".into(), v1.clone())]
    })
    .await;
    h.until_only_serves("1.0 blue\n", 30).await;
}
