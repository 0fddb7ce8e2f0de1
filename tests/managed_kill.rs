//! The proxy's master killed at points spread over deploys, as the soak
//! kills it (the master only: its workers live on until teal ends them).
//! The soak's one unexplained 503 first came in the step after such a
//! kill (its cause was a task Docker lost, `tests/docker.rs`); this pins
//! what the soak relies on. Each kill is followed by: the service
//! answering only the commit's version on fresh connections
//! (`until_only_serves`: a second process on the port, or a stale
//! server, would answer some of them), and one proxy process group.
//! `TEAL_TEST_ROUNDS` sets the number of deploys.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::process::processes_of;
use common::{app_image_version, proxy_or_fail};

async fn the_master_killed_during_deploys(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("mkill").await;
    let versions = [
        app_image_version(&h.docker, "1.0", true).await,
        app_image_version(&h.docker, "2.0", true).await,
        app_image_version(&h.docker, "3.0", true).await,
    ];
    let mut images = [versions[0].clone(), versions[1].clone()];
    h.push("web 1.0", &h.service("blue", &images[0], Some(&images[1]), ""));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    let rounds: usize = std::env::var("TEAL_TEST_ROUNDS").map_or(6, |r| r.parse().unwrap());
    for round in 0..rounds {
        // Each round puts the next version on the idle color and moves
        // traffic to it: a container start, its check, a switch.
        let (live, color) = if round % 2 == 0 { (1, "green") } else { (0, "blue") };
        // Never the version the color runs: a new container each round.
        let version = (5 - round % 3) % 3;
        images[live] = versions[version].clone();
        let want = format!("{}.0 {color}\n", version + 1);
        let pid = h.proxy_pid().expect("a managed proxy pid recorded");
        h.push(
            &format!("round {round}"),
            &h.service(color, &images[0], Some(&images[1]), ""),
        );
        // Spread over the deploy: before, during and after the switch.
        tokio::time::sleep(Duration::from_millis(((round * 230) % 1400) as u64)).await;
        teal::drivers::managed::process::signal(pid as i32, libc::SIGKILL);

        let start = Instant::now();
        while h.proxy_pid() == Some(pid) {
            assert!(start.elapsed() < Duration::from_secs(30), "round {round}: no new proxy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        h.until_only_serves(&want, 60).await;
        let mut groups: Vec<Option<u32>> = processes_of(&h.proxy_dir())
            .iter()
            .map(|(p, _)| teal::drivers::managed::process::group(*p))
            .collect();
        groups.sort();
        groups.dedup();
        assert_eq!(
            groups.len(),
            1,
            "{kind}, round {round}: {:?}",
            processes_of(&h.proxy_dir())
        );
    }
    daemon.terminate();
    let left = processes_of(&h.proxy_dir());
    assert!(left.is_empty(), "{kind}: left running {left:?}\n{}", h.log_text());
}

#[tokio::test]
async fn haproxy_master_killed_during_deploys_comes_back_serving_each_commit() {
    the_master_killed_during_deploys("haproxy").await;
}

#[tokio::test]
async fn nginx_master_killed_during_deploys_comes_back_serving_each_commit() {
    the_master_killed_during_deploys("nginx").await;
}
