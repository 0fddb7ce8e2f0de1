//! Notifications from a real daemon deploying with Docker and a managed
//! HAProxy, to real HTTP receivers in the test: webhook events signed
//! with HMAC-SHA256, commit statuses as the GitHub REST API takes them,
//! and receivers that are down or never answer, which must not slow
//! deploys.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use common::host::TestHost;
use common::{app_image_version, git_in, proxy_or_fail};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: HeaderMap,
    body: serde_json::Value,
    raw: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Got>>>;

/// An HTTP server on a free loopback port that records every request and
/// answers 201; its base URL and what it got.
async fn receiver() -> (String, Log) {
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(
            |State(log): State<Log>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
                log.lock().unwrap().push(Got {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or_default(),
                    raw: body.to_vec(),
                });
                (axum::http::StatusCode::CREATED, "{}")
            },
        )
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

/// Waits until `pick` finds what it wants among the requests so far.
async fn until<T>(log: &Log, h: &TestHost, secs: u64, what: &str, pick: impl Fn(&[Got]) -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = pick(&log.lock().unwrap()) {
            return t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not received; got {:#?}\n{}",
            log.lock()
                .unwrap()
                .iter()
                .map(|g| (&g.path, &g.body))
                .collect::<Vec<_>>(),
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn secret_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    f
}

/// Appends `extra` (top-level YAML) to the host config.
fn add_to_config(h: &TestHost, extra: &str) {
    let mut text = std::fs::read_to_string(&h.config).unwrap();
    text.push_str(extra);
    std::fs::write(&h.config, text).unwrap();
}

/// The webhook events received for `service`, in order.
fn events(got: &[Got], service: &str) -> Vec<serde_json::Value> {
    got.iter()
        .filter(|g| g.path == "/hook" && g.body["service"] == service)
        .map(|g| g.body.clone())
        .collect()
}

/// The commit statuses received for `sha`: (state, context).
fn statuses(got: &[Got], sha: &str) -> Vec<(String, String)> {
    got.iter()
        .filter(|g| g.path == format!("/api/repos/ops/deploy/statuses/{sha}"))
        .map(|g| {
            (
                g.body["state"].as_str().unwrap_or("").to_string(),
                g.body["context"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deploys_are_told_by_signed_webhooks_and_commit_statuses() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("notify").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let (url, log) = receiver().await;
    let secrets = tempfile::tempdir().unwrap();
    let key = secret_file(secrets.path(), "notify_secret", "s3cret-key\n");
    let token = secret_file(secrets.path(), "gh_token", "gh-tok-123\n");
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let c1 = git_in(&h.work, &["rev-parse", "HEAD"]);
    h.managed_config("haproxy");
    let prefix = v1.split(':').next().unwrap();
    add_to_config(
        &h,
        &format!(
            "host: {{name: h1}}\npolicy: {{images: [{prefix}]}}\nnotify:\n  - url: {url}/hook\n    secret_file: {}\n  - github: {{api: {url}/api, repo: ops/deploy, token_file: {}}}\n",
            key.display(),
            token.display()
        ),
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let context = format!("teal/h1/{}", h.svc);
    until(&log, &h, 30, "success on the first commit", |g| {
        statuses(g, &c1)
            .contains(&("success".into(), context.clone()))
            .then_some(())
    })
    .await;

    let start = Instant::now();
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    let c2 = git_in(&h.work, &["rev-parse", "HEAD"]);
    h.until_serves("2.0 green\n", 60).await;
    eprintln!("push to serving 2.0, a receiver that answers: {:?}", start.elapsed());
    let got = until(&log, &h, 30, "deployed 2.0", |g| {
        let e = events(g, &h.svc);
        e.iter()
            .any(|e| e["event"] == "deployed" && e["commit"] == c2.as_str())
            .then(|| g.to_vec())
    })
    .await;

    // Every webhook body is signed with the secret, as GitHub signs its own.
    for g in got.iter().filter(|g| g.path == "/hook") {
        let sig = g.headers["x-teal-signature-256"].to_str().unwrap();
        assert_eq!(sig, teal::notify::signature(b"s3cret-key", &g.raw), "{:?}", g.body);
        assert_eq!(g.method, "POST");
        assert_eq!(g.headers["content-type"], "application/json");
    }
    let second: Vec<serde_json::Value> = events(&got, &h.svc)
        .into_iter()
        .filter(|e| e["commit"] == c2.as_str())
        .collect();
    let kinds: Vec<&str> = second.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["started", "switched", "deployed"], "{second:#?}");
    let switched = &second[1];
    assert_eq!(switched["host"], "h1");
    assert_eq!(switched["color"], "green");
    assert_eq!(switched["from"], "blue");
    assert_eq!(switched["image"], v2.as_str());
    assert!(switched["time"].as_str().unwrap().ends_with('Z'), "{switched}");
    assert_eq!(second[2]["color"], "green");

    // Commit statuses: pending when the deploy starts, success once it serves.
    assert_eq!(
        statuses(&got, &c2),
        [
            ("pending".to_string(), context.clone()),
            ("success".to_string(), context.clone())
        ]
    );
    let status = got
        .iter()
        .find(|g| g.path.ends_with(&c2) && g.body["state"] == "success")
        .unwrap();
    assert_eq!(status.headers["authorization"], "Bearer gh-tok-123");
    let agent = status.headers["user-agent"].to_str().unwrap();
    assert!(agent.starts_with("teal/"), "{agent}");
    assert!(
        status.body["description"].as_str().unwrap().contains("green"),
        "{}",
        status.body
    );

    // A refused head: failure on that commit, for the host as a whole.
    h.push(
        "outside policy",
        &h.service("blue", "registry.example.com/miner:1", Some(&v2), ""),
    );
    let c3 = git_in(&h.work, &["rev-parse", "HEAD"]);
    let got = until(&log, &h, 30, "failure on the refused commit", |g| {
        (!statuses(g, &c3).is_empty()).then(|| g.to_vec())
    })
    .await;
    assert_eq!(statuses(&got, &c3), [("failure".to_string(), "teal/h1".to_string())]);
    let refused = events(&got, "(repo)");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["event"], "refused");
    assert_eq!(refused[0]["commit"], c3.as_str());
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("outside this host's policy"),
        "{refused:#?}"
    );
    assert_eq!(common::get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");

    // A deploy that fails its health checks: a failed event and a failure.
    let sick = app_image_version(&h.docker, "3.0", false).await;
    let fast = common::host::Checks {
        deadline: "4s",
        ..Default::default()
    };
    h.push("web 3.0", &h.service_checked("blue", &sick, Some(&v2), &fast, ""));
    let c4 = git_in(&h.work, &["rev-parse", "HEAD"]);
    let got = until(&log, &h, 60, "failure on the failed deploy", |g| {
        statuses(g, &c4).iter().any(|(s, _)| s == "failure").then(|| g.to_vec())
    })
    .await;
    assert_eq!(
        statuses(&got, &c4),
        [
            ("pending".to_string(), context.clone()),
            ("failure".to_string(), context.clone())
        ]
    );
    let failed: Vec<serde_json::Value> = events(&got, &h.svc)
        .into_iter()
        .filter(|e| e["commit"] == c4.as_str() && e["event"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["image"], sick.as_str());
    assert!(!failed[0]["reason"].as_str().unwrap_or("").is_empty(), "{failed:#?}");
    assert_eq!(common::get_via(&h.listen, &h.host, "/").await.1, "2.0 green\n");
    let log_text = h.log_text();
    assert!(
        !log_text.contains("s3cret-key") && !log_text.contains("gh-tok-123"),
        "no secret in the log"
    );
}

#[tokio::test]
async fn receivers_that_are_down_or_silent_do_not_slow_deploys() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("notifydown").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    // Nothing listens on `down`; `silent` accepts connections and never answers.
    let down = format!("http://127.0.0.1:{}", common::free_port());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || silent.incoming().take(64).flatten().collect::<Vec<_>>());
    let secrets = tempfile::tempdir().unwrap();
    let token = secret_file(secrets.path(), "gh_token", "tok\n");
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    add_to_config(
        &h,
        &format!(
            "notify:\n  - url: {down}/hook\n  - url: {silent_url}/hook\n  - github: {{api: {silent_url}, repo: ops/deploy, token_file: {}}}\n",
            token.display()
        ),
    );
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let start = Instant::now();
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    let took = start.elapsed();
    eprintln!("push to serving 2.0, receivers down or silent: {took:?}");
    // The status API answers while notices wait on the silent receiver
    // (a deadline for an answer at all; the deploy's time with receivers
    // down is a figure in BENCHMARKS.md, not a test).
    let status = tokio::time::timeout(Duration::from_secs(5), h.status())
        .await
        .expect("the status API answers while a receiver is silent");
    assert!(status["services"].get(&h.svc).is_some());
    // The refused connections are retried and then given up, with a line.
    h.until_logged("notify: given up", 30).await;
    drop(held);
}
