//! The mechanics of a checked config change, shared by both proxy drivers:
//! run the proxy's test and reload commands with a timeout, write files
//! atomically, and wait until the proxy really serves the new config (a
//! reload is asynchronous: it is done only when it serves).

use std::path::Path;
use std::time::{Duration, Instant};

use super::route::ProxyError;

/// Runs a configured command (`[nginx, -t]`), returning its combined output
/// as the error when it fails.
pub(crate) async fn run(cmd: &[String]) -> Result<String, (String, String)> {
    let shown = cmd.join(" ");
    let Some((prog, args)) = cmd.split_first() else {
        return Err((shown, "empty command".into()));
    };
    let out = tokio::time::timeout(
        Duration::from_secs(30),
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
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), ProxyError> {
    let io = |source| ProxyError::Io {
        path: path.display().to_string(),
        source,
    };
    crate::atomic::write(path, text.as_bytes()).map_err(io)
}

/// `write_atomic` off the async runtime: a rename can wait seconds on the
/// filesystem's journal (seen on ext4 under load), which must stall
/// neither the reconcile loop nor a switch that already happened.
pub(crate) async fn persist(path: &Path, text: impl AsRef<str> + Send + 'static) -> Result<(), ProxyError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_atomic(&path, text.as_ref()))
        .await
        .map_err(|e| ProxyError::Other(format!("writing a proxy file: {e}")))?
}

/// Reads a file that may not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, ProxyError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProxyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
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

/// How long a reload may take to serve before it is reported as failed.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// Waits until the proxy listening on `listen` serves the config carrying
/// `token`. Bounded by wall time, not by attempts: each probe has its own
/// short timeout and the whole wait ends after `RELOAD_WAIT`.
pub(crate) async fn wait_for_config(listen: &str, token: &str) -> Result<(), ProxyError> {
    let addr = loopback(listen);
    let mut last = String::new();
    // Old workers may still accept a connection or two after the new ones
    // answer: wait for several answers in a row from the new config.
    let mut in_a_row = 0;
    let start = Instant::now();
    while start.elapsed() < RELOAD_WAIT {
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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(ProxyError::Other(format!(
        "the proxy on {listen} did not pick up the new config within {}s ({last})",
        RELOAD_WAIT.as_secs()
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
    let out = tokio::time::timeout(Duration::from_secs(1), io)
        .await
        .map_err(|_| format!("no answer from {addr} within 1s"))?
        .map_err(|e| format!("{addr}: {e}"))?;
    Ok(out.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string())
}

/// Where to reach a listen address from this host: wildcard binds are
/// reached on loopback.
pub(crate) fn loopback(listen: &str) -> String {
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
