//! Daemon figures (issue: the daemon):
//! 1. push -> traffic on the new color, minus the app's own start and
//!    health time, with a local watch, with the signed webhook and with a
//!    1 s poll;
//! 2. revert push -> traffic back on the warm color, 1 s poll;
//! 3. an idle daemon with 100 services and a 5 s poll: RSS and CPU over a minute.
//!
//! Run: `cargo build --release && cargo bench --bench daemon` (needs Docker and HAProxy).
//! `TEAL_BENCH_ONLY=latency|idle` runs one part.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::Mac;
use teal::drivers::docker::DockerDriver;
use teal::drivers::managed::{self, ManagedSpec};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn teal_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let bin = target.join("release/teal");
    assert!(bin.exists(), "build the binary first: cargo build --release");
    bin
}

fn get(listen: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(listen) else {
        return String::new();
    };
    let _ = write!(s, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

struct Setup {
    dir: tempfile::TempDir,
    work: PathBuf,
    bare: PathBuf,
    config: PathBuf,
    listen: String,
    api: String,
    _proxy: managed::Managed,
    network: String,
}

async fn setup(docker: &DockerDriver, poll: &str, watch: bool, services: &[(String, String)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("deploy.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let work = dir.path().join("work");
    git(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
    std::fs::create_dir_all(work.join("services")).unwrap();
    for (name, text) in services {
        std::fs::write(work.join(format!("services/{name}.yaml")), text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "init"]);
    git(&work, &["push", "-q", "origin", "HEAD:main"]);
    let listen = format!("127.0.0.1:{}", free_port());
    let (m, _) = managed::start(&ManagedSpec::haproxy(&dir.path().join("proxy"), &listen))
        .await
        .unwrap();
    let d = dir.path().join("proxy").display().to_string();
    let api = format!("127.0.0.1:{}", free_port());
    std::fs::write(dir.path().join("secret"), "bench-secret\n").unwrap();
    let config = dir.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}, poll: {poll}, watch: {watch}, webhook_secret_file: {}/secret}}\ndocker: {{network: {}}}\nproxy:\n  kind: haproxy\n  listen: {listen}\n  haproxy: {{config: {d}/teal.cfg, socket: {d}/admin.sock, reload: [kill, -USR2, '{}']}}\nstate_dir: {}/state\nlisten: {api}\n",
            bare.display(),
            dir.path().display(),
            docker.network(),
            m.pid(),
            dir.path().display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        work,
        bare,
        config,
        listen,
        api,
        _proxy: m,
        network: docker.network().to_string(),
    }
}

fn start(s: &Setup) -> Proc {
    let log = std::fs::File::create(s.dir.path().join("daemon.log")).unwrap();
    Proc(
        Command::new(teal_bin())
            .args(["daemon", "--config", s.config.to_str().unwrap()])
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn wait_serves(s: &Setup, host: &str, want: &str, limit: Duration) -> Instant {
    let t = Instant::now();
    loop {
        if get(&s.listen, host) == want {
            return Instant::now();
        }
        assert!(
            t.elapsed() < limit,
            "never served {want:?}: {}",
            std::fs::read_to_string(s.dir.path().join("daemon.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Time the app itself took in the last deploy: container start plus the
/// health gate, from the event log.
fn app_time(s: &Setup) -> Duration {
    let events = teal::events::read(&s.dir.path().join("state/events.jsonl")).unwrap();
    let last = events.last().unwrap().commit.clone();
    let ms: u64 = events
        .iter()
        .filter(|e| e.commit == last && (e.step == "start_color" || e.step == "wait_healthy"))
        .map(|e| e.duration_ms)
        .sum();
    Duration::from_millis(ms)
}

fn service(host: &str, active: &str, blue: &str, green: &str) -> String {
    format!("active: {active}\nblue: {{image: {blue}}}\ngreen: {{image: {green}}}\nport: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 50ms\n  successes: 1\nswitch: {{drain: 0s}}\n")
}

fn webhook(api: &str) {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"bench-secret").unwrap();
    mac.update(body);
    let sig = hex::encode(mac.finalize().into_bytes());
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(api).unwrap();
    let _ = write!(s, "POST /hooks/git HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256={sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(body).unwrap();
    let mut out = String::new();
    use std::io::Read;
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name}: median {:.0} ms, min {:.0} ms, max {:.0} ms ({} runs)",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    );
}

async fn latency(docker: &DockerDriver, images: &[String; 2]) {
    const RUNS: usize = 5;
    for (mode, poll, watch) in [
        ("local watch", "60s", true),
        ("webhook", "60s", false),
        ("1s poll", "1s", false),
    ] {
        let host = "lat.test";
        let name = format!("lat{}", std::process::id());
        let s = setup(
            docker,
            poll,
            watch,
            &[(name.clone(), service(host, "blue", &images[0], &images[0]))],
        )
        .await;
        let _d = start(&s);
        wait_serves(&s, host, "1.0 blue\n", Duration::from_secs(60));
        let (mut overhead, mut revert) = (vec![], vec![]);
        for run in 0..RUNS {
            // Bump: green gets 2.0 (a fresh container, so start + checks are the app's time).
            let green = if run % 2 == 0 { &images[1] } else { &images[0] };
            let want = if run % 2 == 0 { "2.0 green\n" } else { "1.0 green\n" };
            std::fs::write(
                s.work.join(format!("services/{name}.yaml")),
                service(host, "green", &images[0], green),
            )
            .unwrap();
            git(&s.work, &["commit", "-qam", "bump"]);
            git(&s.work, &["push", "-q", "origin", "HEAD:main"]);
            let t0 = Instant::now();
            if mode == "webhook" {
                webhook(&s.api);
            }
            let t1 = wait_serves(&s, host, want, Duration::from_secs(60));
            overhead.push(ms(t1 - t0) - ms(app_time(&s)));
            if mode == "1s poll" {
                // Revert: back onto the warm blue.
                git(&s.work, &["revert", "--no-edit", "HEAD"]);
                git(&s.work, &["push", "-q", "origin", "HEAD:main"]);
                let t0 = Instant::now();
                let t1 = wait_serves(&s, host, "1.0 blue\n", Duration::from_secs(60));
                revert.push(ms(t1 - t0));
                git(&s.work, &["revert", "--no-edit", "HEAD"]);
                git(&s.work, &["push", "-q", "origin", "HEAD:main"]);
                wait_serves(&s, host, want, Duration::from_secs(60));
            }
            // Back to blue for the next run.
            std::fs::write(
                s.work.join(format!("services/{name}.yaml")),
                service(host, "blue", &images[0], green),
            )
            .unwrap();
            git(&s.work, &["commit", "-qam", "back"]);
            git(&s.work, &["push", "-q", "origin", "HEAD:main"]);
            if mode == "webhook" {
                webhook(&s.api);
            }
            wait_serves(&s, host, "1.0 blue\n", Duration::from_secs(60));
        }
        summary(
            &format!("push -> traffic, minus app start and checks, {mode}"),
            overhead,
        );
        if !revert.is_empty() {
            summary("revert push -> traffic back on the warm color, 1s poll", revert);
        }
        drop(_d);
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker ps -aq --filter label=teal.service={name} | xargs -r -n 10 docker rm -f >/dev/null 2>&1"
            ))
            .status();
        let _ = s.bare.exists();
    }
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    (ticks, rss)
}

async fn idle(docker: &DockerDriver, image: &str) {
    let services: Vec<(String, String)> = (0..100)
        .map(|i| {
            let text = format!("active: blue\nblue: {{image: {image}}}\nport: 8080\nroute: {{host: idle{i}.test}}\nhealth:\n  tcp: {{}}\n  successes: 1\n  deadline: 5m\n");
            (format!("idle{i}-{}", std::process::id()), text)
        })
        .collect();
    let s = setup(docker, "5s", true, &services).await;
    let d = start(&s);
    let t = Instant::now();
    for i in 0..100 {
        wait_serves(&s, &format!("idle{i}.test"), "1.0 blue\n", Duration::from_secs(600));
    }
    println!(
        "idle: 100 services converged from scratch in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(10));
    let pid = d.0.id();
    let (t0, _) = proc_stat(pid);
    let start = Instant::now();
    let mut max_rss = 0;
    while start.elapsed() < Duration::from_secs(60) {
        max_rss = max_rss.max(proc_stat(pid).1);
        std::thread::sleep(Duration::from_secs(1));
    }
    let (t1, rss) = proc_stat(pid);
    let hz = 100.0; // USER_HZ on Linux
    let cpu = (t1 - t0) as f64 / hz / start.elapsed().as_secs_f64() * 100.0;
    println!(
        "idle daemon, 100 services, 5s poll, over 60 s: RSS {:.1} MiB (max {:.1} MiB), CPU {cpu:.2} % of one core",
        rss as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    drop(d);
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker ps -aq --filter label=teal.owner={} | xargs -r -n 10 docker rm -f >/dev/null",
            s.network
        ))
        .status();
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let network = format!("teal-bench-{}", std::process::id());
    let docker = DockerDriver::connect(None, &network).await.expect("Docker");
    docker.ensure_network().await.unwrap();
    let mut images = [String::new(), String::new()];
    for (i, v) in ["1.0", "2.0"].iter().enumerate() {
        let tag = format!("teal-bench-app:{v}");
        docker
            .build_app_image(&tag, teal::app::DEMO_APP, &[("VERSION", v)])
            .await
            .unwrap();
        images[i] = tag;
    }
    let only = std::env::var("TEAL_BENCH_ONLY").ok();
    if only.as_deref() != Some("idle") {
        latency(&docker, &images).await;
    }
    if only.as_deref() != Some("latency") {
        idle(&docker, &images[0]).await;
    }
    let _ = docker.remove_network().await;
}
