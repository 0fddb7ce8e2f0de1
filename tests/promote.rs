//! Manual promotion end to end: the daemon on real Docker and a managed
//! proxy. A canary step `hold: until_promoted` waits with its split as it
//! is until `teal promote` commits the word; a blue-green with `promote:
//! manual` keeps all users on the old color (testers reach the new one)
//! until `teal abort` puts it back for good; a wait past
//! `progress_deadline` is aborted. Every word is a commit in git.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::load::{get, until_body};
use common::{app_image_version, git_in, proxy_or_fail, teal};

/// Versions served to `n` requests.
async fn versions(h: &TestHost, n: usize) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for _ in 0..n {
        out.insert(get(&h.listen, &h.host, &[]).await.body);
    }
    out
}

fn word(h: &TestHost, which: &str) {
    let run = teal(&h.work, &[which, &h.svc]);
    assert_eq!(run.code, 0, "teal {which}: {run:?}");
    assert!(run.stdout.contains("committed: "), "{}", run.stdout);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
}

async fn a_canary_waits_for_teal_promote(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("promote").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let canary = "strategy: canary\ncanary:\n  sticky: none\n  steps:\n    - {weight: 20, hold: 1s}\n    - {weight: 50, hold: until_promoted}\n";
    h.push("web 1.0", &h.service("blue", &v1, None, canary));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), canary));
    h.until_phase("waiting 1", 60).await;
    // It waits, split as the step says, across passes.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(h.phase().as_deref(), Some("waiting 1"), "{}", h.log_text());
    assert_eq!(versions(&h, 40).await.len(), 2, "{kind}: 50 % on each");
    h.until_logged("waiting for promotion of", 10).await;
    // Said once: the passes that go on waiting add nothing to the log.
    let waits: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| e.result.as_str() == "waiting")
        .collect();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(
        waits[0].error.as_deref().unwrap_or("").contains("teal promote"),
        "{waits:?}"
    );
    let failed = h.events().into_iter().filter(|e| e.result.as_str() == "failed").count();
    assert_eq!(failed, 0, "waiting is not failing");
    let status = h.status().await.to_string();
    assert!(status.contains("waiting"), "{status}");
    let said = teal(h.dir.path(), &["status", "--config", h.config.to_str().unwrap()]);
    assert!(
        said.stdout.contains("rollout: waiting for promotion of ") && said.stdout.contains(" (since 20"),
        "{said:?}"
    );

    let started = Instant::now();
    word(&h, "promote");
    h.until_phase("done", 60).await;
    println!(
        "{kind}: promote pushed -> all traffic on the new version: {:?}",
        started.elapsed()
    );
    // The record is written before traffic moves: wait for the move (a
    // sample taken at once caught "1.0 blue" once in CI).
    h.until_only_serves("2.0 green\n", 10).await;
    let file = std::fs::read_to_string(h.work.join(format!("services/{}.yaml", h.svc))).unwrap();
    assert!(file.contains("promote: "), "the word is in git: {file}");
}

async fn a_manual_blue_green_is_aborted(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("abort").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let bg = "blue-green:\n  promote: manual\n  match: {header: {X-Canary: \"1\"}}\n";
    h.push("web 1.0", &h.service("blue", &v1, None, bg));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), bg));
    h.until_phase("waiting 0", 60).await;
    // Users stay on the old version; testers reach the checked new one
    // (once the proxy acted on the record).
    until_body(&h.listen, &h.host, &[("X-Canary", "1")], "2.0 green\n", 5).await;
    assert_eq!(versions(&h, 20).await.into_iter().collect::<Vec<_>>(), ["1.0 blue\n"]);

    word(&h, "abort");
    h.until_phase("rolled_back", 60).await;
    let r = h.rollout().unwrap();
    assert_eq!(r["phase"]["reason"], "aborted", "{r}");
    h.until_only_serves("1.0 blue\n", 30).await;
    let t = get(&h.listen, &h.host, &[("X-Canary", "1")]).await;
    assert_eq!(t.body, "1.0 blue\n", "{kind}: no tester route after the abort");
    // Held: later passes do not start it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.phase().as_deref(), Some("rolled_back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_canary_waits_for_teal_promote() {
    a_canary_waits_for_teal_promote("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_waits_for_teal_promote() {
    a_canary_waits_for_teal_promote("nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_manual_blue_green_is_aborted() {
    a_manual_blue_green_is_aborted("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_manual_blue_green_is_aborted() {
    a_manual_blue_green_is_aborted("nginx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_past_the_progress_deadline_is_aborted() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("deadline").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let canary =
        "strategy: canary\ncanary:\n  steps:\n    - {weight: 30, hold: until_promoted}\n  progress_deadline: 3s\n";
    h.push("web 1.0", &h.service("blue", &v1, None, canary));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), canary));
    h.until_phase("waiting 0", 60).await;
    h.until_phase("rolled_back", 30).await;
    let r = h.rollout().unwrap();
    assert_eq!(r["phase"]["reason"], "deadline", "{r}");
    h.until_only_serves("1.0 blue\n", 30).await;
}
