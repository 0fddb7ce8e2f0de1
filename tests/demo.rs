//! `teal demo` end to end, as a newcomer runs it: start, see the first
//! version served, look at it with `teal status` and the dashboard, bump
//! and commit, see the switch, read `teal history`, stop, clean up.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{docker_or_fail, free_port, get_via, proxy_or_fail, teal_bin, unique};

#[tokio::test]
async fn demo_serves_switches_on_a_committed_bump_and_cleans_up() {
    docker_or_fail();
    proxy_or_fail("haproxy");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let name = unique("teal-demo");
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(teal_bin())
        .args(["demo", "--dir", dir.to_str().unwrap(), "--port", &port, "--name", &name])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = String::new();
    let start = Instant::now();
    while !printed.contains("is serving") {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "demo did not start:\n{printed}"
        );
        if let Ok(l) = rx.recv_timeout(Duration::from_secs(1)) {
            printed.push_str(&l);
            printed.push('\n');
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    while let Ok(l) = rx.try_recv() {
        printed.push_str(&l);
        printed.push('\n');
    }
    assert!(
        printed.contains(&format!("bump {name} {name}:1.1 --commit")),
        "tells what to try:\n{printed}"
    );
    assert!(printed.contains("git revert --no-edit HEAD"), "{printed}");
    assert_eq!(get_via(&listen, "localhost", "/").await, (200, "1.0 blue\n".into()));

    // A real host: its host config is written, and teal status reads it.
    let config = dir.join("daemon.yaml");
    let config_arg = config.to_str().unwrap();
    assert!(
        printed.contains(&format!("status --config {config_arg}"))
            && printed.contains("history --config ../daemon.yaml"),
        "{printed}"
    );
    let yaml = std::fs::read_to_string(&config).unwrap();
    assert!(
        yaml.contains("  managed: true\n") && !yaml.contains("haproxy:"),
        "three proxy fields are a whole managed proxy:\n{yaml}"
    );
    let dashboard = printed
        .lines()
        .find_map(|l| l.strip_prefix("dashboard: http://"))
        .and_then(|l| l.split('/').next())
        .unwrap_or_else(|| panic!("no dashboard URL:\n{printed}"))
        .to_string();
    assert!(dashboard.starts_with("127.0.0.1:"), "loopback only: {dashboard}");
    let status = teal(&["status", "--config", config_arg]);
    assert!(
        status.contains(&format!("{name}: traffic on blue\n")) && status.contains(&format!("{name}:1.0 (2 running")),
        "{status}"
    );
    let (code, page) = get_via(&dashboard, "localhost", "/").await;
    assert_eq!(code, 200);
    assert!(page.contains(&format!("id=\"svc-{name}\"")), "{page}");

    let repo = dir.join("config");
    let bump = Command::new(teal_bin())
        .args(["bump", &name, &format!("{name}:1.1"), "--commit"])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(bump.status.success(), "{}", String::from_utf8_lossy(&bump.stderr));
    let start = Instant::now();
    loop {
        let got = get_via(&listen, "localhost", "/").await.1;
        if got == "1.1 green\n" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never switched, last {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = teal(&["history", "--config", config_arg]);
    assert!(
        history.contains(&format!("started green {name}:1.1, traffic blue -> green")),
        "{history}"
    );

    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "Ctrl-C stops the demo cleanly: {status}");
    // ... and the proxy it started: nothing of it keeps running.
    let proxy_dir = std::fs::canonicalize(&dir).unwrap().join("state/proxy");
    let left = common::process::processes_of(&proxy_dir);
    assert!(left.is_empty(), "the demo's proxy outlived Ctrl-C: {left:?}");
    assert!(
        std::net::TcpStream::connect(&listen).is_err(),
        "nothing listens on {listen}"
    );

    let clean = Command::new(teal_bin())
        .args(["demo", "--clean", "--dir", dir.to_str().unwrap(), "--name", &name])
        .output()
        .unwrap();
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    assert_eq!(
        String::from_utf8_lossy(&clean.stdout),
        format!("removed 4 containers, network {name}, 4 images, {}\n", dir.display())
    );
    let left = |args: &[&str]| {
        String::from_utf8_lossy(&Command::new("docker").args(args).output().unwrap().stdout)
            .trim()
            .to_string()
    };
    assert_eq!(
        left(&["ps", "-aq", "--filter", &format!("label=teal.owner={name}")]),
        ""
    );
    assert_eq!(
        left(&["network", "ls", "-q", "--filter", &format!("name=^{name}$")]),
        ""
    );
    assert_eq!(left(&["images", "-q", &name]), "");
    assert!(!dir.exists());
}

/// `teal ARGS`: its stdout; it must succeed.
fn teal(args: &[&str]) -> String {
    let out = Command::new(teal_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "teal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(teal_bin()).args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("bump") && text.contains("diff") && text.contains("demo"),
            "{shell}: {text}"
        );
    }
}
