//! Scale on one host: N services (default 500; `TEAL_SCALE_N`) of the
//! demo app, one replica each with a tcp check, behind a managed proxy
//! (`TEAL_SCALE_PROXY=haproxy|nginx`, default haproxy), converged from
//! cold by `teal daemon` (release build) with a 5 s poll, then measured:
//! 1. the cold converge, push -> every service serving;
//! 2. idle: the pass time (teal's own `teal_reconcile_last_duration_seconds`),
//!    RSS and CPU over 60 s (`TEAL_SCALE_IDLE_SECS`);
//! 3. the proxy's config on disk (bytes), and one service's switch with N
//!    routes present (its `switch` step from the event log, 5 times);
//! 4. `GET /status` and the dashboard `GET /`: median and max of 20.
//!
//! Run: `cargo bench --bench scale` (needs Docker and the proxy; a few
//! minutes and ~N small containers, removed at the end).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::process::proc_stat;
use common::{app_image_version, git_in, try_get_via};

fn service(i: usize, active: &str, blue: &str, green: Option<&str>) -> String {
    let green = green.map(|g| format!("green: {{image: {g}}}\n")).unwrap_or_default();
    format!("active: {active}\nblue: {{image: {blue}}}\n{green}port: 8080\nroute: {{host: s{i}.test}}\nhealth:\n  tcp: {{}}\n  interval: 200ms\n  successes: 1\n  deadline: 10m\nswitch: {{drain: 0s}}\n")
}

/// Services the daemon reports serving `commit`.
async fn serving(h: &TestHost, commit: &str) -> usize {
    let Ok((200, body)) = try_get_via(&h.api, "localhost", "/status").await else {
        return 0;
    };
    let s: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    s["services"]
        .as_object()
        .map_or(0, |m| m.values().filter(|v| v["serving"] == commit).count())
}

/// Median and max of 20 timed GETs of `path` on the status API, in ms.
async fn timed_gets(api: &str, path: &str) -> (f64, f64, usize) {
    let mut v = vec![];
    let mut size = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let (code, body) = try_get_via(api, "localhost", path).await.unwrap();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(code, 200, "{path}");
        size = body.len();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[v.len() - 1], size)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Removes the bench's containers, also when it panics.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker ps -aq --filter label=teal.owner={} | xargs -r -n 10 docker rm -f >/dev/null 2>&1",
                self.0
            ))
            .status();
    }
}

fn commit_all(h: &TestHost, msg: &str) -> String {
    git_in(&h.work, &["add", "-A"]);
    git_in(&h.work, &["commit", "-qm", msg]);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    git_in(&h.work, &["rev-parse", "HEAD"]).trim().to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TEAL_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let kind = std::env::var("TEAL_SCALE_PROXY").unwrap_or_else(|_| "haproxy".into());
    let h = TestHost::new("scale").await;
    let _cleanup = Cleanup(h.network.clone());
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.managed_config(&kind);
    let config = std::fs::read_to_string(&h.config)
        .unwrap()
        .replace("poll: 500ms", "poll: 5s");
    std::fs::write(&h.config, config).unwrap();
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    for i in 0..n {
        std::fs::write(
            h.work.join(format!("services/s{i}.yaml")),
            service(i, "blue", &v1, None),
        )
        .unwrap();
    }
    let c1 = commit_all(&h, "cold");
    let t = Instant::now();
    let daemon = h.start_daemon();
    while serving(&h, &c1).await < n {
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "not converged:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("{kind}, {n} services: cold converge {:.1} s", t.elapsed().as_secs_f64());

    // Idle: let the last pass settle, then a minute of 5 s polls
    // (`TEAL_SCALE_IDLE_SECS` sets it: time to attach a profiler).
    let idle = std::env::var("TEAL_SCALE_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let pid = daemon.pid();
    println!("{kind}, {n} services: idle for {idle} s from now, daemon pid {pid}");
    let (t0, _) = proc_stat(pid);
    let start = Instant::now();
    let (mut max_kib, mut passes) = (0, vec![]);
    while start.elapsed() < Duration::from_secs(idle) {
        max_kib = max_kib.max(proc_stat(pid).1);
        if let Ok((_, m)) = try_get_via(&h.api, "localhost", "/metrics").await {
            if let Some(v) = m
                .lines()
                .find_map(|l| l.strip_prefix("teal_reconcile_last_duration_seconds "))
                .and_then(|v| v.trim().parse::<f64>().ok())
            {
                passes.push(v * 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let (t1, kib) = proc_stat(pid);
    let cpu = (t1 - t0) as f64 / 100.0 / start.elapsed().as_secs_f64() * 100.0;
    passes.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{kind}, {n} services idle, 5 s poll, over {idle} s: pass {:.1} ms median ({:.1} max), RSS {:.1} MiB (max {:.1}), CPU {cpu:.2} % of one core",
        passes[passes.len() / 2],
        passes[passes.len() - 1],
        kib as f64 / 1024.0,
        max_kib as f64 / 1024.0
    );

    // Where an idle pass spends its time, when the daemon logs it
    // (`TEAL_TEST_LOG=info,teal::daemon=debug,teal::observe=debug`).
    let log = h.log_text();
    let timings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("fetch_ms=") || l.contains("docker_ms="))
        .collect();
    for l in timings.iter().rev().take(10).rev() {
        println!("  {l}");
    }

    // The proxy's own log (a line per reload and server change) is not
    // config: counted apart, it varies with the reloads of the run.
    let files = walk(&h.proxy_dir());
    let is_log = |p: &std::path::Path| p.extension().is_some_and(|e| e == "log");
    let kib = |log: bool| {
        files
            .iter()
            .filter(|(p, _)| is_log(p) == log)
            .map(|(_, len)| len)
            .sum::<u64>() as f64
            / 1024.0
    };
    let largest = files
        .iter()
        .filter(|(p, _)| !is_log(p))
        .max_by_key(|(_, len)| *len)
        .map(|(p, len)| {
            format!(
                "{} {:.1} KiB",
                p.file_name().unwrap_or_default().to_string_lossy(),
                *len as f64 / 1024.0
            )
        })
        .unwrap_or_default();
    println!(
        "{kind}, {n} services: proxy config on disk {:.1} KiB (largest {largest}), the proxy's log {:.1} KiB",
        kib(false),
        kib(true)
    );

    for path in ["/status", "/"] {
        let (med, max, size) = timed_gets(&h.api, path).await;
        println!("{kind}, {n} services: GET {path} {med:.1} ms median, {max:.1} ms max ({size} bytes)");
    }

    // One service's switch with every other route present, back and
    // forth 5 times (median and max of the `switch` steps).
    let mut switches = vec![];
    let t = Instant::now();
    for round in 0..5 {
        let active = if round % 2 == 0 { "green" } else { "blue" };
        std::fs::write(h.work.join("services/s0.yaml"), service(0, active, &v1, Some(&v2))).unwrap();
        let c = commit_all(&h, &format!("s0 to {active}"));
        let start = Instant::now();
        let switch = loop {
            let step = h
                .events()
                .into_iter()
                .find(|e| e.commit == c && e.service == "s0" && e.step == "switch" && e.result == "ok");
            if let Some(e) = step {
                break e.duration_ms;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "s0 did not switch to {active}:\n{}",
                h.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        switches.push(switch as f64);
    }
    // Where a switch spends its time, when the daemon logs it
    // (`TEAL_TEST_LOG=info,teal::engine=debug,teal::drivers::haproxy=debug`).
    let log = h.log_text();
    let timings: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains("service=\"s0\"") && l.contains("list_ms=")) || l.contains("prepare_ms="))
        .collect();
    for l in &timings[timings.len().saturating_sub(10)..] {
        println!("  {l}");
    }
    // When traffic had moved: the step's replicas and proxy call, less
    // the record after the runtime call (splice and file write).
    let last5 = |what: &str, keys: &[&str]| -> Vec<f64> {
        let v: Vec<f64> = log
            .lines()
            .filter(|l| l.contains(what))
            .filter_map(|l| keys.iter().map(|k| field(l, k)).sum::<Option<f64>>())
            .collect();
        v[v.len().saturating_sub(5)..].to_vec()
    };
    let steps = last5("service=\"s0\"", &["list_ms=", "proxy_ms="]);
    let records = last5("switched through the runtime API", &["record_ms="]);
    if steps.len() == 5 && records.len() == 5 {
        let moved: Vec<f64> = steps.iter().zip(&records).map(|(s, r)| s - r).collect();
        println!(
            "{kind}, {n} services: traffic moved {:.2} ms into the switch (median of 5, {moved:.2?}), then its record {:.2} ms ({records:.2?})",
            median(moved.clone()),
            median(records.clone())
        );
    }
    let most = switches.iter().cloned().fold(0.0, f64::max);
    println!(
        "{kind}, {n} services: one service's switch step {:.0} ms median, {most:.0} ms max of 5 ({switches:?}; {:.1} s for the 5 commits, with the 5 s poll)",
        median(switches.clone()),
        t.elapsed().as_secs_f64()
    );
    drop(daemon);
}

/// The number after `key` in a log line (`record_ms=1.25`).
fn field(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| c != '.' && !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Files under `dir` (recursively) and their sizes; sockets and pid files
/// are counted too (they are small).
fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        match e.metadata() {
            Ok(m) if m.is_dir() => out.extend(walk(&p)),
            Ok(m) => out.push((p, m.len())),
            Err(_) => {}
        }
    }
    out
}
