//! A killed Swarm task loses no request under keep-alive load: the proxy
//! retries what the dead task would have answered on another task (a
//! refused connection, a connection closed without a response), and teal
//! routes Swarm's replacement once it passed its checks, woken by
//! Docker's events rather than its poll. Three tasks are killed one after
//! the other, each once the previous replacement serves.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use common::host::{Checks, TestHost};
use common::swarm::*;
use common::wrk::Wrk;
use common::{app_image_version, proxy_or_fail};

/// The published ports of the service's running task containers.
fn task_ports(h: &TestHost) -> BTreeSet<u16> {
    docker(&[
        "ps",
        "--filter",
        &format!("label=teal.service={}", h.svc),
        "--format",
        "{{.Ports}}",
    ])
    .lines()
    .filter_map(|l| l.split("->").next()?.rsplit(':').next()?.parse().ok())
    .collect()
}

/// The ports of the servers the managed HAProxy sends the service's
/// requests to now (not in maintenance, weight above 0), from its admin
/// socket.
fn routed_ports(h: &TestHost) -> BTreeSet<u16> {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(h.proxy_dir().join("admin.sock")) else {
        return BTreeSet::new();
    };
    let backend = format!("teal_{}", h.svc);
    s.write_all(format!("show servers state {backend}\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state
    // srv_uweight srv_iweight ... srv_port (the 19th field).
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 18 && f[6] == "0" && f[7].parse::<u32>().is_ok_and(|w| w > 0))
        .filter_map(|f| f[18].parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_loses_no_request() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("swkill").await;
    let _swarm = SwarmGuard::join(&h.svc);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    swarm_config(&h, None);
    // A poll far longer than the test: the proxy follows the killed tasks
    // because teal hears Docker's events, not because it polls.
    let config = std::fs::read_to_string(&h.config).unwrap();
    std::fs::write(&h.config, config.replace("poll: 300ms", "poll: 10m")).unwrap();
    let checks = Checks {
        deadline: "30s",
        ..Default::default()
    };
    h.push(
        "web 1.0",
        &h.service_checked("blue", &v1, None, &checks, "replicas: 3\n"),
    );
    let _d = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    let all_routed = |h: &TestHost| {
        let tasks = task_ports(h);
        tasks.len() == 3 && routed_ports(h) == tasks
    };
    until("the proxy routes the 3 tasks", 60, &h, || all_routed(&h)).await;

    let load = Wrk::start(&h.listen, &h.host, 120);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for n in 0..3 {
        let victim = docker(&[
            "ps",
            "--filter",
            &format!("label=teal.service={}", h.svc),
            "--format",
            "{{.Names}}",
        ]);
        let victim = victim.lines().next().expect("a running task").to_string();
        let before = task_ports(&h);
        docker(&["kill", &victim]);
        until(
            &format!("kill {n}: Swarm replaces the task and the proxy routes it"),
            60,
            &h,
            || all_routed(&h) && task_ports(&h) != before,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = load.stop();
    eprintln!("wrk while 3 tasks were killed one after the other: {r:?}");
    assert!(r.requests > 1000, "the load ran: {r:?}");
    assert_eq!(r.failed(), 0, "requests lost to killed tasks: {r:?}");
    all_serve(&h, "1.0 blue\n", 20).await;
}
