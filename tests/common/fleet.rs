//! Several hosts of one fleet for the fleet tests: each a Docker engine
//! of its own with its own daemon, managed HAProxy and status API.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::engine::Engine;
use super::host::TestHost;
use super::process::Daemon;
use super::{free_port, try_get_via};

impl Drop for Member {
    fn drop(&mut self) {
        super::process::kill_proxies(&self.config.with_file_name("state").join("proxy"));
    }
}

/// One host of the fleet.
pub struct Member {
    pub name: String,
    pub engine: Engine,
    pub listen: String,
    pub api: String,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl Member {
    pub fn new(h: &TestHost, name: &str, images: &[&str]) -> Member {
        let engine = Engine::start();
        for i in images {
            engine.load(i);
        }
        let dir = h.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let m = Member {
            name: name.into(),
            listen: format!("127.0.0.1:{}", free_port()),
            api: format!("127.0.0.1:{}", free_port()),
            config: dir.join("daemon.yaml"),
            log: dir.join("daemon.log"),
            engine,
        };
        std::fs::write(
            &m.config,
            format!(
                "repo: {{url: {}, poll: 300ms}}\nhost: {{name: {name}}}\ndocker: {{host: '{}', network: {}}}\nproxy: {{kind: haproxy, listen: '{}', managed: true}}\nstate_dir: {}\nlisten: '{}'\nimages: {{keep: 100}}\n",
                h.bare.display(),
                m.engine.host(),
                h.network,
                m.listen,
                dir.join("state").display(),
                m.api
            ),
        )
        .unwrap();
        m
    }

    pub fn start(&self) -> Daemon {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Daemon(
            Command::new(super::teal_bin())
                .args(["daemon", "--config", self.config.to_str().unwrap()])
                .env("NO_COLOR", "1")
                .stderr(f)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn status(&self) -> Option<serde_json::Value> {
        let (_, body) = try_get_via(&self.api, "localhost", "/status").await.ok()?;
        serde_json::from_str(&body).ok()
    }

    /// Waits until this host's /status says it serves `service` at `commit`.
    pub async fn serving(&self, service: &str, commit: &str) {
        let start = Instant::now();
        while !self
            .status()
            .await
            .is_some_and(|s| s["services"][service]["serving"] == commit)
        {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} never served {commit}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn serves(&self, host: &str, want: &str, secs: u64) {
        let start = Instant::now();
        loop {
            if try_get_via(&self.listen, host, "/").await.is_ok_and(|(_, b)| b == want) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{} never served {want:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Lets each member read the others' status (`fleet.peers` in its host
/// config): a host reads no URL of teal.yaml that its own config does not list.
pub fn admit_each_other(members: &[&Member]) {
    let peers: Vec<String> = members.iter().map(|m| format!("'http://{}'", m.api)).collect();
    for m in members {
        let text = std::fs::read_to_string(&m.config).unwrap();
        std::fs::write(&m.config, format!("{text}fleet: {{peers: [{}]}}\n", peers.join(", "))).unwrap();
    }
}

pub fn teal_yaml(a: &Member, b: &Member) -> String {
    format!(
        "hosts:\n  h1: {{labels: {{role: web, wave: \"1\"}}, status: 'http://{}'}}\n  h2: {{labels: {{role: web, wave: \"2\"}}, status: 'http://{}'}}\n",
        a.api, b.api
    )
}

pub fn service(host: &str, active: &str, blue: &str, green: Option<&str>, extra: &str) -> String {
    let green = green.map(|g| format!("green: {{image: {g}}}\n")).unwrap_or_default();
    format!("active: {active}\nblue: {{image: {blue}}}\n{green}port: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 300ms\n  successes: 3\n  deadline: 4s\nswitch: {{drain: 100ms}}\n{extra}")
}

pub fn commit(h: &TestHost, files: &[(&str, String)]) -> String {
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    for (p, t) in files {
        std::fs::write(h.work.join(p), t).unwrap();
    }
    super::git_in(&h.work, &["add", "-A"]);
    super::git_in(&h.work, &["commit", "-qm", "change"]);
    super::git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    super::git_in(&h.work, &["rev-parse", "HEAD"])
}
