//! Images from a registry, measured:
//! 1. pull-and-deploy of a 50 MB image from a local registry (Debian's
//!    docker-registry with htpasswd, on 127.0.0.1): `teal apply` (pull,
//!    start, health check, switch on a managed HAProxy) against `docker
//!    pull` + `docker run` of the same image until it answers /healthz.
//!    Each run starts with the image's layers gone from the engine.
//! 2. a cleanup pass over 200 deployed images: `teal gc`, which removes
//!    197 (keep 3).
//!
//! Run: `cargo build && cargo bench --profile dev --bench registry` (needs
//! Docker, haproxy, docker-registry, htpasswd, curl).
//! `TEAL_BENCH_RUNS=N` changes the count of pull runs (default 5).

#[path = "../tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;
#[path = "../tests/common/token.rs"]
#[allow(dead_code)]
mod token;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use registry::run;
use teal::drivers::docker::DockerDriver;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn docker(args: &[&str]) -> String {
    run(Command::new("docker").args(args))
}

fn quiet(args: &[&str]) {
    let _ = Command::new("docker")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Removes every local image of `image`'s repository, by ID (a pull by
/// digest leaves no tag to remove), so the next pull downloads it all.
fn purge(image: &str) {
    let repo = teal::pins::repo_of(image);
    let ids = docker(&["images", "-q", "--no-trunc", repo]);
    for id in ids.lines().collect::<std::collections::BTreeSet<_>>() {
        quiet(&["rmi", "-f", id]);
    }
    assert!(
        docker(&["images", "-q", repo]).trim().is_empty(),
        "{repo} is still here"
    );
}

fn git(dir: &Path, args: &[&str]) {
    run(Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@example.com"])
        .args(args)
        .current_dir(dir));
}

fn teal_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or(Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    target.join("debug/teal")
}

fn http_ok(url: &str, host: Option<&str>) -> bool {
    let mut c = Command::new("curl");
    c.args(["-sf", "-o", "/dev/null", "--max-time", "1"]);
    if let Some(h) = host {
        c.args(["-H", &format!("Host: {h}")]);
    }
    c.arg(url).status().expect("this needs curl").success()
}

/// The duration of the step whose line starts with `step` in apply's output.
fn step_ms(out: &str, step: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.split_once(": ").is_some_and(|(_, rest)| rest.starts_with(step)) && l.contains(" ... ok ("))
        .unwrap_or_else(|| panic!("no {step} step in {out}"));
    let took = line.rsplit_once(" ... ok (").unwrap().1.trim_end_matches(')');
    teal::spec::duration::parse(took)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_else(|_| panic!("{took}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A config repo, its bare remote and a host config on a managed HAProxy.
struct Host {
    dir: tempfile::TempDir,
    config: PathBuf,
    listen: u16,
}

impl Host {
    fn new(network: &str, extra: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("deploy.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        git(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
        let listen = free_port();
        let config = dir.path().join("daemon.yaml");
        std::fs::write(
            &config,
            format!(
                "repo: {{url: {}}}\ndocker: {{network: {network}}}\nproxy: {{kind: haproxy, listen: '127.0.0.1:{listen}', managed: true}}\nstate_dir: {}/state\nlisten: 127.0.0.1:{}\n{extra}",
                bare.display(),
                dir.path().display(),
                free_port()
            ),
        )
        .unwrap();
        Host { dir, config, listen }
    }

    fn push(&self, service: &str, image: &str) {
        let work = self.dir.path().join("work");
        std::fs::create_dir_all(work.join("services")).unwrap();
        std::fs::write(
            work.join(format!("services/{service}.yaml")),
            format!("active: blue\nblue: {{image: '{image}'}}\nport: 8080\nroute: {{host: {service}.test}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 50ms\n  successes: 1\n"),
        )
        .unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-qm", "deploy"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
    }

    fn teal(&self, args: &[&str]) -> String {
        let out = Command::new(teal_bin())
            .args(args)
            .args(["--config", self.config.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "teal {args:?}: {text}");
        text
    }
}

impl Drop for Host {
    /// The managed HAProxy `teal apply` left serving goes with the bench.
    fn drop(&mut self) {
        let record = self.dir.path().join("state/proxy/managed.json");
        let pid = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["pid"].as_i64());
        if let Some(pid) = pid {
            // SAFETY: kill(2) with plain integers: the proxy's process group.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
    }
}

/// A FROM scratch image of the demo app and `mb` MB of random bytes.
fn big_image(tag: &str, mb: usize) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("app"), teal::app::DEMO_APP).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(ctx.path().join("app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut blob = vec![0u8; mb * 1_000_000];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    for b in blob.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(ctx.path().join("blob"), blob).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY app /app\nCOPY blob /blob\nENV VERSION=big\nENTRYPOINT [\"/app\"]\n",
    )
    .unwrap();
    run(Command::new("docker").args(["build", "-q", "-t", tag]).arg(ctx.path()));
}

async fn pull_and_deploy(network: &str, runs: usize) {
    let reg = registry::Registry::start();
    let local = unique("teal-bench-big");
    big_image(&local, 50);
    let image = reg.push(&local, &format!("{}:1", unique("bench/big")));
    quiet(&["rmi", &local]);
    let secrets = tempfile::tempdir().unwrap();
    let pw = reg.password_file(secrets.path(), &reg.password);
    let host = Host::new(
        network,
        &format!(
            "registries: [{{host: '{}', username: {}, password_file: {}}}]\n",
            reg.addr,
            reg.user,
            pw.display()
        ),
    );
    host.push("big", &image);
    let (mut teal_ms, mut docker_ms) = (vec![], vec![]);
    let (mut teal_pull_ms, mut docker_pull_ms) = (vec![], vec![]);
    for _ in 0..runs {
        // teal: the service's color gone and the image's layers gone.
        quiet(&["rm", "-f", "teal-big-blue-0"]);
        purge(&image);
        let t = Instant::now();
        let out = host.teal(&["apply"]);
        teal_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        teal_pull_ms.push(step_ms(&out, "pull "));
        assert!(out.contains("pulled "), "{out}");
        if std::env::var_os("TEAL_BENCH_VERBOSE").is_some() {
            eprintln!("{out}");
        }
        assert!(http_ok(&format!("http://127.0.0.1:{}/", host.listen), Some("big.test")));
        quiet(&["rm", "-f", "teal-big-blue-0"]);
        purge(&image);
        // docker pull + docker run, until the app answers.
        let name = unique("teal-bench-plain");
        let port = free_port();
        let t = Instant::now();
        let auth = ["--config", reg.docker_config.to_str().unwrap()];
        run(Command::new("docker").args(auth).args(["pull", "-q", &image]));
        docker_pull_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            &image,
        ]);
        let url = format!("http://127.0.0.1:{port}/healthz");
        while !http_ok(&url, None) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "the plain container never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        docker_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        quiet(&["rm", "-f", &name]);
        assert!(!docker(&["images", "-q", teal::pins::repo_of(&image)]).trim().is_empty());
    }
    quiet(&["rm", "-f", "teal-big-blue-0"]);
    quiet(&["rmi", &image]);
    let (t, d) = (median(teal_ms), median(docker_ms));
    let (tp, dp) = (median(teal_pull_ms), median(docker_pull_ms));
    println!(
        "pull and deploy of a 50 MB image ({runs} runs, medians): teal apply {t:.0} ms (fetch, pull, start, health check, switch); docker pull + docker run until /healthz answers {d:.0} ms; ratio {:.2}",
        t / d
    );
    println!(
        "  the pull alone: teal's pull step {tp:.0} ms; docker pull {dp:.0} ms; ratio {:.2}",
        tp / dp
    );
}

async fn cleanup(network: &str) {
    let n = 200;
    let repo = unique("teal-bench-gc");
    let t = Instant::now();
    // 200 distinct images, each a layer of its own (a 100 kB file), by
    // `docker import`: a build each would take minutes.
    let ctx = tempfile::tempdir().unwrap();
    for i in 0..n {
        std::fs::write(ctx.path().join("data"), format!("{i}\n").repeat(20_000)).unwrap();
        run(Command::new("tar")
            .args(["cf", "layer.tar", "data"])
            .current_dir(ctx.path()));
        docker(&[
            "import",
            ctx.path().join("layer.tar").to_str().unwrap(),
            &format!("{repo}:{i}"),
        ]);
    }
    eprintln!("built {n} images in {:.1}s", t.elapsed().as_secs_f64());
    let host = Host::new(network, "");
    // The service now declares another image; the 200 are its past deploys.
    host.push("gc", "teal-bench-none:1");
    let images: Vec<String> = (0..n).map(|i| format!("{repo}:{i}")).collect();
    let state = host.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("images.json"),
        serde_json::json!({ "gc": images }).to_string(),
    )
    .unwrap();
    let t = Instant::now();
    let out = host.teal(&["gc"]);
    let took = t.elapsed().as_secs_f64();
    assert!(out.contains(&format!("removed {} images", n - 3)), "{out}");
    println!(
        "cleanup pass over {n} deployed images (197 removed, 3 kept): teal gc {took:.2} s ({:.1} ms per removed image)",
        took * 1000.0 / (n - 3) as f64
    );
    for i in n - 3..n {
        quiet(&["rmi", &format!("{repo}:{i}")]);
    }
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
    let network = unique("teal-bench-registry");
    let docker = DockerDriver::connect(None, &network).await.expect("Docker");
    docker.ensure_network().await.unwrap();
    pull_and_deploy(&network, runs).await;
    if std::env::var_os("TEAL_BENCH_SKIP_GC").is_none() {
        cleanup(&network).await;
    }
    quiet(&["network", "rm", &network]);
}
