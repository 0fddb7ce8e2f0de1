//! The status API against real TCP connections: tokens, the webhook's
//! signature, the dashboard and its stream, names and limits.

use std::time::Instant;

use super::*;
use crate::daemon::scheduler::Next;

fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn request(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn with_a_token_only_requests_that_carry_it_are_answered() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let api = Api {
        shared: Shared::default(),
        secret: None,
        state_dir: state.path().to_path_buf(),
        token: Some("fleet-token".into()),
        ..Api::default()
    };
    tokio::spawn(serve(listener, api, std::future::pending()));
    assert_eq!(request(&addr, "GET", "/status", "", "").await.0, 401);
    assert_eq!(
        request(&addr, "GET", "/", "Authorization: Bearer nope\r\n", "").await.0,
        401
    );
    assert_eq!(
        request(&addr, "GET", "/status", "Authorization: Bearer fleet-token\r\n", "")
            .await
            .0,
        200
    );
    assert_eq!(
        request(&addr, "GET", "/healthz", "", "").await.0,
        200,
        "liveness stays open"
    );
}

#[tokio::test]
async fn status_metrics_and_a_webhook_that_must_be_signed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shared = Shared::default();
    shared.status.write().unwrap().applied_commit = Some("abc".into());
    let (trigger, mut intake) = crate::daemon::scheduler::intake::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = tempfile::tempdir().unwrap();
    let api = Api {
        shared,
        trigger,
        secret: Some(b"s3cret".to_vec()),
        state_dir: state.path().to_path_buf(),
        token: None,
        ..Api::default()
    };
    let server = tokio::spawn(serve(listener, api, async {
        let _ = stopped.await;
    }));
    let (code, body) = request(&addr, "GET", "/status", "", "").await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["applied_commit"],
        "abc"
    );
    let (code, body) = request(&addr, "GET", "/metrics", "", "").await;
    assert_eq!(code, 200);
    assert!(body.contains("teal_reconcile_duration_seconds_count 0"), "{body}");
    assert_eq!(request(&addr, "GET", "/healthz", "", "").await, (200, "ok\n".into()));

    let push = r#"{"ref":"refs/heads/main"}"#;
    let mut scheduler = crate::daemon::scheduler::Scheduler::new(std::time::Duration::from_secs(60), Instant::now());
    assert_eq!(scheduler.next(Instant::now()), Next::Pass(Trigger::Start));
    scheduler.finished(false, Instant::now());
    let mut fired = || {
        intake.drain_into(&mut scheduler);
        scheduler.next(Instant::now())
    };
    assert_eq!(
        request(&addr, "POST", "/hooks/git", "", push).await.0,
        401,
        "missing signature"
    );
    let wrong = format!("X-Hub-Signature-256: {}\r\n", sign(b"other", push.as_bytes()));
    assert_eq!(
        request(&addr, "POST", "/hooks/git", &wrong, push).await.0,
        401,
        "wrong secret"
    );
    assert!(
        matches!(fired(), Next::Wait(_)),
        "no fetch triggered by a bad signature"
    );
    let good = format!("X-Hub-Signature-256: {}\r\n", sign(b"s3cret", push.as_bytes()));
    assert_eq!(request(&addr, "POST", "/hooks/git", &good, push).await.0, 202);
    assert_eq!(
        fired(),
        Next::Pass(Trigger::Webhook),
        "a good signature triggers a fetch"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// Reads from `s` until `want` has arrived, or fails after 5 s.
async fn read_until(s: &mut tokio::net::TcpStream, seen: &mut String, want: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} within 5s; got:\n{seen}"))
            .unwrap();
        assert!(n > 0, "stream closed before {want:?}:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn the_dashboard_page_and_its_event_stream() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shared = Shared::default();
    shared.status.write().unwrap().services.insert(
        "web".into(),
        super::super::status::ServiceStatus {
            live: Some(crate::spec::Color::Blue),
            images: crate::spec::PerColor {
                blue: Some("web:1.0".into()),
                green: None,
            },
            ..Default::default()
        },
    );
    let state = tempfile::tempdir().unwrap();
    let api = Api {
        shared: shared.clone(),
        secret: None,
        state_dir: state.path().to_path_buf(),
        token: None,
        ..Api::default()
    };
    tokio::spawn(serve(listener, api, std::future::pending()));
    let (code, page) = request(&addr, "GET", "/", "", "").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("id=\"svc-web\"") && page.contains("<td class=\"version\">1.0</td>"),
        "{page}"
    );

    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut s, &mut seen, "event: page\n").await;
    assert!(
        seen.to_lowercase().contains("content-type: text/event-stream"),
        "{seen}"
    );
    let log = crate::events::EventLog::open(state.path())
        .unwrap()
        .with_broadcast(shared.events.clone());
    log.append(&crate::events::Event::outcome("web", "abc", "ok", 5, None))
        .unwrap();
    read_until(&mut s, &mut seen, "event: row\n").await;
    assert!(
        seen.contains("\ndata: {\"time\":") && seen.contains("\"step\":\"deploy\""),
        "each event as its JSON line: {seen}"
    );
    assert!(seen.contains("data-step=\"deploy\""), "{seen}");
}

#[test]
fn verify_rejects_malformed_headers() {
    assert!(!verify(b"k", b"x", ""));
    assert!(!verify(b"k", b"x", "sha1=00"));
    assert!(!verify(b"k", b"x", "sha256=zz"));
    assert!(verify(b"k", b"x", &sign(b"k", b"x")));
}

/// An API on a free port with `limits`; its address.
async fn limited(limits: crate::config::api::ApiConfig, secret: Option<&[u8]>) -> (String, tempfile::TempDir) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let api = Api {
        state_dir: state.path().to_path_buf(),
        secret: secret.map(<[u8]>::to_vec),
        limits,
        ..Api::default()
    };
    tokio::spawn(serve(listener, api, std::future::pending()));
    (addr, state)
}

#[tokio::test]
async fn live_streams_are_capped_and_a_closed_one_gives_its_place_back() {
    use tokio::io::AsyncWriteExt;
    let limits = crate::config::api::ApiConfig {
        max_connections: 16,
        max_streams: 1,
    };
    let (addr, _state) = limited(limits, None).await;
    let mut first = tokio::net::TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut first, &mut String::new(), "event: page\n").await;
    let (code, body) = request(&addr, "GET", "/events", "", "").await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("api.max_streams"), "{body}");
    assert_eq!(
        request(&addr, "GET", "/status", "", "").await.0,
        200,
        "only streams are capped"
    );
    drop(first);
    let mut again = tokio::net::TcpStream::connect(&addr).await.unwrap();
    again
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut again, &mut String::new(), "event: page\n").await;
}

#[tokio::test]
async fn past_the_cap_idle_connections_make_way_and_bodies_are_bounded() {
    let limits = crate::config::api::ApiConfig {
        max_connections: 4,
        max_streams: 1,
    };
    let (addr, _state) = limited(limits, Some(b"k")).await;
    let mut idle = vec![];
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        request(&addr, "GET", "/healthz", "", ""),
    )
    .await;
    assert_eq!(
        answered.ok(),
        Some((200, "ok\n".to_string())),
        "20 idle connections on a cap of 4"
    );
    let big = "x".repeat(MAX_BODY + 1);
    assert_eq!(request(&addr, "POST", "/hooks/git", "", &big).await.0, 413);
}
