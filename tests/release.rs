//! The release command against real containers and a managed HAProxy:
//! it runs once per commit before the new color starts, with the color's
//! secrets; one that fails or times out stops the deploy with traffic
//! where it was, and is not run again for that commit; one cut off by a
//! teal crash (kill -9) is waited for by the next teal, not run twice.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::age::{encrypt, entry, keygen};
use common::host::TestHost;
use common::{app_image_version, get_via, proxy_or_fail, teal, unique};

/// The release record of the test's service, as JSON.
fn record(h: &TestHost) -> serde_json::Value {
    let text = std::fs::read_to_string(h.state.join(format!("releases/{}.json", h.svc))).expect("a release record");
    serde_json::from_str(&text).unwrap()
}

/// The `release:` block running the demo app's release mode (the
/// image's entrypoint is the app).
fn release(mode: &str, timeout: &str) -> String {
    format!("release: {{command: [release, '{mode}', DB], timeout: {timeout}}}\n")
}

/// A host with one age key, the DB secret encrypted to it by the age
/// CLI, a managed HAProxy, and the service's secrets file committed.
async fn host(prefix: &str, value: &str) -> TestHost {
    proxy_or_fail("haproxy");
    let h = TestHost::new(prefix).await;
    let (key, recipient) = keygen(h.dir.path(), "age.key");
    let armored = encrypt("-r", &recipient, value);
    std::fs::create_dir_all(h.work.join("secrets")).unwrap();
    std::fs::write(h.work.join(format!("secrets/{}.yaml", h.svc)), entry("DB", &armored)).unwrap();
    h.managed_config("haproxy");
    let mut config = std::fs::read_to_string(&h.config).unwrap();
    config.push_str(&format!("secrets: {{identity_file: {}}}\n", key.display()));
    std::fs::write(&h.config, config).unwrap();
    h
}

fn apply(h: &TestHost) -> common::Run {
    teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()])
}

/// Whether the release container of the service exists.
fn release_container(h: &TestHost) -> Option<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name=^teal-{}-release$", h.svc)])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!id.is_empty()).then_some(id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_runs_once_before_the_new_color_and_a_failure_or_timeout_keeps_traffic() {
    let value = unique("pw");
    let h = host("release", &value).await;
    let (v1, v2) = (
        app_image_version(&h.docker, "1.0", true).await,
        app_image_version(&h.docker, "2.0", true).await,
    );
    h.push("with a release", &h.service("blue", &v1, None, &release("ok", "30s")));
    let first = apply(&h);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    let r = record(&h);
    assert_eq!(
        (r["phase"].as_str(), r["exit_code"].as_i64()),
        (Some("succeeded"), Some(0)),
        "{r}"
    );
    let out = r["output"].to_string();
    assert!(
        out.contains("release: DB=<secret DB>") && out.contains("release: done"),
        "the container got the secret, blanked out: {r}"
    );
    assert!(
        first
            .stderr
            .contains("release: exit 0; last lines: release: starting (ok)"),
        "{first:?}"
    );
    assert!(release_container(&h).is_none(), "removed once recorded");
    // The same commit again: nothing to do, nothing run.
    let again = apply(&h);
    assert!(again.code == 0 && !again.stderr.contains("release"), "{again:?}");

    // A release that fails: green never starts, traffic stays.
    h.push(
        "a failing migration",
        &h.service("green", &v1, Some(&v2), &release("fail", "30s")),
    );
    let failed = apply(&h);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(
        failed.stderr.contains("exited 3")
            && failed.stderr.contains("migration 42 failed")
            && failed.stderr.contains("Traffic stays where it was"),
        "{failed:?}"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    assert!(
        h.ps("{{.Names}}").iter().all(|n| !n.contains("green")),
        "{:?}",
        h.ps("{{.Names}}")
    );
    let before = record(&h);
    let retried = apply(&h);
    assert!(
        retried.code == 1 && retried.stderr.contains("not run again for this commit"),
        "{retried:?}"
    );
    assert_eq!(record(&h), before, "not run again");

    // One that takes too long: killed at its timeout, traffic stays.
    h.push(
        "a slow migration",
        &h.service("green", &v1, Some(&v2), &release("sleep:60000", "2s")),
    );
    let started = Instant::now();
    let slow = apply(&h);
    assert!(
        slow.code == 1 && slow.stderr.contains("timed out after 2s and was killed"),
        "{slow:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the timeout held: {:?}",
        started.elapsed()
    );
    assert!(release_container(&h).is_none());
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");

    // Fixed: it runs, then green starts and takes traffic.
    h.push("fixed", &h.service("green", &v1, Some(&v2), &release("ok", "30s")));
    let fixed = apply(&h);
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");
    let events = std::fs::read_to_string(h.state.join("events.jsonl")).unwrap();
    let releases: Vec<&str> = events.lines().filter(|l| l.contains("\"step\":\"release\"")).collect();
    assert_eq!(releases.len(), 5, "{events}");
    assert!(!events.contains(&value) && !format!("{first:?}{failed:?}{fixed:?}").contains(&value));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_cut_off_by_a_crash_is_waited_for_not_run_twice() {
    let value = unique("pw");
    let h = host("relcrash", &value).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let since = chrono_now();
    h.push(
        "a long migration",
        &h.service("blue", &v1, None, &release("sleep:6000", "60s")),
    );
    let mut daemon = h.start_daemon();
    let start = Instant::now();
    let id = loop {
        if let Some(id) = release_container(&h) {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no release started; log:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record(&h)["phase"], "started", "recorded before it runs");
    daemon.kill_9();
    assert_eq!(
        release_container(&h).as_deref(),
        Some(id.as_str()),
        "the release runs on without teal"
    );
    let _again = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;
    let r = record(&h);
    assert_eq!(r["phase"], "succeeded", "{r}");
    let starts = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.as_str().unwrap().contains("release: starting"))
        .count();
    assert_eq!(starts, 1, "one run: {r}");
    // Docker saw one release container made, ever.
    let events = Command::new("docker")
        .args([
            "events",
            "--since",
            &since,
            "--until",
            &chrono_now(),
            "--filter",
            &format!("container=teal-{}-release", h.svc),
            "--filter",
            "event=create",
            "--format",
            "{{.ID}}",
        ])
        .output()
        .unwrap();
    let creates = String::from_utf8_lossy(&events.stdout).lines().count();
    assert_eq!(creates, 1, "created once: {}", String::from_utf8_lossy(&events.stdout));
    assert!(release_container(&h).is_none());
    assert!(!h.log_text().contains(&value));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_release_gets_the_services_own_network_and_volume_and_its_lines_reach_the_log() {
    let value = unique("pw");
    let h = host("relnet", &value).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let (net, vol) = (format!("{}-net", h.svc), format!("{}-data", h.svc));
    let extra = format!("{}network: {net}\nvolumes: ['{vol}:/data']\n", release("ok", "30s"));
    h.push("own network and volume", &h.service("blue", &v1, None, &extra));
    let first = apply(&h);
    // Cleanup first: the network and volume outlive the host's containers.
    let inspect = |what: &str, name: &str| {
        Command::new("docker")
            .args([what, "inspect", name])
            .output()
            .unwrap()
            .status
            .success()
    };
    let (had_net, had_vol) = (inspect("network", &net), inspect("volume", &vol));
    assert_eq!(
        first.code, 0,
        "the release made its network before any color did: {first:?}"
    );
    assert!(had_net && had_vol, "network {had_net}, volume {had_vol}");
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    let events = std::fs::read_to_string(h.state.join("events.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(
        events
            .lines()
            .find(|l| l.contains("\"step\":\"release\""))
            .expect("a release line"),
    )
    .unwrap();
    let note = line["note"].as_str().unwrap_or_default();
    assert!(
        line["result"] == "ok" && note.starts_with("exit 0; last lines: ") && note.contains("release: done"),
        "{line}"
    );
    assert!(!events.contains(&value), "{events}");
    let history = teal(h.dir.path(), &["history", "--state-dir", h.state.to_str().unwrap()]);
    assert!(history.stdout.contains("release: exit 0; last lines: "), "{history:?}");
    drop(h);
    let _ = Command::new("docker").args(["volume", "rm", "-f", &vol]).output();
    let _ = Command::new("docker").args(["network", "rm", &net]).output();
}

/// `switch.pause`: while a 3 s migration runs, the route's new requests
/// wait in nginx, then go on to the old color at once when it ends; none
/// fails, and the release's line says how long they were held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_holds_requests_while_the_release_runs_and_none_fails() {
    proxy_or_fail("nginx");
    let h = TestHost::new("relpause").await;
    h.managed_config("nginx");
    let (v1, v2) = (
        app_image_version(&h.docker, "1.0", true).await,
        app_image_version(&h.docker, "2.0", true).await,
    );
    let extra = "release: {command: [release, 'sleep:3000'], timeout: 60s}\nswitch: {drain: 100ms, pause: 10s}\n";
    // The file's own `switch:` line, with the pause.
    let file = |active: &str, green: Option<&str>| {
        h.service(active, &v1, green, extra)
            .replace("switch: {drain: 100ms}\n", "")
    };
    h.push("with a paused release", &file("blue", None));
    let first = apply(&h);
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stderr.contains("release: exit 0") && !first.stderr.contains("requests were held"),
        "a first deploy has no route to hold: {first:?}"
    );
    let load = common::load::Load::start(&h.listen, &h.host, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.push("2.0 with a migration", &file("green", Some(&v2)));
    let deploy = apply(&h);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = load.stop().await;
    println!("a 3 s release with switch.pause 10s under load: {t:?}");
    assert_eq!(deploy.code, 0, "{deploy:?}");
    assert!(
        deploy.stderr.contains("requests were held for ") && deploy.stderr.contains("while it ran (switch.pause)"),
        "{deploy:?}"
    );
    assert_eq!((t.errors, t.other, t.unavailable), (0, 0, 0), "{t:?}");
    assert!(
        t.ok > 0 && t.slowest >= Duration::from_secs(2),
        "held while it ran: {t:?}"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");
}

/// Now as Unix seconds, for `docker events --since/--until`.
fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}
