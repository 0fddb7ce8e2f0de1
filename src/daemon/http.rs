//! The daemon's HTTP API on a loopback address by default: `GET /status`,
//! `GET /metrics`, `GET /healthz`, and `POST /hooks/git` (GitHub/Gitea push
//! events, verified by `X-Hub-Signature-256` before they trigger a fetch).

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

use super::status::Shared;

#[derive(Clone)]
struct App {
    shared: Shared,
    trigger: Arc<Notify>,
    /// The webhook secret; `None`: the webhook is off (404).
    secret: Option<Arc<Vec<u8>>>,
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Shared,
    trigger: Arc<Notify>,
    secret: Option<Vec<u8>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = App {
        shared,
        trigger,
        secret: secret.map(Arc::new),
    };
    let router = Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/hooks/git", post(hook))
        .with_state(app);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn status(State(app): State<App>) -> impl IntoResponse {
    let s = app.shared.status.read().expect("status lock").clone();
    axum::Json(s)
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let text = app.shared.metrics.read().expect("metrics lock").render();
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
    async fn status_metrics_and_a_webhook_that_must_be_signed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Shared::default();
        shared.status.write().unwrap().applied_commit = Some("abc".into());
        let trigger = Arc::new(Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            shared,
            trigger.clone(),
            Some(b"s3cret".to_vec()),
            async {
                let _ = stopped.await;
            },
        ));
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

    #[test]
    fn verify_rejects_malformed_headers() {
        assert!(!verify(b"k", b"x", ""));
        assert!(!verify(b"k", b"x", "sha1=00"));
        assert!(!verify(b"k", b"x", "sha256=zz"));
        assert!(verify(b"k", b"x", &sign(b"k", b"x")));
    }
}
