//! What the daemon reports: the status document (`GET /status`, `teal
//! status`; its types are the core's `status`) and Prometheus metrics
//! (`GET /metrics`), updated by the loop and shared with the HTTP server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock};

use tokio::sync::broadcast;

use crate::events::{Event, EventResult};
pub use crate::status::{Deploy, Recent, RefusedCommit, RolledBackStatus, ServiceStatus, Status, TaskStatus};

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
    /// When each route's served certificate ends, unix seconds.
    pub certificate_not_after: BTreeMap<String, i64>,
    /// The last image cleanup: deployed images' bytes kept, and the free
    /// bytes where the engine keeps images.
    pub images_kept_bytes: Option<u64>,
    pub docker_disk_free_bytes: Option<u64>,
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
        o.push_str("# HELP teal_rollbacks_total Rollouts that analysis rolled back, by service and reason (errors, no_traffic, prometheus, inconclusive).\n# TYPE teal_rollbacks_total counter\n");
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
        o.push_str("# HELP teal_certificate_expiry_seconds Seconds until the certificate a route serves expires (negative: expired).\n# TYPE teal_certificate_expiry_seconds gauge\n");
        let now = crate::reconcile::orders::unix_now();
        for (svc, end) in &self.certificate_not_after {
            let _ = writeln!(
                o,
                "teal_certificate_expiry_seconds{{service=\"{}\"}} {}",
                esc(svc),
                end - now
            );
        }
        if let Some(b) = self.images_kept_bytes {
            let _ = writeln!(o, "# HELP teal_images_kept_bytes Bytes of the deployed images the last cleanup kept.\n# TYPE teal_images_kept_bytes gauge\nteal_images_kept_bytes {b}");
        }
        if let Some(b) = self.docker_disk_free_bytes {
            let _ = writeln!(o, "# HELP teal_docker_disk_free_bytes Free bytes on the file system of Docker's root dir.\n# TYPE teal_docker_disk_free_bytes gauge\nteal_docker_disk_free_bytes {b}");
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
        let end = crate::reconcile::orders::unix_now() + 1000;
        m.certificate_not_after.insert("web".into(), end);
        m.images_kept_bytes = Some(123_456);
        m.docker_disk_free_bytes = Some(9_000_000_000);
        let text = m.render();
        assert!(text.contains("\nteal_images_kept_bytes 123456\n"), "{text}");
        assert!(text.contains("\nteal_docker_disk_free_bytes 9000000000\n"), "{text}");
        let left: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("teal_certificate_expiry_seconds{service=\"web\"} "))
            .expect("the expiry gauge")
            .parse()
            .expect("a number");
        assert!((990..=1000).contains(&left), "{left}");
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
