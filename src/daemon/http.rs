//! The daemon's HTTP API on a loopback address by default: the dashboard
//! (`GET /`, live through `GET /events`), `GET /status`, `GET /metrics`,
//! `GET /healthz`, and `POST /hooks/git` (GitHub/Gitea push events,
//! verified by `X-Hub-Signature-256` before they trigger a fetch).

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

use super::dashboard::{self, Context};
use super::status::Shared;

/// What the API serves from.
pub struct Api {
    /// The loop's status and metrics, and its event stream.
    pub shared: Shared,
    /// Wakes the loop (the webhook).
    pub trigger: Arc<Notify>,
    /// The webhook secret; `None`: the webhook is off (404).
    pub secret: Option<Vec<u8>>,
    /// The daemon's state dir: its event log and repo mirror.
    pub state_dir: PathBuf,
    /// Bearer token every request but /healthz and the (HMAC-signed)
    /// webhook must carry; `None`: open (loopback by default).
    pub token: Option<String>,
}

#[derive(Clone)]
struct App {
    dashboard: Arc<Context>,
    trigger: Arc<Notify>,
    secret: Option<Arc<Vec<u8>>>,
}

/// The dashboard's scripts and styles are inline, and it talks only to
/// this listener: nothing else may load.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Api,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = App {
        dashboard: Arc::new(Context::new(api.shared, api.state_dir)),
        trigger: api.trigger,
        secret: api.secret.map(Arc::new),
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/hooks/git", post(hook))
        .layer(axum::middleware::from_fn_with_state(
            api.token.map(Arc::new),
            require_token,
        ))
        .with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// With a token configured, only requests carrying it get an answer.
async fn require_token(
    State(token): State<Option<Arc<String>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let open = matches!(req.uri().path(), "/healthz" | "/hooks/git");
    if let (Some(token), false) = (token, open) {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same(given.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [("www-authenticate", "Bearer")],
                "a bearer token is required (host.token_file)\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// Compares in time that does not depend on where the inputs differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn page(State(app): State<App>) -> impl IntoResponse {
    let view = app.dashboard.snapshot().await;
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let body = dashboard::html::page(&view, &app.dashboard.host, &now);
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("content-security-policy", CSP),
            ("x-content-type-options", "nosniff"),
        ],
        body,
    )
}

async fn events(State(app): State<App>) -> impl IntoResponse {
    (
        [("cache-control", "no-store")],
        dashboard::sse::stream(app.dashboard.clone()),
    )
}

async fn status(State(app): State<App>) -> impl IntoResponse {
    axum::Json(app.dashboard.snapshot().await.status)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let text = app.dashboard.shared.metrics.read().expect("metrics lock").render();
    ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text)
}

async fn hook(State(app): State<App>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let Some(secret) = &app.secret else {
        return (
            StatusCode::NOT_FOUND,
            "webhook disabled: set repo.webhook_secret_file\n",
        );
    };
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify(secret, &body, sig) {
        tracing::warn!("webhook with a missing or wrong X-Hub-Signature-256: ignored");
        return (StatusCode::UNAUTHORIZED, "bad or missing X-Hub-Signature-256\n");
    }
    app.trigger.notify_one();
    (StatusCode::ACCEPTED, "fetching\n")
}

/// Checks `sha256=<hex>` against HMAC-SHA256(secret, body), in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    async fn request(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
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
            trigger: Arc::new(Notify::new()),
            secret: None,
            state_dir: state.path().to_path_buf(),
            token: Some("fleet-token".into()),
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
        let trigger = Arc::new(Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = tempfile::tempdir().unwrap();
        let api = Api {
            shared,
            trigger: trigger.clone(),
            secret: Some(b"s3cret".to_vec()),
            state_dir: state.path().to_path_buf(),
            token: None,
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
        let fired = |t: Arc<Notify>| async move {
            tokio::time::timeout(std::time::Duration::from_millis(200), t.notified())
                .await
                .is_ok()
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
        assert!(!fired(trigger.clone()).await, "no fetch triggered by a bad signature");
        let good = format!("X-Hub-Signature-256: {}\r\n", sign(b"s3cret", push.as_bytes()));
        assert_eq!(request(&addr, "POST", "/hooks/git", &good, push).await.0, 202);
        assert!(fired(trigger.clone()).await, "a good signature triggers a fetch");
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
            trigger: Arc::new(Notify::new()),
            secret: None,
            state_dir: state.path().to_path_buf(),
            token: None,
        };
        tokio::spawn(serve(listener, api, std::future::pending()));
        let (code, page) = request(&addr, "GET", "/", "", "").await;
        assert_eq!(code, 200);
        assert!(
            page.contains("id=\"svc-web\"") && page.contains("<td class=\"version\">1.0</td>"),
            "{page}"
        );

        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
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
}
