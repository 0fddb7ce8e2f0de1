//! Traffic for people end to end: the daemon on real Docker and both
//! managed proxies. During a canary step testers (a header) reach the new
//! version and a client with the sticky cookie stays on one version; a
//! committed `maintenance:` turns the route into a 503 page without
//! touching a container, and removing it serves again.

mod common;

use std::time::{Duration, Instant};

use common::host::TestHost;
use common::load::{get, until_body};
use common::{app_image_version, proxy_or_fail};

const CANARY: &str =
    "strategy: canary\ncanary:\n  steps:\n    - {weight: 30, hold: 8s}\n  match: {header: {X-Canary: \"1\"}}\n";

async fn until_status(h: &TestHost, status: u16, secs: u64) -> common::load::Answer {
    let start = Instant::now();
    loop {
        let a = get(&h.listen, &h.host, &[]).await;
        if a.status == status {
            return a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "never {status} (now {} {}); log:\n{}",
            a.status,
            a.body,
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn testers_sticky_clients_and_maintenance(kind: &str) {
    proxy_or_fail(kind);
    let h = TestHost::new("traffic").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, CANARY));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), CANARY));
    h.until_phase("step 0", 60).await;
    // The record is written before the proxy acts: wait for the route.
    until_body(&h.listen, &h.host, &[("X-Canary", "1")], "2.0 green\n", 5).await;
    for _ in 0..10 {
        let a = get(&h.listen, &h.host, &[("X-Canary", "1")]).await;
        assert_eq!((a.status, a.body.as_str()), (200, "2.0 green\n"), "{kind}: a tester");
    }
    // A client keeps the version its cookie's bucket gave it.
    let first = get(&h.listen, &h.host, &[]).await;
    let cookie = first.cookie.expect("the proxy sets the sticky cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with(&format!("teal_{}=", h.svc)), "{cookie}");
    for _ in 0..20 {
        let a = get(&h.listen, &h.host, &[("Cookie", &cookie)]).await;
        assert_eq!(a.body, first.body, "{kind}: {cookie} changed version");
        assert!(a.cookie.is_none(), "{kind}: a client with a bucket keeps it");
    }
    h.until_phase("done", 60).await;
    h.until_serves("2.0 green\n", 30).await;

    let before = h.ps("{{.ID}} {{.Status}}");
    let down = format!("{CANARY}maintenance: {{message: \"Back at 14:00\", retry_after: 2m}}\n");
    h.push("maintenance", &h.service("green", &v1, Some(&v2), &down));
    let a = until_status(&h, 503, 30).await;
    assert_eq!(a.retry_after.as_deref(), Some("120"), "{kind}");
    assert!(a.body.contains("Back at 14:00"), "{kind}: {}", a.body);
    let ids = |lines: Vec<String>| -> Vec<String> {
        lines.iter().map(|l| l.split(' ').next().unwrap().to_string()).collect()
    };
    assert_eq!(
        ids(h.ps("{{.ID}} {{.Status}}")),
        ids(before.clone()),
        "{kind}: containers untouched"
    );
    h.push("back", &h.service("green", &v1, Some(&v2), CANARY));
    let a = until_status(&h, 200, 30).await;
    assert_eq!(a.body, "2.0 green\n", "{kind}");
    assert_eq!(ids(h.ps("{{.ID}} {{.Status}}")), ids(before), "{kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_testers_sticky_clients_and_maintenance() {
    testers_sticky_clients_and_maintenance("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_testers_sticky_clients_and_maintenance() {
    testers_sticky_clients_and_maintenance("nginx").await;
}
