//! Health checks declared in the commit: http, tcp and exec probes run
//! against every replica of a color, with interval, per-probe timeout,
//! consecutive successes and an overall deadline. The result says, per
//! replica, what failed and why.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::spec::{Health, Probe};

/// One replica to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container: String,
    pub addr: IpAddr,
    /// The port to probe when it is not the service's own: a Swarm task's
    /// port published on its node.
    pub port: Option<u16>,
}

/// How one replica fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaReport {
    pub container: String,
    /// Consecutive passes at the end.
    pub passes: u32,
    /// Probes run in all.
    pub attempts: u32,
    /// The last failure, if the replica did not pass.
    pub last_error: Option<String>,
}

/// The checks did not pass on every replica before the deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct HealthFailure {
    pub deadline: Duration,
    pub needed: u32,
    pub replicas: Vec<ReplicaReport>,
}

impl fmt::Display for HealthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed: Vec<_> = self.replicas.iter().filter(|r| r.passes < self.needed).collect();
        write!(
            f,
            "health checks did not pass within {} ({} of {} replicas failed)",
            crate::spec::duration::format(self.deadline),
            failed.len(),
            self.replicas.len()
        )?;
        for r in failed {
            let why = r.last_error.as_deref().unwrap_or("no probe completed");
            write!(
                f,
                "; {}: {} ({}/{} consecutive passes after {} attempts)",
                r.container, why, r.passes, self.needed, r.attempts
            )?;
        }
        Ok(())
    }
}

/// Runs `exec` probes inside a container; the Docker driver implements it.
/// Returns the command's exit code.
pub trait Exec: Sync {
    fn exec(
        &self,
        container: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<i64, String>> + Send;
}

/// Probes every target until each has `health.successes` consecutive
/// passes, or fails once `health.deadline` has passed.
pub async fn wait_healthy<E: Exec>(
    health: &Health,
    port: u16,
    targets: &[Target],
    exec: &E,
) -> Result<Vec<ReplicaReport>, HealthFailure> {
    let client = http_client();
    let runs = targets.iter().map(|t| check_replica(health, port, t, exec, &client));
    let reports = futures_util::future::join_all(runs).await;
    if reports.iter().all(|r| r.passes >= health.successes) {
        Ok(reports)
    } else {
        Err(HealthFailure {
            deadline: health.deadline,
            needed: health.successes,
            replicas: reports,
        })
    }
}

async fn check_replica<E: Exec>(
    health: &Health,
    port: u16,
    target: &Target,
    exec: &E,
    client: &reqwest::Client,
) -> ReplicaReport {
    let mut report = ReplicaReport {
        container: target.container.clone(),
        passes: 0,
        attempts: 0,
        last_error: None,
    };
    let deadline = tokio::time::Instant::now() + health.deadline;
    loop {
        let started = tokio::time::Instant::now();
        report.attempts += 1;
        let probe = probe_once(&health.probe, port, target, health.timeout, exec, client);
        match tokio::time::timeout(health.timeout, probe).await {
            Ok(Ok(())) => {
                report.passes += 1;
                report.last_error = None;
            }
            Ok(Err(e)) => {
                report.passes = 0;
                report.last_error = Some(e);
            }
            Err(_) => {
                report.passes = 0;
                let t = crate::spec::duration::format(health.timeout);
                report.last_error = Some(format!("{} timed out after {t}", health.probe));
            }
        }
        if report.passes >= health.successes {
            return report;
        }
        let next = started + health.interval;
        if next >= deadline {
            return report;
        }
        tokio::time::sleep_until(next).await;
    }
}

/// Runs one probe against one replica.
pub async fn probe_once<E: Exec>(
    probe: &Probe,
    port: u16,
    target: &Target,
    timeout: Duration,
    exec: &E,
    client: &reqwest::Client,
) -> Result<(), String> {
    let addr = SocketAddr::new(target.addr, target.port.unwrap_or(port));
    match probe {
        Probe::Tcp => {
            let mut s = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("tcp connect {addr}: {e}"))?;
            let _ = s.shutdown().await;
            Ok(())
        }
        Probe::Http { path, status, body } => {
            let url = format!("http://{addr}{path}");
            let resp = client.get(&url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
            let got = resp.status().as_u16();
            if got != *status {
                return Err(format!("GET {url} -> {got} (expected {status})"));
            }
            match body {
                Some(want) => body_contains(resp, want).await.map_err(|e| format!("GET {url}: {e}")),
                None => Ok(()),
            }
        }
        Probe::Exec(cmd) => match exec.exec(&target.container, cmd, timeout).await {
            Ok(0) => Ok(()),
            Ok(code) => Err(format!("exec {} exited {code}", cmd.join(" "))),
            Err(e) => Err(format!("exec {}: {e}", cmd.join(" "))),
        },
    }
}

/// Most of a probe's response body teal reads: the app is not trusted to
/// end it.
pub const MAX_PROBE_BODY: usize = 64 << 10;

/// Whether the first `MAX_PROBE_BODY` bytes of `resp`'s body contain
/// `want`; reading stops there (or at the match), whatever the body's length.
async fn body_contains(mut resp: reqwest::Response, want: &str) -> Result<(), String> {
    let mut seen: Vec<u8> = vec![];
    while seen.len() < MAX_PROBE_BODY {
        match resp.chunk().await.map_err(|e| format!("body: {e}"))? {
            Some(chunk) => seen.extend_from_slice(&chunk[..chunk.len().min(MAX_PROBE_BODY - seen.len())]),
            None => break,
        }
        if String::from_utf8_lossy(&seen).contains(want) {
            return Ok(());
        }
    }
    if String::from_utf8_lossy(&seen).contains(want) {
        return Ok(());
    }
    let within = if seen.len() >= MAX_PROBE_BODY {
        format!(" in its first {MAX_PROBE_BODY} bytes")
    } else {
        String::new()
    };
    Err(format!("body does not contain {want:?}{within}"))
}

/// The client for probes: no proxy from the environment (probes go
/// straight to the container), no connection reuse (each probe is a fresh
/// connect, as a new client of the app would be). One per process: making
/// a client loads the system's CA store, which at 500 services was a
/// tenth of an idle daemon's CPU (a probe round every 30 s, a health wait
/// per deploy); with no pooled connection it holds no state between uses.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("static reqwest client configuration")
        })
        .clone()
}

#[cfg(test)]
mod tests;
