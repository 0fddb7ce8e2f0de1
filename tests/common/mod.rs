//! Helpers shared by the integration tests: real git repositories and the
//! built `teal` binary.
#![allow(dead_code)]

pub mod acme;
pub mod age;
pub mod browser;
pub mod certs;
pub mod engine;
pub mod faketime;
pub mod fleet;
pub mod host;
pub mod hostile;
pub mod image;
pub mod load;
pub mod process;
pub mod prometheus;
pub mod registry;
pub mod signing;
pub mod soak;
pub mod swarm;
pub mod tls;
pub mod tmpfs;
pub mod token;
pub mod wrk;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A git work tree in a temp dir, removed on drop.
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    /// `git init` with a `main` branch.
    pub fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the work tree; panics with git's stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(self.path(), args)
    }

    /// Writes (or, with `None`, deletes) files and commits them.
    pub fn commit(&self, msg: &str, files: &[(&str, Option<&str>)]) -> String {
        for (path, text) in files {
            let full = self.path().join(path);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                    std::fs::write(&full, t).unwrap();
                }
                None => std::fs::remove_file(&full).unwrap(),
            }
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// Runs git in `dir` with a fixed identity.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=teal test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `teal` binary built for this test run.
pub fn teal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_teal"))
}

/// Runs `teal` with `args` in `dir`.
pub fn teal(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(teal_bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run::from(out)
}

/// A finished `teal` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A service file in the format of DESIGN section 1.
pub fn service(active: &str, blue: Option<&str>, green: Option<&str>, host: &str) -> String {
    let color = |c: &str, img: Option<&str>| img.map(|i| format!("{c}:\n  image: {i}\n")).unwrap_or_default();
    format!(
        "# the {host} service\nactive: {active}\n{}{}port: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n",
        color("blue", blue),
        color("green", green)
    )
}

/// A name unique to this test process and call: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Fails (never skips) when Docker is not reachable, saying how to fix it.
pub fn docker_or_fail() {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need a running Docker engine: start it (`dockerd &` or `systemctl start docker`) \
         and make sure this user can use /var/run/docker.sock; `.ci/run` does this"
    );
}

/// Tag of a demo app image (FROM scratch, from the binary embedded in
/// teal, no registry) that reports `version` and answers /healthz with 200,
/// or 503 when not `healthy`. Built once per tag.
pub async fn app_image_version(docker: &teal::drivers::docker::DockerDriver, version: &str, healthy: bool) -> String {
    use sha2::Digest;
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = LOCK.lock().await;
    let sum = hex::encode(sha2::Sha256::digest(teal::app::DEMO_APP));
    let tag = format!(
        "teal-test-app-{}:{version}{}",
        &sum[..12],
        if healthy { "" } else { "-unhealthy" }
    );
    if !docker.image_present(&tag).await.unwrap() {
        let env = [("VERSION", version), ("HEALTHY", if healthy { "1" } else { "0" })];
        docker
            .build_app_image(&tag, teal::app::DEMO_APP, &env)
            .await
            .expect("build the demo app image");
    }
    tag
}

/// A healthy demo app image at `version` whose `GET /` answers 500 for
/// `fail_percent` % of requests (deterministically spread): passes its
/// health checks, fails analysis.
pub async fn failing_app_image(
    docker: &teal::drivers::docker::DockerDriver,
    version: &str,
    fail_percent: u32,
) -> String {
    use sha2::Digest;
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = LOCK.lock().await;
    let sum = hex::encode(sha2::Sha256::digest(teal::app::DEMO_APP));
    let tag = format!("teal-test-app:{}-{version}-fail{fail_percent}", &sum[..12]);
    if !docker.image_present(&tag).await.unwrap() {
        let percent = fail_percent.to_string();
        let env = [
            ("VERSION", version),
            ("HEALTHY", "1"),
            ("FAIL_PERCENT", percent.as_str()),
        ];
        docker
            .build_app_image(&tag, teal::app::DEMO_APP, &env)
            .await
            .expect("build the failing demo app image");
    }
    tag
}

/// The healthy demo app image at version `1.0`.
pub async fn app_image(docker: &teal::drivers::docker::DockerDriver) -> String {
    app_image_version(docker, "1.0", true).await
}

/// Removes every container of the given services and the network on drop
/// (also when the test panics), through the docker CLI.
pub struct DockerGuard {
    pub services: Vec<String>,
    pub network: String,
}

impl Drop for DockerGuard {
    fn drop(&mut self) {
        for s in &self.services {
            let out = Command::new("docker")
                .args(["ps", "-aq", "--filter", &format!("label=teal.service={s}")])
                .output();
            if let Ok(out) = out {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).output();
                }
            }
        }
        let _ = Command::new("docker").args(["network", "rm", &self.network]).output();
    }
}

/// A free TCP port on 127.0.0.1.
/// A free port on 127.0.0.1 below the kernel's ephemeral range (32768
/// and up), so no outgoing connection (curl, a health check) takes it as
/// its source port while a test's proxy has not bound it yet (an HTTPS
/// port stays unbound until the first TLS route). Spread by pid and a
/// counter, so parallel test processes rarely try the same one, and
/// checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 10_000 + (base.wrapping_add(n.wrapping_mul(104_729)) % 22_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The demo app as a local process on 127.0.0.1 (a backend without Docker).
pub struct LocalApp {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl LocalApp {
    pub fn start(version: &str, color: &str) -> LocalApp {
        let dir = tempfile::tempdir().unwrap();
        let bin = teal::app::write_binary(dir.path()).unwrap();
        let port = free_port();
        let child = teal::app::spawn_retrying(
            Command::new(bin)
                .env("BIND", "127.0.0.1")
                .env("PORT", port.to_string())
                .env("VERSION", version)
                .env("COLOR", color)
                .stderr(std::process::Stdio::null()),
        )
        .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(addr).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        LocalApp { child, addr, _dir: dir }
    }
}

impl Drop for LocalApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` through a proxy at `proxy` with a Host header: (status,
/// body). Raw HTTP/1.1, so the request is exactly what the test says.
pub async fn get_via(proxy: &str, host: &str, path: &str) -> (u16, String) {
    try_get_via(proxy, host, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} for {host} through {proxy}: {e}"))
}

/// `get_via`, with a connection error as a value (nothing listens yet).
pub async fn try_get_via(proxy: &str, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(proxy).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Fails (never skips) when a proxy binary is missing.
pub fn proxy_or_fail(binary: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin"]
        .iter()
        .any(|d| Path::new(d).join(binary).exists());
    assert!(
        found,
        "these tests need {binary}: `apt-get install -y nginx-light haproxy libnginx-mod-http-lua lua-resty-core` (`.ci/run` does this)"
    );
}

/// `promtool check metrics` on a Prometheus exposition: `Err` with
/// promtool's complaints. Fails (never skips) when promtool is missing.
pub fn promtool_check(text: &str) -> Result<(), String> {
    use std::io::Write;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed to check /metrics ({e}): `apt-get install -y prometheus` \
             (Debian's package has promtool; `.ci/run` installs it)"
        ),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics ({}): {said}", out.status))
    }
}

/// Counts a service's containers (`docker ps`, with `all` the stopped ones
/// too) every 50 ms on a thread of its own, until `most`.
pub struct CountWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl CountWatch {
    pub fn start(service: &str, all: bool) -> CountWatch {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, m, filter) = (stop.clone(), most.clone(), format!("label=teal.service={service}"));
        let flag = if all { "-aq" } else { "-q" };
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let out = Command::new("docker")
                    .args(["ps", flag, "--filter", &filter])
                    .output()
                    .expect("docker ps");
                m.fetch_max(String::from_utf8_lossy(&out.stdout).lines().count(), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        });
        CountWatch { stop, most, thread }
    }

    /// Stops counting; the most containers seen at once.
    pub fn most(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the counting thread");
        self.most.load(std::sync::atomic::Ordering::Relaxed)
    }
}
