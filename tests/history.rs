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

/// `--since` reads only the rotated files that may hold what it shows,
/// and a deploy whose lines straddle a rotation is still whole.
#[test]
fn since_over_rotated_files_keeps_a_deploy_that_straddles_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let at = |ago: u64| {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        humantime::format_rfc3339_millis(t).to_string()
    };
    let line = |ago: u64, commit: &str, step: &str| {
        format!("{{\"time\":\"{}\",\"commit\":\"{commit}\",\"service\":\"web\",\"step\":\"{step}\",\"result\":\"ok\",\"duration_ms\":5,\"color\":\"green\"}}\n", at(ago))
    };
    let old = "0ld0000000";
    let new = "5eed000000";
    // .2: a deploy three hours ago; .1: older lines, then the new deploy's
    // first steps; the current file: the rest of it.
    std::fs::write(
        dir.path().join("events.jsonl.2"),
        line(3 * 3600, old, "start_color") + &line(3 * 3600 - 1, old, "deploy"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("events.jsonl.1"),
        line(2 * 3600, old, "remove_color") + &line(1800, new, "pull_image") + &line(1799, new, "start_color"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("events.jsonl"),
        line(1798, new, "switch") + &line(1797, new, "deploy"),
    )
    .unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let run = teal(
        repo_root(),
        &["history", "--since", "1h", "--format", "json", "--state-dir", dir_arg],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = v["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{}", run.stdout);
    let steps = entries[0]["steps"].to_string();
    assert!(run.stdout.contains(new) && !run.stdout.contains(old), "{}", run.stdout);
    for step in ["pull_image", "start_color", "switch"] {
        assert!(steps.contains(step), "the deploy is whole: {}", run.stdout);
    }
    // The whole log still has both.
    let all = teal(repo_root(), &["history", "--state-dir", dir_arg]);
    assert!(
        all.stdout.contains(&old[..7]) && all.stdout.contains(&new[..7]),
        "{all:?}"
    );
}

/// A revert in the last hour is a rollback even when the switch it
/// undoes is in an older rotated file than any `--since` needs.
#[test]
fn since_judges_a_rollback_on_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let at = |ago: u64| {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        humantime::format_rfc3339_millis(t).to_string()
    };
    let line = |ago: u64, service: &str, commit: &str, step: &str, extra: &str| {
        format!("{{\"time\":\"{}\",\"commit\":\"{commit}\",\"service\":\"{service}\",\"step\":\"{step}\",\"result\":\"ok\",\"duration_ms\":5{extra}}}\n", at(ago))
    };
    let blue = ",\"color\":\"blue\",\"image\":\"web:1\"";
    let green = ",\"color\":\"green\",\"image\":\"web:2\"";
    let log = [
        // .2: web 1 on blue, then web 2 on green.
        line(4 * 3600, "web", "c1", "start_color", blue)
            + &line(4 * 3600, "web", "c1", "switch", ",\"color\":\"blue\"")
            + &line(4 * 3600, "web", "c1", "deploy", "")
            + &line(3 * 3600, "web", "c2", "start_color", green)
            + &line(
                3 * 3600,
                "web",
                "c2",
                "switch",
                ",\"color\":\"green\",\"from\":\"blue\"",
            )
            + &line(3 * 3600, "web", "c2", "deploy", ""),
        // .1: another service, two hours ago.
        line(2 * 3600, "api", "c2", "deploy", ""),
        // Now: the revert, back to the warm blue.
        line(600, "web", "c3", "switch", ",\"color\":\"blue\",\"from\":\"green\"")
            + &line(599, "web", "c3", "deploy", ""),
    ];
    for (name, text) in ["events.jsonl.2", "events.jsonl.1", "events.jsonl"].iter().zip(log) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let run = teal(
        repo_root(),
        &[
            "history",
            "--since",
            "1h",
            "--format",
            "json",
            "--state-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = v["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{}", run.stdout);
    assert_eq!(entries[0]["kind"], "rollback", "{}", run.stdout);
}

/// A log rotated as the daemon rotates it, each rotated file with its
/// summary: `--since` reads only the newer files yet shows what the whole
/// log shows for that window (a revert undoing a switch in a file it does
/// not read, a deploy begun before the window left out, one refused, one
/// unfinished); with summaries unreadable or gone, still the same.
#[test]
fn since_on_a_log_rotated_with_summaries_shows_what_the_whole_log_shows() {
    let dir = tempfile::tempdir().unwrap();
    let rotation = teal::events::Rotation {
        max_size: 400,
        keep: 20,
    };
    let log = teal::events::EventLog::open(dir.path())
        .unwrap()
        .with_rotation(rotation);
    let at =
        |ago: u64| humantime::format_rfc3339_millis(std::time::SystemTime::now() - std::time::Duration::from_secs(ago));
    let append = |ago: u64, service: &str, commit: &str, step: &str, result: &str, extra: &str| {
        let line = format!("{{\"time\":\"{}\",\"commit\":\"{commit}\",\"service\":\"{service}\",\"step\":\"{step}\",\"result\":\"{result}\",\"duration_ms\":5{extra}}}", at(ago));
        log.append(&serde_json::from_str(&line).unwrap()).unwrap();
    };
    let deploy = |ago: u64, service: &str, commit: &str, to: &str, from: &str| {
        let image = format!(",\"color\":\"{to}\",\"image\":\"{service}:{commit}\"");
        append(ago, service, commit, "start_color", "ok", &image);
        append(
            ago - 1,
            service,
            commit,
            "switch",
            "ok",
            &format!(",\"color\":\"{to}\"{from}"),
        );
        append(ago - 2, service, commit, "deploy", "ok", "");
    };
    let from_blue = ",\"from\":\"blue\"";
    deploy(5 * 3600, "web", "c1", "blue", "");
    deploy(4 * 3600, "web", "c2", "green", from_blue);
    deploy(3 * 3600, "api", "c1", "blue", "");
    append(2 * 3600, "web", "c3", "start_color", "failed", ",\"color\":\"blue\"");
    append(2 * 3600 - 1, "web", "c3", "deploy", "failed", "");
    // Begun before the window, ended in it: not shown.
    append(4800, "api", "c2", "pull_image", "ok", "");
    deploy(3000, "api", "c2", "green", from_blue);
    // The revert: back to blue, still on web:c1.
    append(
        1800,
        "web",
        "c4",
        "switch",
        "ok",
        ",\"color\":\"blue\",\"from\":\"green\"",
    );
    append(1799, "web", "c4", "deploy", "ok", "");
    append(1200, "api", "c3", "deploy", "refused", ",\"error\":\"why\"");
    deploy(600, "web", "c5", "green", from_blue);
    append(
        300,
        "api",
        "c4",
        "start_color",
        "ok",
        ",\"color\":\"blue\",\"image\":\"api:c4\"",
    );

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let rotated = names
        .iter()
        .filter(|n| n.rsplit('.').next().is_some_and(|n| n.parse::<u32>().is_ok()))
        .count();
    let summaries = names.iter().filter(|n| n.ends_with(".summary.json")).count();
    assert!(rotated > 5 && rotated < 20 && summaries == rotated, "{names:?}");

    let dir_arg = dir.path().to_str().unwrap();
    let entries = |args: &[&str]| {
        let run = teal(
            repo_root(),
            &[args, &["--format", "json", "--state-dir", dir_arg]].concat(),
        );
        assert_eq!(run.code, 0, "{run:?}");
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        v["entries"].as_array().expect("entries").clone()
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let window: Vec<serde_json::Value> = entries(&["history"])
        .into_iter()
        .filter(|e| humantime::parse_rfc3339(e["time"].as_str().unwrap()).unwrap() >= hour_ago)
        .collect();
    let shown = |e: &[serde_json::Value]| -> Vec<(String, String)> {
        e.iter()
            .map(|e| (e["commit"].to_string(), e["kind"].to_string()))
            .collect()
    };
    let want = [
        ("c4", "rollback"),
        ("c3", "refused"),
        ("c5", "deploy"),
        ("c4", "deploy"),
    ]
    .map(|(c, k)| (format!("\"{c}\""), format!("\"{k}\"")));
    assert_eq!(shown(&window), want);
    assert_eq!(entries(&["history", "--since", "1h"]), window);
    // The oldest file is not read: blanked to the same length, its summary
    // still stands for it (reading it would warn of lines not events).
    let oldest = dir.path().join(format!("events.jsonl.{rotated}"));
    let text = std::fs::read(&oldest).unwrap();
    std::fs::write(&oldest, vec![b'x'; text.len()]).unwrap();
    let run = teal(repo_root(), &["history", "--since", "1h", "--state-dir", dir_arg]);
    assert!(run.code == 0 && run.stderr.is_empty(), "{run:?}");
    std::fs::write(&oldest, text).unwrap();
    // Summaries not the files' (an older teal, a hand edit), then none.
    for n in names.iter().filter(|n| n.ends_with(".summary.json")) {
        std::fs::write(dir.path().join(n), "{\"version\":1,\"bytes\":").unwrap();
    }
    assert_eq!(entries(&["history", "--since", "1h"]), window);
    for n in names.iter().filter(|n| n.ends_with(".summary.json")) {
        std::fs::remove_file(dir.path().join(n)).unwrap();
    }
    assert_eq!(entries(&["history", "--since", "1h"]), window);
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
