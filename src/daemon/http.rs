//! The daemon's HTTP API on a loopback address by default: the dashboard
//! (`GET /`, live through `GET /events`), `GET /status`, `GET /metrics`,
//! `GET /healthz`, and `POST /hooks/git` (GitHub/Gitea push events,
//! verified by `X-Hub-Signature-256` before they trigger a fetch).
//! Connections are served by `listener` (deadlines, a cap); requests for
//! another host's name are refused by `host_check`.

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

use super::dashboard::{self, Context};
use super::scheduler::intake::Triggers;
use super::scheduler::Trigger;
use super::status::Shared;

/// What the API serves from.
#[derive(Default)]
pub struct Api {
    /// The loop's status and metrics, and its event stream.
    pub shared: Shared,
    /// Where the webhook asks the loop for a pass.
    pub trigger: Triggers,
    /// The webhook secret; `None`: the webhook is off (404).
    pub secret: Option<Vec<u8>>,
    /// The daemon's state dir: its event log and repo mirror.
    pub state_dir: PathBuf,
    /// Bearer token every request but /healthz and the (HMAC-signed)
    /// webhook must carry; `None`: open (loopback by default).
    pub token: Option<String>,
    /// `host.names`: the names answered besides IPs and `localhost`.
    pub names: Vec<String>,
    /// `api`: connections and streams at once.
    pub limits: crate::config::api::ApiConfig,
}

#[derive(Clone)]
struct App {
    dashboard: Arc<Context>,
    trigger: Triggers,
    secret: Option<Arc<Vec<u8>>>,
    /// One permit per live `/events` stream.
    streams: Arc<tokio::sync::Semaphore>,
}

/// The largest request body (a push event): GitHub's are far smaller, and
/// a body is held in memory whole to check its signature.
pub const MAX_BODY: usize = 1024 * 1024;

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
    let nofile = super::rlimit::nofile().unwrap_or(1024);
    let cap = super::listener::connection_cap(api.limits.max_connections, nofile);
    if cap < api.limits.max_connections {
        tracing::info!(
            cap,
            nofile,
            "status API: connections capped at a quarter of the open-file limit"
        );
    }
    // Streams never make way for a new connection: half the cap at most.
    let streams = api.limits.max_streams.min(cap / 2).max(1);
    let app = App {
        dashboard: Arc::new(Context::new(api.shared, api.state_dir)),
        trigger: api.trigger,
        secret: api.secret.map(Arc::new),
        streams: Arc::new(tokio::sync::Semaphore::new(streams)),
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/hooks/git", post(hook))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_declared_too_large))
        .layer(axum::middleware::from_fn_with_state(
            api.token.map(Arc::new),
            require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(api.names),
            super::host_check::require_own_name,
        ))
        .with_state(app);
    super::listener::run(listener, router, cap, shutdown).await;
    Ok(())
}

/// A request whose Content-Length is past `MAX_BODY` is answered 413 at
/// once: waiting for a body that will be refused anyway would hold its
/// connection until the request deadline.
async fn refuse_declared_too_large(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(axum::http::header::CONNECTION, "close")],
            format!("a body may be at most {MAX_BODY} bytes\n"),
        )
            .into_response();
    }
    next.run(req).await
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

async fn events(State(app): State<App>) -> axum::response::Response {
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        let why =
            "too many live /events streams (dashboards) open: close one, or raise api.max_streams in the host config\n";
        return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "10")], why).into_response();
    };
    (
        [("cache-control", "no-store")],
        dashboard::sse::stream(app.dashboard.clone(), permit),
    )
        .into_response()
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
    app.trigger.send(Trigger::Webhook);
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
#[path = "http_tests.rs"]
mod tests;
