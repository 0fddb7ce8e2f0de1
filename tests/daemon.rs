//! `teal daemon` against a bare repo the test pushes to, real Docker and a
//! real HAProxy.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    app_image_version, docker_or_fail, free_port, get_via, git_in, promtool_check, proxy_or_fail, teal_bin, unique,
    DockerGuard,
};
use teal::drivers::docker::DockerDriver;
use teal::drivers::managed::{self, ManagedSpec};

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls until the proxy answers `want` for `host`, or fails after `secs`.
async fn until_serves(listen: &str, host: &str, want: &str, secs: u64, log: &std::path::Path) {
    let start = Instant::now();
    let mut last = (0, String::new());
    while start.elapsed() < Duration::from_secs(secs) {
        last = get_via(listen, host, "/").await;
        if last.1 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "proxy never served {want:?} (last {last:?}); daemon log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn the_daemon_follows_pushes_keeps_serving_through_bad_ones_and_backs_off() {
    docker_or_fail();
    proxy_or_fail("haproxy");
    let network = unique("teal-d");
    let svc = unique("web");
    let host = format!("{svc}.test");
    let docker = DockerDriver::connect(None, &network).await.unwrap();
    let v1 = app_image_version(&docker, "1.0", true).await;
    let v2 = app_image_version(&docker, "2.0", true).await;
    let bad = app_image_version(&docker, "3.0", false).await;
    let _guard = DockerGuard {
        services: vec![svc.clone()],
        network: network.clone(),
    };

    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("deploy.git");
    git_in(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    let work = dir.path().join("work");
    git_in(dir.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
    let file = |active: &str, blue: &str, green: Option<&str>| {
        let green = green.map(|g| format!("green:\n  image: {g}\n")).unwrap_or_default();
        format!("active: {active}\nblue:\n  image: {blue}\n{green}port: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\n  deadline: 3s\nswitch: {{drain: 100ms}}\n")
    };
    let push = |msg: &str, text: &str| {
        std::fs::create_dir_all(work.join("services")).unwrap();
        std::fs::write(work.join(format!("services/{svc}.yaml")), text).unwrap();
        git_in(&work, &["add", "-A"]);
        git_in(&work, &["commit", "-qm", msg]);
        git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
    };
    push("web 1.0", &file("blue", &v1, None));

    let pdir = dir.path().join("proxy");
    let listen = format!("127.0.0.1:{}", free_port());
    let (m, _) = managed::start(&ManagedSpec::haproxy(&pdir, &listen)).await.unwrap();
    let d = pdir.display();
    let state = dir.path().join("state");
    let config = dir.path().join("daemon.yaml");
    let api = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}, poll: 1s}}\ndocker: {{network: {network}}}\nproxy:\n  kind: haproxy\n  listen: {listen}\n  haproxy: {{config: {d}/teal.cfg, socket: {d}/admin.sock, reload: [kill, -USR2, '{}']}}\nstate_dir: {}\nlisten: {api}\n",
            bare.display(),
            m.pid(),
            state.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let child = Command::new(teal_bin())
        .args(["daemon", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Proc(child);
    until_serves(&listen, &host, "1.0 blue\n", 60, &log).await;

    // A second daemon on the same state dir is refused.
    let second = Command::new(teal_bin())
        .args(["daemon", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another teal daemon (pid ") && err.contains("teal.lock; stop it or use another --state-dir"),
        "{err}"
    );

    let blue_ids = || {
        let out = Command::new("docker")
            .args([
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                &format!("label=teal.service={svc}"),
                "--filter",
                "label=teal.color=blue",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let blue_before = blue_ids();
    assert!(!blue_before.is_empty());

    push("bump", &file("green", &v1, Some(&v2)));
    until_serves(&listen, &host, "2.0 green\n", 60, &log).await;

    // git revert: back on the warm blue, the very same containers.
    git_in(&work, &["revert", "--no-edit", "HEAD"]);
    git_in(&work, &["push", "-q", "origin", "HEAD:main"]);
    until_serves(&listen, &host, "1.0 blue\n", 60, &log).await;
    assert_eq!(blue_ids(), blue_before, "no container was created for the revert");

    // Broken YAML: not applied, still serving, the problem logged with its position.
    push("typo", "active: green\nblue:\n  imgae: x\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(get_via(&listen, &host, "/").await.1, "1.0 blue\n");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("services/{svc}.yaml:3:3: blue: unknown field")),
        "{text}"
    );
    assert_eq!(
        text.matches("has an invalid config").count(),
        1,
        "logged once, not every pass:\n{text}"
    );
    let status = status_json(&api).await;
    let errors = status["config_errors"].as_array().unwrap();
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("services/{svc}.yaml:3:3: blue: unknown field")),
        "{status}"
    );
    assert_ne!(status["fetched_commit"], status["applied_commit"], "{status}");

    // The fix deploys.
    push("fix", &file("green", &v1, Some(&v2)));
    until_serves(&listen, &host, "2.0 green\n", 60, &log).await;

    // An unhealthy build: no switch, and no retry storm (backoff: one attempt
    // in the next seconds, though the daemon polls every second).
    push("bad build", &file("blue", &bad, Some(&v2)));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(get_via(&listen, &host, "/").await.1, "2.0 green\n", "traffic stayed");
    let events = teal::events::read(&state.join("events.jsonl")).unwrap();
    let checks = events
        .iter()
        .filter(|e| e.step == "wait_healthy" && e.result == "failed")
        .count();
    assert_eq!(checks, 1, "one failed attempt in 8s, not one per poll: {events:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("deploy failed, traffic stays where it was") && text.contains("-> 503 (expected 200)"),
        "{text}"
    );
    // Fields print plain values: `color=green`, never `color=Some(Green)`.
    assert!(text.contains(&format!("service={svc} color=green ")), "{text}");
    assert!(!text.contains("Some("), "{text}");
    let status = status_json(&api).await;
    let web = &status["services"][&svc];
    assert_eq!(web["live"], "green", "{status}");
    assert_eq!(web["last_deploy"]["result"], "failed", "{status}");
    assert!(
        web["last_deploy"]["error"]
            .as_str()
            .unwrap()
            .contains("-> 503 (expected 200)"),
        "{status}"
    );
    let cli = Command::new(teal_bin())
        .args(["status", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&cli.stdout);
    assert!(
        out.contains(&format!("{svc}: traffic on green\n")) && out.contains("last deploy failed of"),
        "{out}"
    );
    // The live daemon's metrics, after deploys, a failed check and an
    // invalid commit, pass promtool.
    let (code, metrics) = get_via(&api, "localhost", "/metrics").await;
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("teal_failed_checks_total{service="), "{metrics}");
    if let Err(e) = promtool_check(&metrics) {
        panic!("{metrics}\n{e}");
    }
    drop(m);
}

async fn status_json(api: &str) -> serde_json::Value {
    let (code, body) = get_via(api, "localhost", "/status").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn sighup_reloads_the_host_config() {
    docker_or_fail();
    proxy_or_fail("haproxy");
    let network = unique("teal-h");
    let svc = unique("web");
    let host = format!("{svc}.test");
    let docker = DockerDriver::connect(None, &network).await.unwrap();
    let v1 = app_image_version(&docker, "1.0", true).await;
    let v2 = app_image_version(&docker, "2.0", true).await;
    let _guard = DockerGuard {
        services: vec![svc.clone()],
        network: network.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("services")).unwrap();
    git_in(&work, &["init", "-q", "-b", "main"]);
    let file = |active: &str, blue: &str, green: &str| {
        format!("active: {active}\nblue:\n  image: {blue}\ngreen:\n  image: {green}\nport: 8080\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 100ms\n  successes: 2\nswitch: {{drain: 100ms}}\n")
    };
    std::fs::write(work.join(format!("services/{svc}.yaml")), file("blue", &v1, &v1)).unwrap();
    git_in(&work, &["add", "-A"]);
    git_in(&work, &["commit", "-qm", "main"]);
    git_in(&work, &["checkout", "-q", "-b", "prod"]);
    std::fs::write(work.join(format!("services/{svc}.yaml")), file("green", &v1, &v2)).unwrap();
    git_in(&work, &["commit", "-qam", "prod runs 2.0"]);

    let pdir = dir.path().join("proxy");
    let listen = format!("127.0.0.1:{}", free_port());
    let (m, _) = managed::start(&ManagedSpec::haproxy(&pdir, &listen)).await.unwrap();
    let d = pdir.display();
    let config = dir.path().join("daemon.yaml");
    let write_config = |branch: &str| {
        std::fs::write(
            &config,
            format!(
                "repo: {{url: {}, branch: {branch}, poll: 1s}}\ndocker: {{network: {network}}}\nproxy:\n  kind: haproxy\n  listen: {listen}\n  haproxy: {{config: {d}/teal.cfg, socket: {d}/admin.sock, reload: [kill, -USR2, '{}']}}\nstate_dir: {}/state\nlisten: 127.0.0.1:{}\n",
                work.display(),
                m.pid(),
                dir.path().display(),
                free_port()
            ),
        )
        .unwrap()
    };
    write_config("main");
    let log = dir.path().join("daemon.log");
    let child = Command::new(teal_bin())
        .args(["daemon", "--config", config.to_str().unwrap()])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let _daemon = Proc(child);
    until_serves(&listen, &host, "1.0 blue\n", 60, &log).await;
    write_config("prod");
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    until_serves(&listen, &host, "2.0 green\n", 60, &log).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("SIGHUP: host config reloaded"), "{text}");
    drop(m);
}
