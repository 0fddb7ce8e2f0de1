//! Fleet figures:
//! 1. a cold host converging 100 services (one replica each, tcp check,
//!    one pass) with `teal apply`, against the same 100 containers
//!    started by `docker run -d` eight at a time, interleaved 3 times,
//!    as the ratio of the medians;
//! 2. one commit rolled out over two waves (two Docker engines, a daemon
//!    each, the default 5 s drain): time from the push to the wave-2 host
//!    serving, the hosts' own runs, and from wave 1's switch to wave 2's
//!    first step (from their event logs).
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
            "docker ps -aq --filter label=raw={network} | xargs -r -n 10 docker rm -f >/dev/null"
        ))
        .status();
    secs
}

/// One interleaved pair: the raw runs, then `teal apply`; (teal, raw) seconds.
async fn cold() -> (f64, f64) {
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
    common::process::kill_proxies(&h.proxy_dir());
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker ps -aq --filter label=teal.owner={} | xargs -r -n 10 docker rm -f >/dev/null",
            h.network
        ))
        .status();
    (teal_secs, raw)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One host of the two-wave fleet: engine, ports, config, daemon.
struct Host {
    engine: common::engine::Engine,
    listen: String,
    api: String,
    dir: std::path::PathBuf,
    daemon: Option<common::process::Daemon>,
}

impl Host {
    fn new(h: &TestHost, name: &str, images: &[&str]) -> Host {
        let engine = common::engine::Engine::start();
        images.iter().for_each(|i| engine.load(i));
        let dir = h.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let host = Host {
            listen: format!("127.0.0.1:{}", common::free_port()),
            api: format!("127.0.0.1:{}", common::free_port()),
            dir,
            engine,
            daemon: None,
        };
        std::fs::write(
            host.dir.join("daemon.yaml"),
            format!(
                "repo: {{url: {}, poll: 300ms}}\nhost: {{name: {name}}}\ndocker: {{host: '{}', network: {}}}\nproxy: {{kind: haproxy, listen: '{}', managed: true}}\nstate_dir: {}\nlisten: '{}'\n",
                h.bare.display(),
                host.engine.host(),
                h.network,
                host.listen,
                host.dir.join("state").display(),
                host.api
            ),
        )
        .unwrap();
        host
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("daemon.log")).unwrap();
        self.daemon = Some(common::process::Daemon(
            Command::new(common::teal_bin())
                .args(["daemon", "--config", self.dir.join("daemon.yaml").to_str().unwrap()])
                .stderr(log)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        ));
    }

    async fn serves(&self, host: &str, want: &str) {
        while !common::try_get_via(&self.listen, host, "/")
            .await
            .is_ok_and(|(_, b)| b == want)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The duration of this host's deploy of `commit` (its event log).
    fn deploy_ms(&self, commit: &str) -> u64 {
        let text = std::fs::read_to_string(self.dir.join("state/events.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["step"] == "deploy" && e["commit"] == commit && e["result"] == "ok")
            .filter_map(|e| e["duration_ms"].as_u64())
            .sum()
    }

    /// When this host's steps of `commit` ended: (step, end, duration).
    fn steps(&self, commit: &str) -> Vec<(String, std::time::SystemTime, u64)> {
        let text = std::fs::read_to_string(self.dir.join("state/events.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["commit"] == commit)
            .filter_map(|e| {
                let end = humantime::parse_rfc3339_weak(e["time"].as_str()?).ok()?;
                Some((e["step"].as_str()?.to_string(), end, e["duration_ms"].as_u64()?))
            })
            .collect()
    }
}

async fn waves() {
    let h = TestHost::new("bench-waves").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let mut a = Host::new(&h, "h1", &[&v1, &v2]);
    let mut b = Host::new(&h, "h2", &[&v1, &v2]);
    // Each host reads only the status URLs its host config lists.
    for host in [&a, &b] {
        let path = host.dir.join("daemon.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let peers = format!("fleet: {{peers: ['http://{}', 'http://{}']}}\n", a.api, b.api);
        std::fs::write(&path, text + &peers).unwrap();
    }
    let fleet = format!(
        "hosts:\n  h1: {{labels: {{wave: \"1\"}}, status: 'http://{}'}}\n  h2: {{labels: {{wave: \"2\"}}, status: 'http://{}'}}\n",
        a.api, b.api
    );
    let svc = |active: &str, green: &str| {
        format!("active: {active}\nblue: {{image: {v1}}}\n{green}port: 8080\nroute: {{host: w.test}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\nrollout: {{by: wave}}\n")
    };
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    std::fs::write(h.work.join("teal.yaml"), fleet).unwrap();
    std::fs::write(h.work.join("services/w.yaml"), svc("blue", "")).unwrap();
    for args in [
        &["add", "-A"][..],
        &["commit", "-qm", "1.0"],
        &["push", "-q", "origin", "HEAD:main"],
    ] {
        common::git_in(&h.work, args);
    }
    a.start();
    b.start();
    a.serves("w.test", "1.0 blue\n").await;
    b.serves("w.test", "1.0 blue\n").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::fs::write(
        h.work.join("services/w.yaml"),
        svc("green", &format!("green: {{image: {v2}}}\n")),
    )
    .unwrap();
    common::git_in(&h.work, &["commit", "-qam", "2.0"]);
    let commit = common::git_in(&h.work, &["rev-parse", "HEAD"]);
    let t = Instant::now();
    common::git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    b.serves("w.test", "2.0 green\n").await;
    let total = t.elapsed().as_millis() as u64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Wave 1's drain (the default 5 s) ends its run; wave 2 may start
    // once its switch is done.
    while a.deploy_ms(&commit) == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (da, db) = (a.deploy_ms(&commit), b.deploy_ms(&commit));
    let switched = a.steps(&commit).into_iter().find(|s| s.0 == "switch").map(|s| s.1);
    let started = b
        .steps(&commit)
        .first()
        .map(|(_, end, ms)| *end - Duration::from_millis(*ms));
    let gap = match (switched, started) {
        (Some(sw), Some(st)) => format!(
            "{} ms",
            st.duration_since(sw).map_or(0, |d| d.as_millis() as i64)
                - sw.duration_since(st).map_or(0, |d| d.as_millis() as i64)
        ),
        _ => "?".into(),
    };
    println!(
        "2 waves (drain 5s): push -> wave 2 serving {total} ms; the hosts' own runs {da} + {db} ms (with their drains); wave 1 switched -> wave 2's first step {gap}"
    );
    for host in [&mut a, &mut b] {
        host.daemon.take();
        common::process::kill_proxies(&host.dir.join("state/proxy"));
    }
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("TEAL_BENCH_ONLY").ok();
    if only.as_deref() != Some("waves") {
        let (mut teal_s, mut raw_s) = (vec![], vec![]);
        for _ in 0..3 {
            let (t, r) = cold().await;
            teal_s.push(t);
            raw_s.push(r);
        }
        let (t, r) = (median(teal_s), median(raw_s));
        println!("cold host, {N} services, 3 interleaved runs: medians teal apply {t:.1} s, docker run -d {r:.1} s: ratio of medians {:.2}", t / r);
    }
    if only.as_deref() != Some("cold") {
        for _ in 0..3 {
            waves().await;
        }
    }
}
