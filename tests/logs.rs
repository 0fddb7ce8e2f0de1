//! `teal daemon --log-format json`: what a log shipper reads from stderr is
//! one JSON object per line, fields at the top level.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{docker_or_fail, free_port, teal_bin, unique, DockerGuard, Repo};

#[test]
fn daemon_json_logs_are_one_json_object_per_line() {
    docker_or_fail();
    let network = unique("teal-log");
    let _guard = DockerGuard {
        services: vec![],
        network: network.clone(),
    };
    let repo = Repo::new();
    let commit = repo.commit("no services yet", &[("services/.gitkeep", Some(""))]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.yaml");
    let d = dir.path().display();
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}, poll: 1s}}\ndocker: {{network: {network}}}\nproxy:\n  kind: nginx\n  listen: 127.0.0.1:{}\n  nginx: {{conf_dir: {d}/conf.d, test: ['true'], reload: ['true']}}\nstate_dir: {d}/state\nlisten: 127.0.0.1:{}\n",
            repo.path().display(),
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let mut child = Command::new(teal_bin())
        .args(["daemon", "--log-format", "json", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut lines = vec![];
    while start.elapsed() < Duration::from_secs(30) {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let done = line.contains("first pass done");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(
        text.contains("first pass done"),
        "the daemon did not finish a pass:\n{text}"
    );
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for p in &parsed {
        assert!(
            p["timestamp"].is_string() && p["level"].is_string() && p["message"].is_string(),
            "{p}"
        );
    }
    let new_commit = parsed
        .iter()
        .find(|p| p["message"] == "new commit")
        .unwrap_or_else(|| panic!("no 'new commit' line:\n{text}"));
    assert_eq!(new_commit["commit"], commit[..10], "{new_commit}");
    assert_eq!(new_commit["services"], 0, "{new_commit}");
}
