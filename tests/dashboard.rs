//! The dashboard of a real daemon (real Docker, a managed HAProxy, a bare
//! repo the test pushes to): its first view as plain HTML, its event
//! stream, and a real browser (headless chromium through WebDriver) that
//! sees a deploy and a rollback happen without reloading the page.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::host::TestHost;
use common::{app_image_version, free_port, get_via, git_in, proxy_or_fail, teal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A host serving 1.0 on blue, and the 2.0 image for the next deploy.
async fn serving_1_0(prefix: &str) -> (TestHost, common::process::Daemon, String, String) {
    proxy_or_fail("haproxy");
    let h = TestHost::new(prefix).await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    h.managed_config("haproxy");
    let daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    (h, daemon, v1, v2)
}

/// Reads the stream until it has carried `want`, or fails after `secs`.
async fn read_until(s: &mut tokio::net::TcpStream, seen: &mut String, want: &str, secs: u64) {
    let start = Instant::now();
    let mut buf = [0u8; 8192];
    while !seen.contains(want) {
        let left = Duration::from_secs(secs).saturating_sub(start.elapsed());
        let n = match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(r) => r.unwrap(),
            Err(_) => panic!("/events did not carry {want:?} within {secs}s; it sent:\n{seen}"),
        };
        assert!(n > 0, "/events ended before {want:?}:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn the_first_view_needs_no_script_and_events_stream_as_they_are_appended() {
    let (h, _daemon, v1, v2) = serving_1_0("dash").await;
    // The status follows the proxy by the end of the pass.
    let start = Instant::now();
    let page = loop {
        let (code, page) = get_via(&h.api, "localhost", "/").await;
        assert_eq!(code, 200, "{page}");
        if page.contains("<td class=\"version\">1.0</td>") || start.elapsed() > Duration::from_secs(10) {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let svc = &h.svc;
    for want in [
        format!("<article class=\"svc\" id=\"svc-{svc}\""),
        "<tr data-color=\"blue\" class=\"is-live\">".to_string(),
        "<td class=\"version\">1.0</td>".to_string(),
        "<span class=\"badge c-blue\">traffic on blue</span>".to_string(),
        "<q>web 1.0</q>".to_string(),
        format!("data-step=\"switch\" data-service=\"{svc}\""),
    ] {
        assert!(page.contains(&want), "the page has no {want}:\n{page}");
    }

    let mut s = tokio::net::TcpStream::connect(&h.api).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut s, &mut seen, "event: page\n", 10).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    read_until(&mut s, &mut seen, "\"step\":\"switch\"", 60).await;
    let line = seen
        .lines()
        .find(|l| l.starts_with("data: {") && l.contains("\"step\":\"switch\""))
        .unwrap();
    let e: teal::events::Event = serde_json::from_str(&line["data: ".len()..]).unwrap();
    assert_eq!(
        (
            e.service.as_str(),
            e.color.map(|c| c.to_string()),
            e.from.map(|c| c.to_string())
        ),
        (svc.as_str(), Some("green".into()), Some("blue".into())),
        "{seen}"
    );
    // The live part follows, with the new version on the live color.
    read_until(&mut s, &mut seen, "<td class=\"version\">2.0</td>", 30).await;
}

#[tokio::test]
async fn a_browser_sees_a_deploy_and_a_rollback_without_reloading() {
    let (h, _daemon, v1, v2) = serving_1_0("browser").await;
    let b = Browser::start(1200, 1000).await;
    b.client.goto(&format!("http://{}/", h.api)).await.unwrap();
    let svc = format!("#svc-{}", h.svc);
    let version = |color: &str| format!("{svc} tr[data-color=\"{color}\"] td.version");
    b.until_text(&version("blue"), "1.0", 10).await;
    b.until_present("#conn[data-state=\"live\"]", 10).await;
    // A reload would lose this.
    b.client
        .execute("window.tealMarker = 42; return 1;", vec![])
        .await
        .unwrap();

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    b.until_text(&version("green"), "2.0", 60).await;
    b.until_present(&format!("{svc}[data-live=\"green\"]"), 30).await;
    let switched = format!("#events li[data-step=\"switch\"][data-service=\"{}\"] .c-green", h.svc);
    b.until_present(&switched, 30).await;

    // git revert: one switch back to the warm blue, shown as a rollback.
    git_in(&h.work, &["revert", "--no-edit", "HEAD"]);
    git_in(&h.work, &["push", "-q", "origin", "HEAD:main"]);
    b.until_present(&format!("{svc}[data-live=\"blue\"]"), 60).await;
    b.until_present(&format!("{svc} .history li.k-rollback"), 30).await;

    let marker = b
        .client
        .execute("return window.tealMarker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, serde_json::json!(42), "the page was reloaded");
    let png = b.client.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a screenshot"
    );
    if let Some(path) = std::env::var_os("TEAL_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap();
    }
    b.client.clone().close().await.unwrap();
}

#[test]
fn a_status_address_in_use_stops_the_daemon_at_start_naming_who_holds_it() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("daemon.yaml"),
        format!(
            "repo: {{url: {d}/repo}}\nproxy: {{kind: haproxy, listen: '127.0.0.1:{}', managed: true}}\nstate_dir: {d}/state\nlisten: '{addr}'\n",
            free_port(),
            d = dir.path().display()
        ),
    )
    .unwrap();
    let run = teal(dir.path(), &["daemon", "--config", "daemon.yaml"]);
    assert_eq!(run.code, 1, "{run:?}");
    let want = format!(
        "status API and dashboard: cannot listen on {addr} (held by pid {}",
        std::process::id()
    );
    assert!(run.stderr.contains(&want), "{}", run.stderr);
}
