//! A repo writer who points `analysis.prometheus.url` at something that is
//! not the host's Prometheus (an internal admin endpoint, a cloud metadata
//! address): the daemon must never send it a request. Reproduced against
//! a real daemon, Docker and a managed HAProxy, with a listener that plays
//! the target and records every request it gets.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::hostile::FakePeer;
use common::{app_image_version, get_via, git_in, proxy_or_fail};

/// A canary judged by a Prometheus at `url`.
fn canary(url: &str) -> String {
    format!(
        "strategy: canary\ncanary:\n  steps:\n    - {{weight: 20, hold: 2s}}\nanalysis:\n  prometheus:\n    url: '{url}'\n    query: 'sum(up)'\n    min: 1\n    interval: 1s\n"
    )
}

/// Waits until the daemon refuses the work tree's head, by policy or as
/// an invalid config; the reason.
async fn until_refused(h: &TestHost, target: &FakePeer) -> String {
    let head = git_in(&h.work, &["rev-parse", "HEAD"]);
    let start = Instant::now();
    loop {
        let s = h.status().await;
        if s["refused"]["commit"].as_str() == Some(head.as_str()) {
            return s["refused"]["reason"].as_str().unwrap().to_string();
        }
        let errors = s["config_errors"].as_array().filter(|e| !e.is_empty());
        if let (Some(errors), Some(true)) = (errors, s["fetched_commit"].as_str().map(|c| c == head)) {
            return format!("{errors:?}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "head not refused in 30 s; the target got {:?}\n{}",
            target.heads(),
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before: a commit naming any URL made the daemon GET it every interval
/// for the whole canary. With no `policy.prometheus` the repo may name no
/// Prometheus: the commit is refused at its line, nothing is created, and
/// the URL gets no request.
#[tokio::test]
async fn a_prometheus_url_the_host_does_not_allow_is_refused_and_never_requested() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("prom-policy").await;
    let target = FakePeer::start(false);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let before = h.ps("{{.Names}} {{.Image}}");

    h.push("canary", &h.service("green", &v1, Some(&v2), &canary(&target.url)));
    let reason = until_refused(&h, &target).await;
    assert!(
        reason.contains(&format!("services/{}.yaml:", h.svc)) && reason.contains("(policy.prometheus lists none)"),
        "{reason}"
    );
    // Long enough for a canary to start and query twice, had it been admitted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(target.heads(), Vec::<String>::new(), "{}", h.log_text());
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
    assert_eq!(h.ps("{{.Names}} {{.Image}}"), before, "nothing created");
}

/// With `policy.prometheus: [<listener>/prom]`, URLs that only look like
/// it are refused and get no request: another path that starts with the
/// same text, a `..` out of it, another name of the same host, and
/// credentials before an `@`. The allowed one is queried, so the listener
/// would have seen the others.
#[tokio::test]
async fn only_prometheus_urls_under_a_policy_prefix_are_requested() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("prom-prefix").await;
    let target = FakePeer::start(false);
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    h.allow_prometheus(&format!("{}/prom", target.url));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let before = h.ps("{{.Names}} {{.Image}}");

    let (t, port) = (&target.url, target.url.rsplit(':').next().unwrap());
    let outside = "is outside this host's policy (policy.prometheus: ";
    let cases = [
        (t.clone(), outside),
        (format!("{t}/prometheus-admin"), outside),
        (format!("{t}/prom/../admin"), outside),
        (format!("http://localhost:{port}/prom"), outside),
        // Refused as it loads: credentials do not belong in git.
        (
            format!("http://127.0.0.1:{port}@{}/prom", t.trim_start_matches("http://")),
            "carries credentials",
        ),
    ];
    for (url, want) in &cases {
        h.push("elsewhere", &h.service("green", &v1, Some(&v2), &canary(url)));
        let reason = until_refused(&h, &target).await;
        assert!(
            reason.contains(&format!("services/{}.yaml:", h.svc)) && reason.contains(want),
            "{url}: {reason}"
        );
        assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n", "{url}");
        assert_eq!(h.ps("{{.Names}} {{.Image}}"), before, "nothing created for {url}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(target.heads(), Vec::<String>::new(), "{}", h.log_text());

    h.push(
        "allowed",
        &h.service("green", &v1, Some(&v2), &canary(&format!("{t}/prom"))),
    );
    let start = Instant::now();
    while target.heads().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the allowed URL was never queried\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heads = target.heads();
    assert!(
        heads
            .iter()
            .all(|r| r.starts_with("GET /prom/api/v1/query?query=sum%28up%29 ")),
        "{heads:?}"
    );
}
