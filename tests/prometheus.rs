//! `analysis.prometheus` against a real Prometheus server (Debian's, started
//! here on 127.0.0.1) scraping the fixture app's `/metrics` in the
//! service's containers, through `teal daemon`, real Docker and a managed
//! HAProxy: a canary whose new version fails per Prometheus is rolled
//! back (all traffic on the old color, the reason naming prometheus), a
//! good one completes, a Prometheus that cannot be reached aborts the
//! rollout after the inconclusive limit, never promoting it, and a rolling
//! batch failing per Prometheus (nginx balancer) is rolled back. Each host
//! config allows its Prometheus in `policy.prometheus`.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::prometheus::{prometheus_or_fail, PromServer};
use common::wrk::Wrk;
use common::{app_image_version, failing_app_image, free_port, get_via, proxy_or_fail, try_get_via};

/// The new color's share of 500s, over the last 5 s of 1 s scrapes.
const RATIO: &str = r#"sum(rate(app_errors_total{service="{{service}}",color="{{color}}"}[5s])) / sum(rate(app_requests_total{service="{{service}}",color="{{color}}"}[5s]))"#;

/// A canary judged by Prometheus alone: the error ratio at most 5 %,
/// evaluated every second; the first seconds of a new color have no
/// series yet (discovery, two scrapes for a rate), hence 10 inconclusive
/// evaluations before an abort.
fn canary(url: &str, hold: &str) -> String {
    format!(
        "strategy: canary\ncanary:\n  steps:\n    - {{weight: 20, hold: {hold}}}\n    - {{weight: 50, hold: {hold}}}\nanalysis:\n  prometheus:\n    url: {url}\n    query: '{RATIO}'\n    max: 0.05\n    interval: 1s\n    inconclusive: 10\n"
    )
}

/// Waits for the rollout to start and end: its last phase (`done` or
/// `rolled_back`); fails with what Prometheus and teal saw after `secs`.
async fn until_end(h: &TestHost, prom: &PromServer, secs: u64) -> String {
    h.until_phase("step 0", 30).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        match h.phase() {
            Some(p) if p == "done" || p == "rolled_back" => return p,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!(
        "the rollout did not end in {secs} s (now {:?})\ntargets: {}\nprometheus log:\n{}\ndaemon log:\n{}",
        h.phase(),
        prom.targets().await,
        prom.log(),
        h.log_text()
    );
}

#[tokio::test]
async fn a_canary_failing_per_prometheus_is_rolled_back() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("prom-bad").await;
    let prom = PromServer::start(&h.svc).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 30).await;
    let file = canary(&prom.url, "20s");
    h.push("web 1.0", &h.service("blue", &v1, None, &file));
    h.managed_config("haproxy");
    h.allow_prometheus(&format!("{}/", prom.url));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    let load = Wrk::start(&h.listen, &h.host, 60);
    h.push("web 3.0", &h.service("green", &v1, Some(&bad), &file));
    let end = until_end(&h, &prom, 60).await;
    let _ = load.stop();
    assert_eq!(end, "rolled_back", "{}", h.log_text());
    h.until_only_serves("1.0 blue\n", 10).await;
    let r = h.rollout().unwrap();
    assert_eq!(r["phase"]["reason"], "prometheus", "{r}");
    let figures = r["phase"]["figures"].as_str().unwrap();
    eprintln!("rolled back: {figures}");
    let rendered = format!("app_errors_total{{service=\"{}\",color=\"green\"}}", h.svc);
    assert!(
        figures.starts_with("prometheus: ") && figures.contains(" > 0.05 (") && figures.contains(&rendered),
        "{figures}"
    );
    // The figure is the 30 % the bad version fails, as Prometheus saw it.
    let value: f64 = figures["prometheus: ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.1..=0.5).contains(&value), "{figures}");
    let status = h.status().await;
    assert_eq!(
        status["services"][&h.svc]["rolled_back"]["figures"], figures,
        "{status}"
    );
    let metrics = try_get_via(&h.api, "localhost", "/metrics").await.unwrap().1;
    assert!(
        metrics.contains(&format!(
            "teal_rollbacks_total{{service=\"{}\",reason=\"prometheus\"}} 1",
            h.svc
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_good_canary_judged_by_prometheus_completes() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("prom-good").await;
    let prom = PromServer::start(&h.svc).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let file = canary(&prom.url, "2s");
    h.push("web 1.0", &h.service("blue", &v1, None, &file));
    h.managed_config("haproxy");
    h.allow_prometheus(&format!("{}/", prom.url));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    let load = Wrk::start(&h.listen, &h.host, 60);
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), &file));
    let end = until_end(&h, &prom, 60).await;
    let r = load.stop();
    assert_eq!(
        end,
        "done",
        "targets: {}\nprometheus log:\n{}\ndaemon log:\n{}",
        prom.targets().await,
        prom.log(),
        h.log_text()
    );
    assert_eq!(r.failed(), 0, "{r:?}");
    h.until_only_serves("2.0 green\n", 10).await;
    // Prometheus saw the new color's traffic, and none of it failed.
    let requests = format!("sum(app_requests_total{{service=\"{}\",color=\"green\"}})", h.svc);
    assert!(
        prom.value(&requests).await.is_some_and(|n| n > 0.0),
        "{}",
        prom.targets().await
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_aborts_after_the_inconclusive_limit() {
    proxy_or_fail("haproxy");
    prometheus_or_fail();
    let h = TestHost::new("prom-down").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    // Nothing listens there: every evaluation is inconclusive.
    let url = format!("http://127.0.0.1:{}", free_port());
    let file = format!(
        "strategy: canary\ncanary:\n  steps:\n    - {{weight: 20, hold: 1s}}\nanalysis:\n  prometheus: {{url: '{url}', query: 'sum(up{{job=\"{{{{service}}}}\"}})', min: 1, interval: 1s, inconclusive: 3}}\n"
    );
    h.push("web 1.0", &h.service("blue", &v1, None, &file));
    h.managed_config("haproxy");
    h.allow_prometheus(&format!("{url}/"));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), &file));
    h.until_phase("step 0", 30).await;
    let start = Instant::now();
    let mut phases = vec![];
    while start.elapsed() < Duration::from_secs(30) {
        let p = h.phase().unwrap_or_default();
        if phases.last() != Some(&p) {
            phases.push(p.clone());
        }
        if p == "rolled_back" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Held at the first step (never promoted) until the third evaluation
    // without a value, about 2 s after the step began.
    assert_eq!(phases, ["step 0", "rolled_back"], "{}", h.log_text());
    let took = start.elapsed();
    eprintln!("step 0 -> rolled back in {took:?}");
    assert!(took < Duration::from_secs(10), "aborted after {took:?}");
    h.until_only_serves("1.0 blue\n", 10).await;
    let r = h.rollout().unwrap();
    assert_eq!(r["phase"]["reason"], "inconclusive", "{r}");
    let figures = r["phase"]["figures"].as_str().unwrap();
    assert!(
        figures.starts_with("prometheus: no value 3 times in a row, last: cannot reach Prometheus at ")
            && figures.contains(&url),
        "{figures}"
    );
    assert_eq!(get_via(&h.listen, &h.host, "/").await.1, "1.0 blue\n");
}

#[tokio::test]
async fn a_rolling_batch_failing_per_prometheus_is_rolled_back() {
    proxy_or_fail("nginx");
    let h = TestHost::new("prom-roll").await;
    let prom = PromServer::start(&h.svc).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let bad = failing_app_image(&h.docker, "3.0", 30).await;
    // Rolling keeps one color: the query judges blue, old and new
    // replicas alike (the old one, out of the proxy, adds nothing).
    let file = format!(
        "strategy: rolling\nrolling: {{max_surge: 1, hold: 20s}}\nanalysis:\n  prometheus:\n    url: {}\n    query: '{RATIO}'\n    max: 0.05\n    interval: 1s\n    inconclusive: 10\n",
        prom.url
    );
    h.push("web 1.0", &h.service("blue", &v1, None, &file));
    h.managed_config("nginx");
    h.allow_prometheus(&format!("{}/", prom.url));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    let load = Wrk::start(&h.listen, &h.host, 60);
    h.push("web 3.0", &h.service("blue", &bad, None, &file));
    h.until_phase("rolled_back", 60).await;
    let _ = load.stop();
    h.until_only_serves("1.0 blue\n", 10).await;
    let r = h.rollout().unwrap();
    assert_eq!(r["phase"]["reason"], "prometheus", "{r}");
    let figures = r["phase"]["figures"].as_str().unwrap();
    assert!(
        figures.contains(&format!("service=\"{}\",color=\"blue\"", h.svc)),
        "{figures}"
    );
}
