//! The status document (`GET /status`, `teal status`, and what peers of a
//! fleet read of each other) as data. Field meanings are in
//! docs/status.md. The daemon keeps and serves it; every reader parses it
//! into these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{EventResult, Kind, Switch};
use crate::spec::{Color, PerColor};

/// What git says about a commit, for people: its subject, author and time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// The first line of the message.
    pub message: String,
    /// `Name <email>`.
    pub author: String,
    /// Commit time, RFC 3339 UTC.
    pub time: String,
}

/// The status document. Field meanings are in docs/status.md.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The commit whose desired state is being served (the last good one).
    pub applied_commit: Option<String>,
    /// The newest commit fetched, valid or not.
    pub fetched_commit: Option<String>,
    /// Errors of the fetched commit when it was not applied (`path:line:col: message`).
    pub config_errors: Vec<String>,
    /// The last repo, Docker or proxy problem, until it clears.
    pub last_error: Option<String>,
    /// The newest head when it was refused (signature, rewound history,
    /// policy), until a later head is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedCommit>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// The applied commit's subject, author and time, read from the repo
    /// mirror when the status is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<CommitInfo>,
    /// The last image cleanup (after a converged pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImagesStatus>,
}

/// What the last image cleanup left and freed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesStatus {
    /// Deployed images kept on the host, and their bytes.
    pub kept: usize,
    pub kept_bytes: u64,
    /// The images that cleanup removed.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Free bytes where the engine keeps images, when measurable.
    #[serde(default)]
    pub disk_free_bytes: Option<u64>,
    /// Why the cleanup did not run through, if it did not.
    #[serde(default)]
    pub error: Option<String>,
}

impl ImagesStatus {
    /// `3 kept (210.3 MB), 41.2 GB free; the last cleanup removed 2`.
    pub fn describe(&self) -> String {
        if let Some(e) = &self.error {
            return format!("cleanup failed: {e}");
        }
        let mut s = format!("{} kept ({})", self.kept, crate::images::size(self.kept_bytes));
        if let Some(free) = self.disk_free_bytes {
            s.push_str(&format!(", {} free", crate::images::size(free)));
        }
        if !self.removed.is_empty() {
            s.push_str(&format!("; the last cleanup removed {}", self.removed.len()));
        }
        s
    }
}

/// A service held after analysis rolled it back, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBackStatus {
    pub commit: String,
    /// e.g. "5xx 23.1 % of 212 responses > 5 %".
    pub figures: String,
}

/// A head commit that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedCommit {
    pub commit: String,
    /// "no signature", "signed by SHA256:... which is not in ...", ...
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The color the proxy sends traffic to.
    pub live: Option<Color>,
    /// The image each color runs (`None`: no containers).
    pub images: PerColor<Option<String>>,
    /// Running replicas per color.
    pub running: PerColor<u32>,
    /// Share of requests per color, as the proxy reports it.
    #[serde(default)]
    pub weights: PerColor<u32>,
    /// The rollout in progress or last finished (canary step, verify
    /// window, done, rolled back), as recorded.
    #[serde(default)]
    pub rollout: Option<crate::strategy::Progress>,
    /// Set while the desired service is held after analysis rolled it back.
    #[serde(default)]
    pub rolled_back: Option<RolledBackStatus>,
    /// The commit at which this host last found the service converged:
    /// what hosts of later waves wait for.
    #[serde(default)]
    pub serving: Option<String>,
    /// The commit whose deploy of this service failed or was rolled back
    /// here, until a later one converges: later waves stop for it.
    #[serde(default)]
    pub failed: Option<String>,
    /// Why the service waits before deploying (an earlier wave), if it does.
    #[serde(default)]
    pub waiting: Option<String>,
    pub last_deploy: Option<Deploy>,
    /// Running replicas per color that passed one probe of the commit's
    /// health check after the last pass.
    #[serde(default)]
    pub healthy: PerColor<u32>,
    /// The tag of each color's image (`1.4.2`; `latest` when it has none).
    #[serde(default)]
    pub versions: PerColor<Option<String>>,
    /// The registry digest each color's image tag was pinned to at its
    /// first pull on this host (what the color runs); `None` for an image
    /// built on the host or written with its digest.
    #[serde(default)]
    pub digests: PerColor<Option<String>>,
    /// Per color, the digest the registry serves its tag at now, when that
    /// is not what the color runs (the tag moved; nothing is redeployed).
    #[serde(default)]
    pub moved: PerColor<Option<String>>,
    /// While a new image is pulled: the last progress line (`pulling: 2
    /// of 5 layers done, 12.3 MB of 50.1 MB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulling: Option<String>,
    /// Swarm mode: each color's tasks, with their node and endpoint.
    /// Empty (and left out of the document) in engine mode.
    #[serde(default, skip_serializing_if = "no_tasks")]
    pub tasks: PerColor<Vec<TaskStatus>>,
    /// The newest deploys, rollbacks and refusals from the event log,
    /// newest first.
    #[serde(default)]
    pub history: Vec<Recent>,
    /// The route's certificate, when its route has `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateStatus>,
}

/// Where a route's certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertSource {
    /// Ordered from the host's ACME CA (`tls: acme`).
    Acme,
    /// Read from files on the host (`tls: {cert, key}`).
    Files,
}

/// How a route's certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertState {
    /// Served, and not due for renewal.
    Ok,
    /// No certificate yet: an ACME order is running (plain HTTP serves).
    Ordering,
    /// Served, and a renewal order is running.
    Renewing,
    /// The last attempt failed (`error`); what was served before serves on.
    Failed,
}

/// A route's certificate as this host serves it (docs/status.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    pub source: CertSource,
    pub state: CertState,
    /// The served leaf's subject, issuer and names; none while nothing
    /// is served for the route (an order still running, or failed).
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    /// End of the served leaf's validity, unix seconds.
    #[serde(default)]
    pub not_after: Option<i64>,
    /// Why the last install or order failed.
    #[serde(default)]
    pub error: Option<String>,
    /// ACME: when a failed order is tried again, unix seconds.
    #[serde(default)]
    pub retry_at: Option<i64>,
}

/// One Swarm task of a color.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task's container, `<service>-<color>.<slot>.<task id>`.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// `address:port` its port is published on, while it runs.
    pub endpoint: Option<String>,
    pub running: bool,
}

fn no_tasks(t: &PerColor<Vec<TaskStatus>>) -> bool {
    t.blue.is_empty() && t.green.is_empty()
}

/// One entry of `teal history`, without its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    /// When its first step started, RFC 3339 UTC.
    pub time: String,
    pub commit: String,
    pub kind: Kind,
    /// `ok`, `failed`, `refused`, `rolled back` or `unfinished`.
    pub result: EventResult,
    pub duration_ms: u64,
    pub switch: Option<Switch>,
    pub error: Option<String>,
    /// In words: what started, where traffic went, what failed and why.
    #[serde(default)]
    pub detail: String,
    /// The commit's subject and author, when the repo mirror has it.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub author: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub commit: String,
    /// `ok`, `failed`, `rolled back` or `refused`.
    pub result: EventResult,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub at: String,
    /// The commit's subject and author, when the repo mirror has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl CertificateStatus {
    /// One line for people: how it stands, where it comes from, the
    /// served leaf, and what went wrong.
    pub fn describe(&self) -> String {
        let state = match self.state {
            CertState::Ok => "ok",
            CertState::Ordering => "ordering",
            CertState::Renewing => "renewing",
            CertState::Failed => "failed",
        };
        let source = match self.source {
            CertSource::Acme => "acme",
            CertSource::Files => "files",
        };
        let mut parts = vec![];
        if let Some(e) = &self.error {
            parts.push(e.lines().next().unwrap_or("").to_string());
        }
        if let Some(at) = self.retry_at {
            parts.push(format!("tried again at {}", unix_date(at)));
        }
        match (&self.subject, self.not_after) {
            (Some(subject), Some(end)) => {
                let issuer = self.issuer.as_deref().unwrap_or("?");
                let serving = if self.state == CertState::Failed {
                    "still serving "
                } else {
                    ""
                };
                parts.push(format!(
                    "{serving}{subject}, issued by {issuer}, expires {}",
                    unix_date(end)
                ));
            }
            _ if self.state == CertState::Ordering => parts.push("plain HTTP serves until it is issued".into()),
            _ => parts.push("none served".into()),
        }
        format!("{state} ({source}): {}", parts.join("; "))
    }
}

/// Unix seconds as RFC 3339, UTC.
pub fn unix_date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod cert_tests {
    use super::*;

    fn served(state: CertState) -> CertificateStatus {
        CertificateStatus {
            source: CertSource::Acme,
            state,
            subject: Some("CN=shop.example.com".into()),
            issuer: Some("CN=Pebble Intermediate CA".into()),
            names: vec!["shop.example.com".into()],
            not_after: Some(86_400),
            error: None,
            retry_at: None,
        }
    }

    #[test]
    fn a_certificate_is_described_on_one_line() {
        assert_eq!(
            served(CertState::Ok).describe(),
            "ok (acme): CN=shop.example.com, issued by CN=Pebble Intermediate CA, expires 1970-01-02T00:00:00Z"
        );
        let mut failed = served(CertState::Failed);
        failed.error = Some("order for shop.example.com: connection refused\nmore".into());
        failed.retry_at = Some(60);
        assert_eq!(
            failed.describe(),
            "failed (acme): order for shop.example.com: connection refused; tried again at 1970-01-01T00:01:00Z; \
             still serving CN=shop.example.com, issued by CN=Pebble Intermediate CA, expires 1970-01-02T00:00:00Z"
        );
        let ordering = CertificateStatus {
            subject: None,
            issuer: None,
            not_after: None,
            ..served(CertState::Ordering)
        };
        assert_eq!(
            ordering.describe(),
            "ordering (acme): plain HTTP serves until it is issued"
        );
    }
}
