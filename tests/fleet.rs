//! Several hosts on one repo: each host a Docker engine of its own (its
//! own bridge and address pool) with its own daemon, managed proxy and
//! status API. Placement, waves gated on the peers' status, a failed wave
//! stopping the rollout, an unreachable wave-1 host holding wave 2,
//! `teal status --fleet` with a host down, a host name the fleet does not
//! list, and nothing left behind.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::engine::Engine;
use common::host::{Daemon, TestHost};
use common::{app_image_version, free_port, proxy_or_fail, teal, try_get_via};

impl Drop for Member {
    fn drop(&mut self) {
        common::host::kill_proxies(&self.config.with_file_name("state").join("proxy"));
    }
}

/// One host of the fleet.
struct Member {
    name: String,
    engine: Engine,
    listen: String,
    api: String,
    config: PathBuf,
    log: PathBuf,
}

impl Member {
    fn new(h: &TestHost, name: &str, images: &[&str]) -> Member {
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
                "repo: {{url: {}, poll: 300ms}}\nhost: {{name: {name}}}\ndocker: {{host: '{}', network: {}}}\nproxy: {{kind: haproxy, listen: '{}', managed: true}}\nstate_dir: {}\nlisten: '{}'\n",
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

    fn start(&self) -> Daemon {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Daemon(
            Command::new(common::teal_bin())
                .args(["daemon", "--config", self.config.to_str().unwrap()])
                .env("NO_COLOR", "1")
                .stderr(f)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn status(&self) -> Option<serde_json::Value> {
        let (_, body) = try_get_via(&self.api, "localhost", "/status").await.ok()?;
        serde_json::from_str(&body).ok()
    }

    /// Waits until this host's /status says it serves `service` at `commit`.
    async fn serving(&self, service: &str, commit: &str) {
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

    async fn serves(&self, host: &str, want: &str, secs: u64) {
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
fn admit_each_other(members: &[&Member]) {
    let peers: Vec<String> = members.iter().map(|m| format!("'http://{}'", m.api)).collect();
    for m in members {
        let text = std::fs::read_to_string(&m.config).unwrap();
        std::fs::write(&m.config, format!("{text}fleet: {{peers: [{}]}}\n", peers.join(", "))).unwrap();
    }
}

fn teal_yaml(a: &Member, b: &Member) -> String {
    format!(
        "hosts:\n  h1: {{labels: {{role: web, wave: \"1\"}}, status: 'http://{}'}}\n  h2: {{labels: {{role: web, wave: \"2\"}}, status: 'http://{}'}}\n",
        a.api, b.api
    )
}

fn service(host: &str, active: &str, blue: &str, green: Option<&str>, extra: &str) -> String {
    let green = green.map(|g| format!("green: {{image: {g}}}\n")).unwrap_or_default();
    format!("active: {active}\nblue: {{image: {blue}}}\n{green}port: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 300ms\n  successes: 3\n  deadline: 4s\nswitch: {{drain: 100ms}}\n{extra}")
}

fn commit(h: &TestHost, files: &[(&str, String)]) -> String {
    std::fs::create_dir_all(h.work.join("services")).unwrap();
    for (p, t) in files {
        std::fs::write(h.work.join(p), t).unwrap();
    }
    common::git_in(&h.work, &["add", "-A"]);
    common::git_in(&h.work, &["commit", "-qm", "change"]);
    common::git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    common::git_in(&h.work, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn placement_waves_a_failed_wave_and_an_unreachable_one() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("fleet").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let v3 = app_image_version(&h.docker, "3.0", true).await;
    let bad = app_image_version(&h.docker, "9.0", false).await;
    let images = [v1.as_str(), v2.as_str(), v3.as_str(), bad.as_str()];
    let (a, b) = (Member::new(&h, "h1", &images), Member::new(&h, "h2", &images));
    admit_each_other(&[&a, &b]);
    let web = format!("{}.test", h.svc);
    let solo = format!("solo-{}", h.svc);
    let waves = "placement: {role: web}\nrollout: {by: wave}\n";
    let web_file = format!("services/{}.yaml", h.svc);
    let solo_file = format!("services/{solo}.yaml");
    commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (&web_file, service(&web, "blue", &v1, None, waves)),
            (
                &solo_file,
                service("solo.test", "blue", &v1, None, "placement: {wave: \"1\"}\n"),
            ),
        ],
    );
    let mut da = a.start();
    let db = b.start();
    a.serves(&web, "1.0 blue\n", 60).await;
    b.serves(&web, "1.0 blue\n", 60).await;
    a.serves("solo.test", "1.0 blue\n", 60).await;

    // Placement: solo runs on h1 only.
    assert_eq!(a.engine.containers(&solo).len(), 1);
    assert!(b.engine.containers(&solo).is_empty(), "solo is not placed on h2");

    // Waves: h2 creates 2.0 only once h1 serves it.
    let c2 = commit(&h, &[(&web_file, service(&web, "green", &v1, Some(&v2), waves))]);
    let start = Instant::now();
    let (mut h1_serves, mut h2_starts) = (None, None);
    while h2_starts.is_none() {
        if h1_serves.is_none()
            && a.status()
                .await
                .is_some_and(|s| s["services"][&h.svc]["serving"] == c2.as_str())
        {
            h1_serves = Some(Instant::now());
        }
        if b.engine.containers(&h.svc).iter().any(|(_, i)| *i == v2) {
            h2_starts = Some(Instant::now());
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no wave 2:\n{}", b.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        h1_serves.is_some_and(|s| s <= h2_starts.unwrap()),
        "wave 2 created 2.0 before wave 1 served it"
    );
    b.serves(&web, "2.0 green\n", 60).await;
    b.serving(&h.svc, &c2).await;
    a.serving(&solo, &c2).await;
    let fleet = teal(
        h.dir.path(),
        &["status", "--fleet", "--config", a.config.to_str().unwrap()],
    );
    assert_eq!(fleet.code, 0, "{}{}", fleet.stdout, fleet.stderr);
    for host in ["h1", "h2"] {
        let line = fleet
            .stdout
            .lines()
            .find(|l| l.starts_with(host) && l.contains(&format!(" {} ", h.svc)))
            .unwrap_or("");
        assert!(
            line.contains("green") && line.contains("2.0") && line.contains(&c2[..7]) && line.ends_with("serving"),
            "{}",
            fleet.stdout
        );
    }

    // A service moved to another host leaves this one (after a drain).
    let moved = commit(
        &h,
        &[(
            &solo_file,
            service("solo.test", "blue", &v1, None, "placement: {wave: \"2\"}\n"),
        )],
    );
    b.serves("solo.test", "1.0 blue\n", 60).await;
    let start = Instant::now();
    while !a.engine.containers(&solo).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "solo stays on h1 at {moved}:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.engine.containers(&solo).len(), 1);

    // A failed wave stops the rollout: h2 never starts the broken build.
    let c9 = commit(&h, &[(&web_file, service(&web, "blue", &bad, Some(&v2), waves))]);
    let start = Instant::now();
    loop {
        if b.status().await.is_some_and(|s| {
            s["services"][&h.svc]["waiting"] == format!("stopped: wave 1 failed at {} on h1", &c9[..7]).as_str()
        }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "h2 never stopped:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !b.engine.containers(&h.svc).iter().any(|(_, i)| *i == bad),
        "h2 never runs the broken build"
    );
    b.serves(&web, "2.0 green\n", 5).await;

    // An unreachable wave-1 host holds wave 2.
    da.kill_9();
    let _ = a.engine.docker(&["ps"]);
    common::host::kill_proxies(&h.dir.path().join("h1/state/proxy"));
    let c3 = commit(&h, &[(&web_file, service(&web, "blue", &v3, Some(&v2), waves))]);
    let start = Instant::now();
    loop {
        let w = b
            .status()
            .await
            .and_then(|s| s["services"][&h.svc]["waiting"].as_str().map(String::from));
        if w.as_deref()
            .is_some_and(|w| w.starts_with("waiting for wave 1: h1 unreachable since "))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "h2 does not say it waits ({w:?}):\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !b.engine.containers(&h.svc).iter().any(|(_, i)| *i == v3),
        "h2 waits for h1 (at {c3})"
    );
    let fleet = teal(
        h.dir.path(),
        &["status", "--fleet", "--config", b.config.to_str().unwrap()],
    );
    assert_eq!(fleet.code, 1, "a host down is a failed read: {}", fleet.stdout);
    assert!(
        fleet
            .stdout
            .lines()
            .any(|l| l.starts_with("h1") && l.contains("unreachable")),
        "{}",
        fleet.stdout
    );
    assert!(
        fleet.stdout.lines().any(|l| l.starts_with("h2") && l.contains(&h.svc)),
        "{}",
        fleet.stdout
    );

    // Nothing of the engines stays behind.
    let bridges = [a.engine.bridge().to_string(), b.engine.bridge().to_string()];
    drop(db);
    drop((a, b));
    for br in bridges {
        assert!(
            !Command::new("ip")
                .args(["link", "show", &br])
                .output()
                .unwrap()
                .status
                .success(),
            "bridge {br} removed"
        );
    }
}

#[tokio::test]
async fn a_host_the_fleet_does_not_list_applies_nothing() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("stranger").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let a = Member::new(&h, "h1", &[v1.as_str()]);
    let b = Member::new(&h, "h2", &[v1.as_str()]);
    let stranger = Member::new(&h, "h3", &[v1.as_str()]);
    let text = std::fs::read_to_string(&stranger.config)
        .unwrap()
        .replace("name: h3", "name: web-9");
    std::fs::write(&stranger.config, text).unwrap();
    commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (
                &format!("services/{}.yaml", h.svc),
                service("x.test", "blue", &v1, None, ""),
            ),
        ],
    );
    let _d = stranger.start();
    let start = Instant::now();
    loop {
        if let Some(r) = stranger
            .status()
            .await
            .and_then(|s| s["refused"]["reason"].as_str().map(String::from))
        {
            assert_eq!(r, "this host, \"web-9\" (host.name in the host config), is not in teal.yaml's hosts (h1, h2): applying nothing");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", stranger.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stranger.engine.containers(&h.svc).is_empty(), "nothing deployed");
}
