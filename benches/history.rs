//! An event log of 1,000,000 lines (`TEAL_BENCH_LINES`), as a host
//! configured with `events: {max_size: 64MiB, keep: 5}` keeps it: six
//! files, oldest first, spanning 30 days, the last hour holding 20
//! deploys; each rotated file with the summary rotation writes next to
//! it. Measured (release build, 5 runs each):
//! 1. `teal history --since 1h` and `teal history` (the whole log);
//! 2. `teal daemon` start with that state dir: spawn -> `GET /healthz`
//!    answering (Docker and a managed HAProxy as in the tests).
//!
//! Run: `cargo bench --bench history` (the daemon part needs Docker and
//! haproxy).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::host::TestHost;
use common::{teal_bin, try_get_via};

/// One step line as the daemon writes it.
fn line(at: SystemTime, commit: &str, step: &str) -> String {
    let time = humantime::format_rfc3339_millis(at);
    format!("{{\"time\":\"{time}\",\"commit\":\"{commit}\",\"service\":\"web\",\"step\":\"{step}\",\"result\":\"ok\",\"duration_ms\":12,\"color\":\"green\",\"image\":\"registry.example.com/shop/web:1.4.2\"}}\n")
}

/// Writes `n` lines over 30 days into `events.jsonl` and five rotated
/// files; returns the bytes written.
fn write_log(state: &Path, n: usize) -> u64 {
    const STEPS: [&str; 5] = ["pull_image", "start_color", "wait_healthy", "switch", "deploy"];
    let now = SystemTime::now();
    let span = Duration::from_secs(30 * 24 * 3600);
    let recent = 20 * STEPS.len();
    let per_file = n.div_ceil(6);
    let mut bytes = 0;
    let mut file = None;
    for i in 0..n {
        if i % per_file == 0 {
            let k = 5 - i / per_file;
            let name = if k == 0 {
                "events.jsonl".to_string()
            } else {
                format!("events.jsonl.{k}")
            };
            file = Some(std::io::BufWriter::new(
                std::fs::File::create(state.join(name)).unwrap(),
            ));
        }
        // The old lines spread evenly up to 2 h ago; the last `recent`
        // ones within the last hour.
        let at = if i + recent >= n {
            now - Duration::from_secs(((n - i) * 30) as u64)
        } else {
            now - span + (span - Duration::from_secs(7200)).mul_f64(i as f64 / n as f64)
        };
        let commit = format!("{:040x}", i / STEPS.len());
        let text = line(at, &commit, STEPS[i % STEPS.len()]);
        bytes += text.len() as u64;
        file.as_mut().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(file);
    // As rotation leaves them: a summary next to each rotated file (the
    // time it takes is what rotation adds, once per file).
    let mut took = vec![];
    for k in 1..=5 {
        let t = Instant::now();
        teal::events::summary::write(&state.join(format!("events.jsonl.{k}"))).unwrap();
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    summary("summary of one rotated file (at rotation)", took);
    bytes
}

fn timed(args: &[&str], dir: &Path) -> (f64, String) {
    let t = Instant::now();
    let out = std::process::Command::new(teal_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (ms, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name}: median {:.0} ms (min {:.0}, max {:.0})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: usize = std::env::var("TEAL_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let h = TestHost::new("bench-history").await;
    std::fs::create_dir_all(&h.state).unwrap();
    let bytes = write_log(&h.state, n);
    println!("event log: {n} lines, {:.0} MiB in 6 files", bytes as f64 / 1048576.0);
    let state = h.state.to_str().unwrap().to_string();
    let mut recent = vec![];
    let mut shown = String::new();
    for _ in 0..5 {
        let (ms, out) = timed(&["history", "--since", "1h", "--state-dir", &state], h.dir.path());
        recent.push(ms);
        shown = out;
    }
    assert_eq!(
        shown.lines().count(),
        21,
        "a header and the last hour's 20 deploys:\n{shown}"
    );
    summary("teal history --since 1h", recent);
    let all: Vec<f64> = (0..3)
        .map(|_| timed(&["history", "--state-dir", &state], h.dir.path()).0)
        .collect();
    summary("teal history (whole log)", all);

    h.managed_config("haproxy");
    let mut starts = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        let mut d = h.start_daemon();
        while !try_get_via(&h.api, "localhost", "/healthz")
            .await
            .is_ok_and(|(c, _)| c == 200)
        {
            assert!(t.elapsed() < Duration::from_secs(60), "{}", h.log_text());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        starts.push(t.elapsed().as_secs_f64() * 1000.0);
        d.terminate();
    }
    summary("teal daemon start -> /healthz, 1M-line log", starts);
}
