//! What the daemon reports: the status document (`GET /status`, `teal
//! status`) and Prometheus metrics (`GET /metrics`), updated by the loop.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::events::{Event, EventResult, Kind, Switch};
use crate::source::CommitInfo;
use crate::spec::{Color, PerColor};

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
    /// Swarm mode: each color's tasks, with their node and endpoint.
    /// Empty (and left out of the document) in engine mode.
    #[serde(default, skip_serializing_if = "no_tasks")]
    pub tasks: PerColor<Vec<TaskStatus>>,
    /// The newest deploys, rollbacks and refusals from the event log,
    /// newest first.
    #[serde(default)]
    pub history: Vec<Recent>,
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

/// Counters behind `GET /metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Deploys by (service, result).
    pub deploys: BTreeMap<(String, EventResult), u64>,
    /// Rollbacks by analysis, by (service, reason).
    pub rollbacks: BTreeMap<(String, String), u64>,
    pub failed_checks: BTreeMap<String, u64>,
    pub drift_corrections: BTreeMap<String, u64>,
    pub reconcile_seconds_sum: f64,
    pub reconcile_count: u64,
    pub reconcile_seconds_last: f64,
    pub last_applied_unix: Option<u64>,
    pub fetch_errors: u64,
}

/// Shared between the loop (writer) and the HTTP server (readers).
#[derive(Debug, Clone)]
pub struct Shared {
    pub status: Arc<RwLock<Status>>,
    pub metrics: Arc<RwLock<Metrics>>,
    /// Every event appended to the event log, as it is appended (the
    /// dashboard's live stream).
    pub events: broadcast::Sender<Event>,
    /// A health probe of the running replicas is in flight.
    pub probing: Arc<AtomicBool>,
}

impl Default for Shared {
    fn default() -> Shared {
        // Enough for a burst of steps; a slower reader skips ahead.
        let (events, _) = broadcast::channel(256);
        Shared {
            status: Arc::default(),
            metrics: Arc::default(),
            events,
            probing: Arc::default(),
        }
    }
}

/// A label value escaped per the Prometheus text format.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    /// Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut o = String::new();
        o.push_str("# HELP teal_deploys_total Deploys by service and result.\n# TYPE teal_deploys_total counter\n");
        for ((svc, result), n) in &self.deploys {
            let _ = writeln!(
                o,
                "teal_deploys_total{{service=\"{}\",result=\"{}\"}} {n}",
                esc(svc),
                esc(result.as_str())
            );
        }
        o.push_str("# HELP teal_rollbacks_total Rollouts that analysis rolled back, by service and reason (errors, no_traffic).\n# TYPE teal_rollbacks_total counter\n");
        for ((svc, reason), n) in &self.rollbacks {
            let _ = writeln!(
                o,
                "teal_rollbacks_total{{service=\"{}\",reason=\"{}\"}} {n}",
                esc(svc),
                esc(reason)
            );
        }
        o.push_str("# HELP teal_failed_checks_total Health gates that did not pass.\n# TYPE teal_failed_checks_total counter\n");
        for (svc, n) in &self.failed_checks {
            let _ = writeln!(o, "teal_failed_checks_total{{service=\"{}\"}} {n}", esc(svc));
        }
        o.push_str("# HELP teal_drift_corrections_total Passes that repaired a service without a new commit.\n# TYPE teal_drift_corrections_total counter\n");
        for (svc, n) in &self.drift_corrections {
            let _ = writeln!(o, "teal_drift_corrections_total{{service=\"{}\"}} {n}", esc(svc));
        }
        let _ = writeln!(
            o,
            "# HELP teal_reconcile_duration_seconds Time of reconcile passes.\n# TYPE teal_reconcile_duration_seconds summary\nteal_reconcile_duration_seconds_sum {}\nteal_reconcile_duration_seconds_count {}",
            self.reconcile_seconds_sum, self.reconcile_count
        );
        let _ = writeln!(o, "# HELP teal_reconcile_last_duration_seconds Time of the last pass.\n# TYPE teal_reconcile_last_duration_seconds gauge\nteal_reconcile_last_duration_seconds {}", self.reconcile_seconds_last);
        if let Some(t) = self.last_applied_unix {
            let _ = writeln!(o, "# HELP teal_last_applied_commit_timestamp_seconds When a new commit was last applied.\n# TYPE teal_last_applied_commit_timestamp_seconds gauge\nteal_last_applied_commit_timestamp_seconds {t}");
        }
        let _ = writeln!(o, "# HELP teal_fetch_errors_total Failed fetches or invalid commits.\n# TYPE teal_fetch_errors_total counter\nteal_fetch_errors_total {}", self.fetch_errors);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_is_prometheus_exposition() {
        let mut m = Metrics::default();
        m.deploys.insert(("web".into(), "ok".into()), 2);
        m.deploys.insert(("a\"b".into(), "failed".into()), 1);
        m.failed_checks.insert("web".into(), 1);
        m.reconcile_count = 3;
        m.reconcile_seconds_sum = 1.5;
        let text = m.render();
        assert!(
            text.contains("teal_deploys_total{service=\"web\",result=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("teal_deploys_total{service=\"a\\\"b\",result=\"failed\"} 1\n"),
            "escaped: {text}"
        );
        assert!(text.contains("teal_failed_checks_total{service=\"web\"} 1\n"));
        assert!(text.contains("teal_reconcile_duration_seconds_count 3\n"));
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.split_whitespace().count() == 2),
            "{text}"
        );
    }
}
