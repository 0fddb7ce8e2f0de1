//! `teal history` on an event log recorded from a real daemon run (two
//! services: first deploy, bump, `git revert`, an unhealthy build, a
//! refused change of the live color, a scale up), with one torn line.

mod common;

use std::path::{Path, PathBuf};

use common::teal;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/history")
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_recorded_log_reads_as_deploys_rollbacks_and_refusals() {
    let run = teal(repo_root(), &["history", "--state-dir", "tests/fixtures/history"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stdout.contains('\x1b'), "no colours when stdout is not a terminal");
    insta::assert_snapshot!(format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr));
}

#[test]
fn json_keeps_every_step_and_a_service_filters() {
    let run = teal(
        repo_root(),
        &[
            "history",
            "web",
            "--format",
            "json",
            "--state-dir",
            "tests/fixtures/history",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("events.jsonl:15: not an event, skipped"), "{run:?}");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    let entries = doc["entries"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("deploy", "ok"),
            ("deploy", "ok"),
            ("rollback", "ok"),
            ("deploy", "failed"),
            ("refused", "refused"),
            ("deploy", "ok"),
        ]
    );
    assert!(entries.iter().all(|e| e["service"] == "web"));
    assert_eq!(entries[1]["switch"], serde_json::json!({"from": "blue", "to": "green"}));
    let failed = &entries[3];
    assert!(
        failed["error"].as_str().unwrap().contains("-> 503 (expected 200)"),
        "{failed}"
    );
    assert_eq!(
        failed["steps"].as_array().unwrap().last().unwrap()["step"],
        "wait_healthy"
    );
}

#[test]
fn since_and_config_find_what_they_should() {
    // Deploys 3 hours and 10 minutes ago: --since 1h keeps the second.
    let recent = tempfile::tempdir().unwrap();
    let log = teal::events::EventLog::open(recent.path()).unwrap();
    for (commit, ago) in [("c0ffee0000", 3 * 3600), ("beef000000", 600)] {
        let mut e = teal::events::Event::outcome("web", commit, "refused", 0, Some("why".into()));
        let at = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        e.time = humantime::format_rfc3339_millis(at).to_string();
        log.append(&e).unwrap();
    }
    let dir_arg = recent.path().to_str().unwrap();
    let run = teal(repo_root(), &["history", "--since", "1h", "--state-dir", dir_arg]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("beef000000") && !run.stdout.contains("c0ffee0000"),
        "{run:?}"
    );
    let run = teal(repo_root(), &["history", "--since", "1m", "--state-dir", dir_arg]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "no deploys recorded in the last 1m\n"),
        "{run:?}"
    );

    // --config finds the state dir through the host config.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(fixture().join("events.jsonl"), state.join("events.jsonl")).unwrap();
    let config = dir.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{url: /srv/deploy.git}}\nproxy: {{kind: haproxy}}\nstate_dir: {}\n",
            state.display()
        ),
    )
    .unwrap();
    let via_config = teal(dir.path(), &["history", "api", "--config", config.to_str().unwrap()]);
    let via_state = teal(
        repo_root(),
        &["history", "api", "--state-dir", "tests/fixtures/history"],
    );
    assert_eq!(via_config.code, 0, "{via_config:?}");
    assert_eq!(via_config.stdout, via_state.stdout);
    assert_eq!(
        via_config.stdout.lines().count(),
        3,
        "a header and api's two deploys: {via_config:?}"
    );
}

#[test]
fn a_missing_log_or_config_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let run = teal(dir.path(), &["history", "--state-dir", "."]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("events.jsonl: no event log: nothing was deployed with this state directory yet"),
        "{run:?}"
    );
    let run = teal(dir.path(), &["history", "--config", "missing.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("finding the state directory (or pass --state-dir DIR)")
            && run.stderr.contains("missing.yaml"),
        "{run:?}"
    );
}
