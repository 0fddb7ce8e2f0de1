//! `docker.mode: swarm` end to end, on a real one-node Docker Swarm on
//! this machine's engine (made here when the engine is in none, and left
//! afterwards): each color a Swarm service, tasks published in
//! `mode=host`, the daemon routing a managed HAProxy to the task
//! endpoints that passed their checks.
//!
//! The swarm scenarios run in sequence in one test (one swarm per engine;
//! other test binaries keep using the engine as usual meanwhile). The
//! refusal runs against an extra engine that is in no swarm.

mod common;

use std::time::{Duration, Instant};

use common::engine::Engine;
use common::host::TestHost;
use common::swarm::{all_serve, docker, inspect, swarm_config, until, until_only, SwarmGuard, Worker};
use common::wrk::Wrk;
use common::{app_image_version, failing_app_image, proxy_or_fail, teal, try_get_via};

/// Task containers of the service (both colors), as `docker ps` finds
/// them by teal's labels: (name, status).
fn task_containers(h: &TestHost) -> Vec<String> {
    h.ps("{{.Names}}")
}

/// The running task containers of one color, by name.
fn running_tasks(h: &TestHost, color: &str) -> Vec<String> {
    let names = docker(&[
        "ps",
        "--filter",
        &format!("label=teal.service={}", h.svc),
        "--filter",
        &format!("label=teal.color={color}"),
        "--filter",
        "status=running",
        "--format",
        "{{.Names}}",
    ]);
    names.lines().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_colors_are_services_and_the_proxy_follows_their_tasks() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swarm").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let bad = app_image_version(&h.docker, "3.0", false).await;
    swarm_config(&h, None);
    let file = |active: &str, blue: &str, green: Option<&str>, deadline: &str| {
        let checks = common::host::Checks {
            deadline: if deadline.is_empty() { "60s" } else { "4s" },
            ..Default::default()
        };
        h.service_checked(active, blue, green, &checks, "replicas: 2\nlabels: {team: shop}\n")
    };
    let (blue, green) = (format!("{}-blue", h.svc), format!("{}-green", h.svc));

    // First deploy: a Swarm service with 2 tasks, labelled like containers.
    h.push("web 1.0", &file("blue", &v1, None, ""));
    let _d = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    assert_eq!(inspect(&blue, "{{.Spec.Mode.Replicated.Replicas}}"), "2");
    assert_eq!(inspect(&blue, "{{index .Spec.Labels \"teal.service\"}}"), h.svc);
    assert_eq!(inspect(&blue, "{{index .Spec.Labels \"team\"}}"), "shop");
    assert_eq!(
        inspect(
            &blue,
            "{{range .Endpoint.Ports}}{{.PublishMode}} {{.PublishedPort}}{{end}}"
        ),
        "host 0",
        "published on each task's node, no fixed port, no routing mesh"
    );
    let tasks = task_containers(&h);
    assert_eq!(tasks.len(), 2, "docker ps finds the tasks by teal's labels: {tasks:?}");
    assert!(tasks.iter().all(|t| t.starts_with(&format!("{blue}."))), "{tasks:?}");
    all_serve(&h, "1.0 blue\n", 20).await;

    // Bump, then revert, under keep-alive load: no failed request.
    let load = Wrk::start(&h.listen, &h.host, 14);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.push("web 2.0", &file("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    assert_eq!(inspect(&green, "{{.Spec.Mode.Replicated.Replicas}}"), "2");
    assert_eq!(
        inspect(&blue, "{{.Spec.Mode.Replicated.Replicas}}"),
        "2",
        "the old color stays warm"
    );
    h.push("revert web 2.0", &file("blue", &v1, Some(&v2), ""));
    h.until_serves("1.0 blue\n", 60).await;
    let r = load.finish();
    assert_eq!(r.failed(), 0, "failed requests during bump and revert: {r:?}");
    eprintln!("wrk through bump and revert: {r:?}");

    // An unhealthy build never takes traffic.
    h.push("web 3.0 (broken)", &file("green", &v1, Some(&bad), "4s"));
    h.until_logged("health checks did not pass", 60).await;
    all_serve(&h, "1.0 blue\n", 20).await;
    assert_eq!(
        inspect(&green, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
            .split('@')
            .next(),
        Some(bad.as_str()),
        "the broken build runs on the idle color for inspection"
    );
    // A placement no node matches: the tasks stay pending, the deploy
    // fails at the health deadline with Swarm's own reason; traffic stays.
    let nowhere = h.service_checked(
        "green",
        &v1,
        Some(&v1),
        &common::host::Checks {
            deadline: "3s",
            ..Default::default()
        },
        "replicas: 2\nlabels: {team: shop}\nplacement: {teal-test-nowhere: x}\n",
    );
    h.push("web on no node", &nowhere);
    h.until_logged("no suitable node", 60).await;
    all_serve(&h, "1.0 blue\n", 10).await;
    // Scaled by hand while teal awaits its tasks: the wait ends at once
    // with why (it could never settle), not at the 60 s deadline.
    // (another image than the commits around it: a placement alone is
    // applied with the color's next spec change only)
    let awaited = h.service_checked(
        "green",
        &v1,
        Some(&bad),
        &common::host::Checks {
            deadline: "60s",
            ..Default::default()
        },
        "replicas: 2\nlabels: {team: shop}\nplacement: {teal-test-nowhere: y}\n",
    );
    h.push("web on no node, awaited", &awaited);
    until("green set to the new placement", 30, &h, || {
        inspect(&green, "{{.Spec.TaskTemplate.Placement.Constraints}}").contains("teal-test-nowhere==y")
    })
    .await;
    docker(&["service", "scale", "--detach", &format!("{green}=1")]);
    h.until_logged("set to 1 replicas (not 2) while its tasks were awaited", 20)
        .await;
    all_serve(&h, "1.0 blue\n", 10).await;
    h.push("back to 1.0", &file("blue", &v1, Some(&v2), ""));

    // A killed task: Swarm replaces it on a new port; the proxy follows
    // (both original tasks die one after the other, so serving at the end
    // means the proxy routes to the replacements).
    let originals = running_tasks(&h, "blue");
    assert_eq!(originals.len(), 2, "{originals:?}");
    for t in &originals {
        docker(&["kill", t]);
        until("Swarm replacing the killed task", 60, &h, || {
            let alive = docker(&["ps", "-q", "--filter", &format!("name=^{t}$")]);
            let running = docker(&[
                "service",
                "ps",
                &blue,
                "--filter",
                "desired-state=running",
                "--format",
                "{{.CurrentState}}",
            ]);
            alive.is_empty() && running.lines().filter(|l| l.starts_with("Running")).count() == 2
        })
        .await;
    }
    let start = Instant::now();
    loop {
        let got = try_get_via(&h.listen, &h.host, "/").await;
        if matches!(&got, Ok((200, b)) if b == "1.0 blue\n") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(75),
            "the proxy did not follow the replaced tasks (last {got:?}); log:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all_serve(&h, "1.0 blue\n", 30).await;

    // Drift: a hand-scaled service is put back.
    docker(&["service", "scale", "--detach", &format!("{blue}=4")]);
    until("scale 4 put back to 2", 60, &h, || {
        inspect(&blue, "{{.Spec.Mode.Replicated.Replicas}}") == "2"
    })
    .await;
    docker(&["service", "scale", "--detach", &format!("{blue}=1")]);
    until("scale 1 put back to 2", 60, &h, || {
        inspect(&blue, "{{.Spec.Mode.Replicated.Replicas}}") == "2"
    })
    .await;
    all_serve(&h, "1.0 blue\n", 20).await;
    // teal plan reads the tasks: nothing to do once converged.
    let mut quiet = false;
    for _ in 0..50 {
        let run = teal(h.dir.path(), &["plan", "--config", h.config.to_str().unwrap()]);
        if run.code == 0 {
            quiet = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(quiet, "teal plan never came to no change; log:\n{}", h.log_text());

    // Drift again, once the daemon is idle: a service whose image was
    // changed by hand is put back.
    docker(&["service", "update", "--detach", "--image", &v2, &blue]);
    until("a hand-set image put back", 90, &h, || {
        inspect(&blue, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
            .split('@')
            .next()
            == Some(v1.as_str())
    })
    .await;
    until_only(&h, "1.0 blue\n", 60).await;

    // The status lists each task with its node and endpoint.
    let node_addr = docker(&["info", "--format", "{{.Swarm.NodeAddr}}"]);
    let st = h.status().await;
    let tasks = st["services"][&h.svc]["tasks"]["blue"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tasks.len(), 2, "{st:#}");
    assert!(
        tasks.iter().all(|t| t["running"] == true
            && t["node"].as_str().is_some_and(|n| !n.is_empty())
            && t["endpoint"]
                .as_str()
                .is_some_and(|e| e.starts_with(&format!("{node_addr}:")))),
        "{tasks:?}"
    );

    // A task that dies during its checks: the check starts over with the
    // task Swarm runs instead, and the deploy goes through well before the
    // deadline (rather than probing a gone endpoint until it).
    let slow = common::host::Checks {
        interval: "100ms",
        successes: 30,
        deadline: "60s",
    };
    let extra = "replicas: 2\nlabels: {team: shop}\n";
    h.push(
        "web 2.0, slow checks",
        &h.service_checked("green", &v1, Some(&v2), &slow, extra),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let victim = running_tasks(&h, "green")
        .into_iter()
        .next()
        .expect("a running green task");
    docker(&["kill", &victim]);
    let start = Instant::now();
    h.until_serves("2.0 green\n", 40).await;
    assert!(start.elapsed() < Duration::from_secs(40));
    assert!(
        h.log_text().contains("a task stopped during its checks"),
        "{}",
        h.log_text()
    );
    until_only(&h, "2.0 green\n", 20).await;
}

const CANARY: &str = "strategy: canary\ncanary:\n  steps:\n    - {weight: 20, hold: 2s}\n    - {weight: 50, hold: 2s}\nanalysis: {max_errors: 5%, min_requests: 10}\nreplicas: 2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_over_two_task_sets_walks_its_steps_and_a_bad_one_is_rolled_back() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swarmcanary").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 50).await;
    swarm_config(&h, None);
    let checks = common::host::Checks {
        deadline: "60s",
        ..Default::default()
    };
    h.push("web 1.0", &h.service_checked("blue", &v1, None, &checks, CANARY));
    let _d = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;

    let load = Wrk::start(&h.listen, &h.host, 12);
    h.push("web 2.0", &h.service_checked("green", &v1, Some(&v2), &checks, CANARY));
    h.until_phase("step 0", 60).await;
    let mut seen = std::collections::BTreeSet::new();
    let start = Instant::now();
    while h.phase().as_deref() != Some("done") {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", h.log_text());
        if let Ok((200, body)) = try_get_via(&h.listen, &h.host, "/").await {
            seen.insert(body);
        }
    }
    let r = load.finish();
    assert_eq!(r.failed(), 0, "failed requests during the canary: {r:?}");
    assert!(
        seen.contains("1.0 blue\n") && seen.contains("2.0 green\n"),
        "both task sets served during the steps: {seen:?}"
    );
    h.until_weight("green", 100, 20).await;
    until_only(&h, "2.0 green\n", 20).await;
    all_serve(&h, "2.0 green\n", 20).await;

    // 50 % of 5xx on the new task set: analysis rolls it back.
    h.push(
        "web 3.0 (fails)",
        &h.service_checked("blue", &bad, Some(&v2), &checks, CANARY),
    );
    let start = Instant::now();
    while h.phase().as_deref() != Some("rolled_back") {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no rollback:\n{}",
            h.log_text()
        );
        let _ = try_get_via(&h.listen, &h.host, "/").await;
    }
    // The rollback is recorded before traffic moves back (10 answers in
    // a row from green come by chance one time in ten at a 20 % step).
    h.until_weight("blue", 0, 20).await;
    until_only(&h, "2.0 green\n", 20).await;
    all_serve(&h, "2.0 green\n", 20).await;
}

/// The nodes of the service's running tasks, sorted.
fn task_nodes(service: &str) -> Vec<String> {
    let ids = docker(&["service", "ps", "-q", "--filter", "desired-state=running", service]);
    let mut nodes: Vec<String> = ids
        .lines()
        .map(|t| docker(&["inspect", "--format", "{{.NodeID}}", t]))
        .collect();
    nodes.sort();
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_placement_picks_the_node_and_a_lost_nodes_tasks_move() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swarm2").await;
    // Alone on the swarm: the worker it adds and deletes must not take
    // another test's tasks with it.
    let _swarm = SwarmGuard::join_alone(&h.svc);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let mut worker = Worker::join();
    worker.engine.load(&v1);
    worker.engine.load(&v2);
    let label = format!("teal-test-{}", h.svc);
    docker(&["node", "update", "--label-add", &format!("{label}=worker"), &worker.id]);
    let manager = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    swarm_config(&h, None);
    let checks = common::host::Checks {
        deadline: "60s",
        ..Default::default()
    };
    let (blue, green) = (format!("{}-blue", h.svc), format!("{}-green", h.svc));

    // placement selects nodes by label: both tasks on the worker, served
    // through its endpoints.
    let placed = format!("replicas: 2\nplacement: {{{label}: worker}}\n");
    h.push(
        "web 1.0 on the worker",
        &h.service_checked("blue", &v1, None, &checks, &placed),
    );
    let _d = h.start_daemon();
    h.until_serves("1.0 blue\n", 120).await;
    assert_eq!(task_nodes(&blue), [worker.id.clone(), worker.id.clone()]);
    all_serve(&h, "1.0 blue\n", 10).await;

    // An image the worker cannot pull (only the manager has it, and no
    // registry is reachable): the deploy fails at the deadline with the
    // tasks' own state in the status (here Swarm keeps them "pending task
    // scheduling"), and traffic stays.
    let v3 = app_image_version(&h.docker, "3.0", true).await;
    let short = common::host::Checks {
        deadline: "10s",
        ..Default::default()
    };
    h.push(
        "web 3.0 on the worker, which lacks the image",
        &h.service_checked("green", &v1, Some(&v3), &short, &placed),
    );
    let start = Instant::now();
    let error = loop {
        let s = h.status().await;
        let d = &s["services"][&h.svc]["last_deploy"];
        if d["result"] == "failed" {
            break d["error"].as_str().unwrap_or_default().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the deploy never failed: {d}\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        error.contains("0 of 2 tasks running") && error.contains(&format!("task {}-green.1: ", h.svc)),
        "the status names the tasks' error: {error}"
    );
    all_serve(&h, "1.0 blue\n", 10).await;

    // Unplaced, a new color spreads over both nodes; when the worker goes
    // (its engine shuts down, without leaving the swarm), Swarm moves its
    // task to the manager and the proxy follows.
    h.push(
        "web 2.0 anywhere",
        &h.service_checked("green", &v1, Some(&v2), &checks, "replicas: 2\n"),
    );
    h.until_serves("2.0 green\n", 120).await;
    let mut spread = vec![manager.clone(), worker.id.clone()];
    spread.sort();
    assert_eq!(task_nodes(&green), spread, "one task per node");
    worker.engine.stop();
    until("the worker's task moving to the manager", 120, &h, || {
        task_nodes(&green) == [manager.clone(), manager.clone()]
    })
    .await;
    until_only(&h, "2.0 green\n", 60).await;
    all_serve(&h, "2.0 green\n", 20).await;
}

#[tokio::test]
async fn swarm_mode_refuses_an_engine_that_is_not_a_manager() {
    let h = TestHost::new("noswarm").await;
    let engine = Engine::start();
    swarm_config(&h, Some(&engine.host()));
    h.push("web", &h.service("blue", "example.invalid/web:1", None, ""));
    let run = teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()]);
    assert_eq!(run.code, 1, "teal apply: {}", run.stderr);
    let says = |text: &str| {
        text.contains("docker.mode: swarm needs a Swarm manager") && text.contains("docker swarm init --advertise-addr")
    };
    assert!(says(&run.stderr), "the refusal says how to make one:\n{}", run.stderr);
    let mut d = h.start_daemon();
    let start = Instant::now();
    while matches!(d.0.try_wait(), Ok(None)) {
        assert!(start.elapsed() < Duration::from_secs(30), "the daemon started anyway");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!d.0.wait().unwrap().success());
    assert!(says(&h.log_text()), "the daemon says why it stops:\n{}", h.log_text());
}
