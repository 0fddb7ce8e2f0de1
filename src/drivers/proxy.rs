//! The proxy boundary: one trait, two real drivers (nginx, HAProxy). The
//! engine upserts one service's route at a time; observation reports which
//! color each service's traffic goes to, as recorded by the proxy itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::haproxy::Haproxy;
use super::nginx::Nginx;
use crate::spec::Color;

/// Everything the proxy needs for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub service: String,
    pub host: String,
    /// Path prefix, starting with `/`.
    pub path: String,
    /// The color that gets the traffic.
    pub active: Color,
    /// Its running replicas (`ip:port`).
    pub active_addrs: Vec<SocketAddr>,
    pub preview: Option<PreviewRoute>,
    pub commit: String,
    /// `plan::route_hash` of the service, recorded for observation.
    pub route_hash: String,
}

/// The idle color, reachable on its own host from allowed networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRoute {
    pub host: String,
    /// Empty: everyone may reach it.
    pub allow: Vec<ipnet::IpNet>,
    pub idle: Color,
    pub addrs: Vec<SocketAddr>,
}

/// What the proxy serves for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRoute {
    pub live: Option<Color>,
    /// The recorded route hash; `Some(DRIFTED)` when the managed config was
    /// edited by hand, which makes the planner rewrite it.
    pub route_hash: Option<String>,
    /// Addresses traffic goes to.
    pub addrs: Vec<SocketAddr>,
}

/// Route hash reported for a hand-edited entry: never equal to a real hash.
pub const DRIFTED: &str = "drifted";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the new config for {service} was rejected by `{command}`, so the serving config was left as it was:\n{output}"
    )]
    Rejected {
        service: String,
        command: String,
        output: String,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("HAProxy runtime API at {socket}: {message}")]
    Runtime { socket: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// The configured proxy.
#[derive(Debug)]
pub enum ProxyDriver {
    Nginx(Nginx),
    Haproxy(Haproxy),
}

impl ProxyDriver {
    /// Routes of every service teal manages.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.observe().await,
            ProxyDriver::Haproxy(p) => p.observe().await,
        }
    }

    /// Creates or updates one service's route. The new config is validated
    /// before it reaches the serving proxy; on rejection nothing changes.
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.apply(route).await,
            ProxyDriver::Haproxy(p) => p.apply(route).await,
        }
    }

    /// Removes one service's route.
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.remove(service).await,
            ProxyDriver::Haproxy(p) => p.remove(service).await,
        }
    }
}

/// Runs a configured command (`[nginx, -t]`), returning its combined output
/// as the error when it fails.
pub(crate) async fn run(cmd: &[String]) -> Result<String, (String, String)> {
    let shown = cmd.join(" ");
    let Some((prog, args)) = cmd.split_first() else {
        return Err((shown, "empty command".into()));
    };
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(prog)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| (shown.clone(), "timed out after 30s".to_string()))?
    .map_err(|e| (shown.clone(), e.to_string()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err((shown, text.trim().to_string()))
    }
}

/// Writes `text` to `path` atomically (temp file in the same dir + rename).
pub(crate) fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), ProxyError> {
    let io = |source| ProxyError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Host name of the reserved route on which a proxy answers with the token
/// of the config it currently serves (`.invalid` never resolves).
pub const CONFIG_HOST: &str = "teal-config.invalid";

/// A fresh token for one rendered config.
pub(crate) fn config_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Waits until the proxy listening on `listen` serves the config carrying
/// `token`: reloads are asynchronous, and a change is only done when it
/// serves.
pub(crate) async fn wait_for_config(listen: &str, token: &str) -> Result<(), ProxyError> {
    let addr = loopback(listen);
    let mut last = String::new();
    // Old workers may still accept a connection or two after the new ones
    // answer: wait for several answers in a row from the new config.
    let mut in_a_row = 0;
    for _ in 0..400 {
        match config_token_at(&addr).await {
            Ok(t) if t == token => in_a_row += 1,
            Ok(t) => {
                in_a_row = 0;
                last = format!("still serving config {t}");
            }
            Err(e) => {
                in_a_row = 0;
                last = e;
            }
        }
        if in_a_row >= 10 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Err(ProxyError::Other(format!(
        "the proxy on {listen} did not pick up the new config within 5s ({last})"
    )))
}

async fn config_token_at(addr: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET / HTTP/1.1\r\nHost: {CONFIG_HOST}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(2), io)
        .await
        .map_err(|_| format!("no answer from {addr}"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string())
}

/// Where to reach a listen address from this host: wildcard binds are
/// reached on loopback.
fn loopback(listen: &str) -> String {
    if let Some(port) = listen.strip_prefix("0.0.0.0:").or_else(|| listen.strip_prefix("*:")) {
        return format!("127.0.0.1:{port}");
    }
    if let Some(port) = listen.strip_prefix("[::]:") {
        return format!("[::1]:{port}");
    }
    if !listen.contains(':') {
        return format!("127.0.0.1:{listen}");
    }
    listen.to_string()
}

/// sha256 hex of a text.
pub(crate) fn sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
