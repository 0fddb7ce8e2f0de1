//! Crash safety: `kill -9` the daemon at each phase of a deploy, restart
//! it, and it converges with no orphan containers, never routing traffic to
//! a color whose checks have not passed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    app_image_version, docker_or_fail, free_port, get_via, git_in, proxy_or_fail, teal_bin, unique, DockerGuard,
};
use teal::drivers::docker::DockerDriver;
use teal::drivers::managed::{self, ManagedSpec};

fn start_daemon(config: &Path, log: &Path) -> Child {
    let f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(teal_bin())
        .args(["daemon", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stderr(f)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for an event `step` (e.g. `start_color`) with result ok in events.jsonl after `n` such events.
async fn wait_event(events: &Path, step: &str, seen_before: usize) {
    let start = Instant::now();
    loop {
        let n = teal::events::read(events)
            .map(|e| e.iter().filter(|e| e.step == step && e.result == "ok").count())
            .unwrap_or(0);
        if n > seen_before {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no {step} event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(events: &Path, step: &str) -> usize {
    teal::events::read(events)
        .map(|e| e.iter().filter(|e| e.step == step && e.result == "ok").count())
        .unwrap_or(0)
}

#[tokio::test]
async fn kill_9_in_every_phase_then_restart_converges() {
    docker_or_fail();
    proxy_or_fail("haproxy");
    let network = unique("teal-k");
    let svc = unique("web");
    let host = format!("{svc}.test");
    let docker = DockerDriver::connect(None, &network).await.unwrap();
    let versions = ["1.0", "2.0", "3.0", "4.0", "5.0"];
    let mut images = vec![];
    for v in versions {
        images.push(app_image_version(&docker, v, true).await);
    }
    let _guard = DockerGuard {
        services: vec![svc.clone()],
        network: network.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("services")).unwrap();
    git_in(&work, &["init", "-q", "-b", "main"]);
    // Several consecutive passes make the check window wide enough to hit.
    let file = |active: &str, blue: &str, green: &str| {
        format!("active: {active}\nblue:\n  image: {blue}\ngreen:\n  image: {green}\nport: 8080\nreplicas: 2\nroute: {{host: {host}}}\nhealth:\n  http: {{path: /healthz}}\n  interval: 200ms\n  successes: 8\n  deadline: 30s\nswitch: {{drain: 100ms}}\n")
    };
    let commit = |text: String| {
        std::fs::write(work.join(format!("services/{svc}.yaml")), text).unwrap();
        git_in(&work, &["add", "-A"]);
        git_in(&work, &["commit", "-qm", "deploy"]);
    };
    commit(file("blue", &images[0], &images[0]));

    let pdir = dir.path().join("proxy");
    let listen = format!("127.0.0.1:{}", free_port());
    let (m, _) = managed::start(&ManagedSpec::haproxy(&pdir, &listen)).await.unwrap();
    let d = pdir.display();
    let state = dir.path().join("state");
    let events = state.join("events.jsonl");
    let config = dir.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}, poll: 500ms}}\ndocker: {{network: {network}}}\nproxy:\n  kind: haproxy\n  listen: {listen}\n  haproxy: {{config: {d}/teal.cfg, socket: {d}/admin.sock, reload: [kill, -USR2, '{}']}}\nstate_dir: {}\nlisten: 127.0.0.1:{}\n",
            work.display(),
            m.pid(),
            state.display(),
            free_port()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&config, &log);
    let serves = |want: String| {
        let listen = listen.clone();
        let host = host.clone();
        let log = log.clone();
        async move {
            let start = Instant::now();
            loop {
                let got = get_via(&listen, &host, "/").await.1;
                if got == want {
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(90),
                    "never served {want:?}, last {got:?}:\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    serves("1.0 blue\n".into()).await;

    // (phase, step whose completion triggers the kill, extra delay)
    let phases = [
        ("after the image pull", "pull_image", 0),
        ("after containers start", "start_color", 0),
        ("during health checks", "start_color", 600),
        ("right after the switch", "switch", 0),
    ];
    let mut active = "blue";
    let mut colors = ("1.0", "1.0");
    for (i, (phase, step, delay)) in phases.iter().enumerate() {
        let version = versions[i + 1];
        let image = &images[i + 1];
        let to = if active == "blue" { "green" } else { "blue" };
        let before = get_via(&listen, &host, "/").await.1;
        let seen = count(&events, step);
        let text = if to == "green" {
            colors.1 = version;
            file(
                "green",
                &images[versions.iter().position(|v| *v == colors.0).unwrap()],
                image,
            )
        } else {
            colors.0 = version;
            file(
                "blue",
                image,
                &images[versions.iter().position(|v| *v == colors.1).unwrap()],
            )
        };
        commit(text);
        wait_event(&events, step, seen).await;
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        // Until a check passed, traffic is where it was (after the switch, on the new color).
        let now = get_via(&listen, &host, "/").await.1;
        let new = format!("{version} {to}\n");
        if *step == "switch" {
            assert_eq!(now, new, "{phase}");
        } else {
            assert_eq!(now, before, "{phase}: no traffic to the unchecked color");
        }
        daemon = start_daemon(&config, &log);
        serves(new).await;
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=teal.service={svc}"),
                "--format",
                "{{.Names}} {{.State}}",
            ])
            .output()
            .unwrap();
        let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.replace(&svc, "web"))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "teal-web-blue-0 running",
                "teal-web-blue-1 running",
                "teal-web-green-0 running",
                "teal-web-green-1 running"
            ],
            "{phase}: no orphans, both colors warm"
        );
        active = to;
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(m);
}
