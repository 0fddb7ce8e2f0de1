//! Prometheus analysis: the time from the query's value crossing `max` to
//! all traffic back on the old version, through `teal daemon`, real
//! containers, a managed HAProxy and Debian's Prometheus (1 s scrapes of
//! the fixture app's `/metrics`, Docker service discovery).
//!
//! A canary (one step of 20 %, hold 60 s, judged by Prometheus alone:
//! the new color's 5xx ratio over 5 s, `max: 0.05`) of a version that
//! answers 30 % of requests with 500, while 8 concurrent loops send
//! requests. Meanwhile the bench asks Prometheus the same query every
//! 50 ms: the first answer above 0.05 is "crossed"; "back" is the last
//! response the bad version served. Also shown: first 5xx -> crossed, the
//! lag of Prometheus itself (discovery, scrapes, the rate window). 3 runs
//! per evaluation interval (1s, 5s).
//!
//! Run: `cargo bench --bench prometheus` (needs Docker, HAProxy and
//! /usr/bin/prometheus).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::prometheus::PromServer;
use common::{app_image_version, failing_app_image, try_get_via};

const RUNS: usize = 3;
const RATIO: &str = r#"sum(rate(app_errors_total{service="{{service}}",color="{{color}}"}[5s])) / sum(rate(app_requests_total{service="{{service}}",color="{{color}}"}[5s]))"#;

/// (when, version, status) of every response the client got.
type Seen = Arc<Mutex<Vec<(Instant, String, u16)>>>;

fn client(h: &TestHost, seen: Seen, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..8)
        .map(|_| {
            let (listen, host, seen, stop) = (h.listen.clone(), h.host.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((status, body)) = try_get_via(&listen, &host, "/").await {
                        let version = body.split_whitespace().next().unwrap_or("").to_string();
                        seen.lock().unwrap().push((Instant::now(), version, status));
                    }
                }
            })
        })
        .collect()
}

/// (first 5xx -> crossed, crossed -> all traffic back), in ms.
async fn rollback_once(interval: &str) -> (f64, f64) {
    let h = TestHost::new("bench-prom").await;
    let prom = PromServer::start(&h.svc).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 30).await;
    let canary = format!(
        "strategy: canary\ncanary:\n  steps:\n    - {{weight: 20, hold: 60s}}\nanalysis:\n  prometheus:\n    url: {}\n    query: '{RATIO}'\n    max: 0.05\n    interval: {interval}\n    inconclusive: 20\n",
        prom.url
    );
    h.push("1.0", &h.service("blue", &v1, None, &canary));
    h.managed_config("haproxy");
    h.allow_prometheus(&format!("{}/", prom.url));
    let mut daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = client(&h, seen.clone(), stop.clone());
    // The bench's own view of the query, every 50 ms.
    let query = RATIO.replace("{{service}}", &h.svc).replace("{{color}}", "green");
    let crossed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let watch = {
        let (crossed, stop, url) = (crossed.clone(), stop.clone(), prom.url.clone());
        tokio::spawn(async move {
            let client = teal::drivers::prometheus::client();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                if let Ok(v) = teal::drivers::prometheus::query(&client, &url, &query).await {
                    if v > 0.05 {
                        crossed.lock().unwrap().get_or_insert(sent);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    h.push("3.0", &h.service("green", &v1, Some(&bad), &canary));
    h.until_phase("rolled_back", 120).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let _ = watch.await;
    daemon.terminate();
    let crossed = crossed.lock().unwrap().expect("the bench saw the value cross max");
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
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(crossed.saturating_duration_since(first_5xx)),
        ms(last_bad.saturating_duration_since(crossed)),
    )
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    for interval in ["1s", "5s"] {
        let mut back = vec![];
        for _ in 0..RUNS {
            let (lag, t) = rollback_once(interval).await;
            println!(
                "interval {interval}: first 5xx -> Prometheus above max: {lag:.0} ms; above max -> all traffic back: {t:.0} ms"
            );
            back.push(t);
        }
        back.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "interval {interval}: above max -> all traffic back over {RUNS} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            back[0],
            back[RUNS / 2],
            back[RUNS - 1]
        );
    }
}
