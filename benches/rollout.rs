//! Progressive delivery figures, through `teal daemon`, real Docker and a
//! managed proxy of each kind:
//! 1. rollback time: a canary of a version answering 50 % of requests with
//!    500, under a client load of 8 concurrent request loops; the time from
//!    the first 5xx of the bad version to the last response it served
//!    (after which all traffic is back on the old version). 3 runs each.
//! 2. a good canary (20 % then 50 %, 5 s each) and a rolling update (3
//!    replicas, one at a time) under `wrk -t2 -c32`: failed requests of
//!    all requests.
//!
//! 3. with `TEAL_BENCH_SWARM=1`, the same rolling update in
//!    `docker.mode: swarm` (a twin Swarm service, HAProxy only; makes a
//!    one-node swarm on this engine and leaves it after).
//!
//! Run: `cargo bench --bench rollout` (needs Docker, nginx with its Lua
//! module, HAProxy and wrk). `TEAL_BENCH_PROXY=haproxy|nginx` runs one.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::wrk::Wrk;
use common::{app_image_version, failing_app_image, try_get_via};

const RUNS: usize = 3;

/// (when, version, status) of every response the client got.
type Seen = Arc<Mutex<Vec<(Instant, String, u16)>>>;

fn client(h: &TestHost, seen: Seen, stop: Arc<std::sync::atomic::AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|_| {
            let (listen, host, seen, stop) = (h.listen.clone(), h.host.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((status, body)) = try_get_via(&listen, &host, "/").await {
                        let version = body.split_whitespace().next().unwrap_or("").to_string();
                        seen.lock().unwrap().push((Instant::now(), version, status));
                    }
                }
            })
        })
        .collect()
}

async fn rollback_once(kind: &str) -> (f64, usize) {
    let h = TestHost::new("bench-rb").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 50).await;
    let canary = "strategy: canary\ncanary:\n  steps:\n    - {weight: 20, hold: 60s}\nanalysis: {max_errors: 5%, min_requests: 20}\n";
    h.push("1.0", &h.service("blue", &v1, None, canary));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let seen: Seen = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks = client(&h, seen.clone(), stop.clone());
    h.push("3.0", &h.service("green", &v1, Some(&bad), canary));
    h.until_phase("rolled_back", 120).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    daemon.terminate();
    let seen = seen.lock().unwrap();
    let first_5xx = seen
        .iter()
        .find(|(_, _, s)| *s >= 500)
        .map(|(t, _, _)| *t)
        .expect("a 5xx was seen");
    let last_bad = seen
        .iter()
        .filter(|(_, v, _)| v == "3.0")
        .map(|(t, _, _)| *t)
        .max()
        .unwrap();
    ((last_bad - first_5xx).as_secs_f64() * 1000.0, seen.len())
}

async fn good_canary(kind: &str) -> common::wrk::WrkResult {
    let h = TestHost::new("bench-gc").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let canary = "strategy: canary\ncanary:\n  steps:\n    - {weight: 20, hold: 5s}\n    - {weight: 50, hold: 5s}\nanalysis: {max_errors: 1%, min_requests: 20}\n";
    h.push("1.0", &h.service("blue", &v1, None, canary));
    h.managed_config(kind);
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let load = Wrk::start(&h.listen, &h.host, 16);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.push("2.0", &h.service("green", &v1, Some(&v2), canary));
    h.until_phase("done", 60).await;
    let r = load.finish();
    daemon.terminate();
    r
}

async fn rolling_update(kind: &str, swarm: bool) -> common::wrk::WrkResult {
    let h = TestHost::new("bench-roll").await;
    let mut guard = swarm.then(|| common::swarm::SwarmGuard::join(&h.svc));
    if let Some(g) = guard.as_mut() {
        g.services.push(format!("{}-blue-next", h.svc));
    }
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let rolling = "replicas: 3\nstrategy: rolling\nrolling: {max_surge: 1}\n";
    let file = |image: &str| h.service("blue", image, None, rolling);
    h.push("1.0", &file(&v1));
    if swarm {
        common::swarm::swarm_config(&h, None);
    } else {
        h.managed_config(kind);
    }
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let load = Wrk::start(&h.listen, &h.host, 15);
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.push("2.0", &file(&v2));
    h.until_logged("rolling: 3 of 3 replicas run", 60).await;
    let r = load.finish();
    daemon.terminate();
    r
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("TEAL_BENCH_PROXY").ok();
    for kind in ["haproxy", "nginx"] {
        if only.as_deref().is_some_and(|o| o != kind) {
            continue;
        }
        let mut ms = vec![];
        for _ in 0..RUNS {
            let (t, n) = rollback_once(kind).await;
            println!("{kind}: first 5xx of the bad version -> all traffic back: {t:.0} ms ({n} responses seen)");
            ms.push(t);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{kind}: rollback time over {RUNS} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            ms[0],
            ms[RUNS / 2],
            ms[RUNS - 1]
        );
        for (what, r) in [
            ("good canary (20 % -> 50 % -> 100 %)", good_canary(kind).await),
            (
                "rolling update (3 replicas, 1 at a time)",
                rolling_update(kind, false).await,
            ),
        ] {
            println!(
                "{kind}: {what} under wrk -t2 -c32: {} requests, {} failed ({} socket errors, {} non-2xx), {} req/s",
                r.requests,
                r.failed(),
                r.socket_errors,
                r.non_2xx,
                r.rps
            );
        }
    }
    if std::env::var("TEAL_BENCH_SWARM").is_ok_and(|v| v == "1") {
        let r = rolling_update("haproxy", true).await;
        println!(
            "haproxy, docker.mode: swarm: rolling update (3 tasks, 1 at a time) under wrk -t2 -c32: {} requests, {} failed ({} socket errors, {} non-2xx), {} req/s",
            r.requests,
            r.failed(),
            r.socket_errors,
            r.non_2xx,
            r.rps
        );
    }
}
