//! An ACME order end to end: the time from pushing a commit that gives a
//! running service `tls: acme` to the first HTTPS answer that presents
//! the ordered certificate. `teal daemon` with a managed HAProxy (1 s
//! poll, so the commit is seen within a second), pebble as the CA,
//! validating HTTP-01 through the proxy. Each run is a fresh state dir
//! (a new account and order); pebble answers at once
//! (`PEBBLE_VA_NOSLEEP`), so the figure is teal's and the proxy's part,
//! not a real CA's queue.
//!
//! Run: `cargo build && cargo bench --profile dev --bench acme` (needs Docker,
//! haproxy, pebble, openssl, curl). `TEAL_BENCH_RUNS=N` changes the count.

#[path = "../tests/common/acme.rs"]
#[allow(dead_code)]
mod acme;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use teal::drivers::docker::DockerDriver;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

fn teal_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    target.join("debug/teal")
}

fn service(image: &str, tls: &str) -> String {
    format!("active: blue\nblue: {{image: {image}}}\nport: 8080\nroute: {{host: shop.test{tls}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 50ms\n  successes: 1\n")
}

fn push(work: &Path, text: &str, msg: &str) {
    std::fs::create_dir_all(work.join("services")).unwrap();
    std::fs::write(work.join("services/shop.yaml"), text).unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-qm", msg]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
}

/// Whether an HTTPS request to shop.test succeeds, verified under `root`.
fn https_ok(port: u16, root: &Path) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("shop.test:{port}:127.0.0.1"))
        .arg(format!("https://shop.test:{port}/"))
        .status()
        .expect("this needs curl: apt-get install -y curl")
        .success()
}

fn http_ok(port: u16) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2", "-H", "Host: shop.test"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .status()
        .unwrap()
        .success()
}

fn until(what: &str, limit: Duration, log: &Path, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(
            t.elapsed() < limit,
            "{what} not within {limit:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One run: a service on plain HTTP, then the commit that asks for TLS.
async fn run(network: &str, image: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("deploy.git");
    git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
    let work = dir.path().join("work");
    push(&work, &service(image, ""), "shop on http");
    let (http, https) = (free_port(), free_port());
    let pebble = acme::start_pebble(http);
    let config = dir.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}, poll: 1s}}\ndocker: {{network: {network}}}\nproxy:\n  kind: haproxy\n  listen: 127.0.0.1:{http}\n  https_listen: 127.0.0.1:{https}\n  managed: true\nacme:\n  directory: {}\n  ca_file: {}\nstate_dir: {}/state\nlisten: 127.0.0.1:{}\n",
            bare.display(),
            pebble.directory(),
            pebble.ca_file().display(),
            dir.path().display(),
            free_port()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = Proc(
        Command::new(teal_bin())
            .args(["daemon", "--config", config.to_str().unwrap()])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    until("plain HTTP", Duration::from_secs(60), &log, || http_ok(http));
    let root = dir.path().join("root.pem");
    std::fs::write(&root, pebble.root_pem().await).unwrap();
    let t = Instant::now();
    push(&work, &service(image, ", tls: acme"), "shop over https");
    until("HTTPS", Duration::from_secs(120), &log, || https_ok(https, &root));
    let took = t.elapsed().as_secs_f64() * 1000.0;
    // A clean stop: the managed proxy goes with it.
    teal::drivers::managed::process::signal(daemon.0.id() as i32, libc::SIGTERM);
    let _ = daemon.0.wait();
    took
}

#[tokio::main]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runs: usize = std::env::var("TEAL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let network = format!("teal-bench-acme-{}", std::process::id());
    let docker = DockerDriver::connect(None, &network).await.expect("Docker");
    docker.ensure_network().await.unwrap();
    let image = "teal-bench-app:1.0";
    docker
        .build_app_image(image, teal::app::DEMO_APP, &[("VERSION", "1.0")])
        .await
        .unwrap();
    let mut ms = vec![];
    for _ in 0..runs {
        ms.push(run(&network, image).await);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "ACME (pebble), commit of tls: acme -> first verified HTTPS answer: median {:.0} ms, min {:.0} ms, max {:.0} ms ({runs} runs, 1 s poll)",
        ms[ms.len() / 2],
        ms[0],
        ms[ms.len() - 1]
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker ps -aq --filter label=teal.owner={network} | xargs -r -n 10 docker rm -f >/dev/null 2>&1"
        ))
        .status();
    let _ = docker.remove_network().await;
}
