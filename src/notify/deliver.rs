//! Sending notices to one target, in order, with retries: a webhook POST
//! signed like GitHub's webhooks, or a commit status through the GitHub
//! REST API (which GitHub Enterprise, Gitea and Forgejo also serve).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{Kind, Notice, ATTEMPTS, FIRST_RETRY};
use crate::secret::Secret;

/// Where notices go.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook {
        url: String,
        /// HMAC key of `X-Teal-Signature-256`; none: unsigned.
        secret: Option<Secret>,
    },
    Github {
        api: String,
        /// `owner/name`.
        repo: String,
        token: Secret,
        target_url: Option<String>,
    },
}

impl Target {
    /// How logs name it (never with a secret).
    pub fn name(&self) -> String {
        match self {
            Target::Webhook { url, .. } => url.clone(),
            Target::Github { api, repo, .. } => format!("{api} {repo}"),
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs its webhooks.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any size");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends each notice in turn; gives one up after `ATTEMPTS` tries.
pub async fn worker(target: Target, client: reqwest::Client, mut rx: mpsc::Receiver<Notice>) {
    while let Some(n) = rx.recv().await {
        let Some(request) = request(&target, &n) else { continue };
        let mut wait = FIRST_RETRY;
        for attempt in 1..=ATTEMPTS {
            let why = match send(&client, &request).await {
                Ok(()) => {
                    debug!(to = %target.name(), event = n.event.as_str(), service = %n.service, "notified");
                    break;
                }
                Err(why) => why,
            };
            if attempt == ATTEMPTS {
                warn!(to = %target.name(), event = n.event.as_str(), service = %n.service, commit = %n.commit, error = %why, attempts = ATTEMPTS, "notify: given up");
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    }
}

/// A request ready to send (and to send again).
struct Request {
    url: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

/// The request `n` makes to `target`; none when it has nothing to say
/// (a forge is not told of a switch: its status stays pending).
fn request(target: &Target, n: &Notice) -> Option<Request> {
    match target {
        Target::Webhook { url, secret } => {
            let body = serde_json::to_vec(n).expect("a notice serialises");
            let mut headers = vec![("x-teal-event", n.event.as_str().to_string())];
            if let Some(s) = secret {
                headers.push(("x-teal-signature-256", signature(s.expose().as_bytes(), &body)));
            }
            Some(Request {
                url: url.clone(),
                body,
                headers,
            })
        }
        Target::Github {
            api,
            repo,
            token,
            target_url,
        } => {
            let state = match n.event {
                Kind::Started | Kind::Waiting => "pending",
                Kind::Deployed => "success",
                Kind::Failed | Kind::RolledBack | Kind::Refused => "failure",
                // Not about a commit's deploy: no commit status.
                Kind::Switched | Kind::Certificate | Kind::CertificateFailed => return None,
            };
            let body = serde_json::json!({
                "state": state,
                "context": context(n),
                "description": description(n),
                "target_url": target_url,
            });
            let mut body = body;
            if target_url.is_none() {
                body.as_object_mut().expect("an object").remove("target_url");
            }
            Some(Request {
                url: format!("{api}/repos/{repo}/statuses/{}", n.commit),
                body: serde_json::to_vec(&body).expect("json"),
                headers: vec![
                    ("authorization", format!("Bearer {}", token.expose())),
                    ("accept", "application/vnd.github+json".into()),
                ],
            })
        }
    }
}

/// `teal/<host>/<service>`; a refused head is about the whole commit on
/// this host: `teal/<host>`.
fn context(n: &Notice) -> String {
    if n.service.starts_with('(') {
        format!("teal/{}", n.host)
    } else {
        format!("teal/{}/{}", n.host, n.service)
    }
}

/// One line for the forge (GitHub allows 140 characters).
fn description(n: &Notice) -> String {
    let color = n.color.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    let text = match n.event {
        Kind::Started => format!("deploying{color}"),
        Kind::Switched => format!("switched{color}"),
        Kind::Deployed => format!("serving{color}"),
        Kind::Failed => format!("failed: {}", n.reason.as_deref().unwrap_or("")),
        Kind::RolledBack => format!("rolled back: {}", n.reason.as_deref().unwrap_or("")),
        Kind::Refused => format!("refused: {}", n.reason.as_deref().unwrap_or("")),
        Kind::Waiting => n.reason.clone().unwrap_or_else(|| "waiting for promotion".into()),
        Kind::Certificate => format!("certificate: {}", n.reason.as_deref().unwrap_or("")),
        Kind::CertificateFailed => format!("certificate failed: {}", n.reason.as_deref().unwrap_or("")),
    };
    text.chars().take(140).collect()
}

async fn send(client: &reqwest::Client, r: &Request) -> Result<(), String> {
    let mut req = client
        .post(&r.url)
        .header("content-type", "application/json")
        .body(r.body.clone());
    for (k, v) in &r.headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs_scheme() {
        // GitHub's documented example: secret "It's a Secret to Everybody".
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[tokio::test]
    async fn errors_are_retried_with_backoff_until_one_is_taken() {
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::Arc;
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let app = axum::Router::new().fallback(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    axum::http::StatusCode::BAD_GATEWAY
                } else {
                    axum::http::StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (tx, rx) = mpsc::channel(4);
        let target = Target::Webhook { url, secret: None };
        let start = std::time::Instant::now();
        let worker = tokio::spawn(worker(target, reqwest::Client::new(), rx));
        let mut n =
            super::super::Tracker::new("h".into()).notices(&crate::events::Event::outcome("web", "abc", "ok", 1, None));
        tx.send(n.remove(0)).await.unwrap();
        drop(tx);
        worker.await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3, "two errors, then taken");
        // Waited 0.5 s, then 1 s: backoff, not a tight loop.
        assert!(start.elapsed() >= FIRST_RETRY * 3, "{:?}", start.elapsed());
    }

    #[test]
    fn a_forge_hears_pending_success_and_failure_with_its_context() {
        let t = Target::Github {
            api: "http://x".into(),
            repo: "ops/deploy".into(),
            token: Secret::new("tok"),
            target_url: None,
        };
        let n = |event, service: &str| Notice {
            event,
            service: service.into(),
            host: "h1".into(),
            commit: "abc".into(),
            color: Some("green".into()),
            from: None,
            image: None,
            reason: Some("no signature".into()),
            time: "t".into(),
        };
        let r = request(&t, &n(Kind::Started, "web")).unwrap();
        assert_eq!(r.url, "http://x/repos/ops/deploy/statuses/abc");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"state": "pending", "context": "teal/h1/web", "description": "deploying (green)"})
        );
        assert!(request(&t, &n(Kind::Switched, "web")).is_none());
        let r = request(&t, &n(Kind::Refused, "(repo)")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (body["state"].as_str(), body["context"].as_str()),
            (Some("failure"), Some("teal/h1"))
        );
        assert!(format!("{t:?}").contains("<redacted>") && !format!("{t:?}").contains("tok\""));
    }
}
