//! `GET /metrics` follows the Prometheus conventions, as `promtool check
//! metrics` judges them: base units, `_total` counters, HELP and TYPE on
//! every family.

mod common;

use common::{get_via, promtool_check};
use teal::daemon::status::Shared;

/// Every family with samples, including a label value that needs escaping.
fn busy() -> Shared {
    let shared = Shared::default();
    {
        let mut m = shared.metrics.write().unwrap();
        m.deploys.insert(("web".into(), "ok".into()), 3);
        m.deploys.insert(("web".into(), "failed".into()), 1);
        m.deploys.insert(("api \"v2\"".into(), "refused".into()), 1);
        m.failed_checks.insert("web".into(), 1);
        m.drift_corrections.insert("api \"v2\"".into(), 2);
        m.reconcile_count = 12;
        m.reconcile_seconds_sum = 4.25;
        m.reconcile_seconds_last = 0.125;
        m.last_applied_unix = Some(1_790_000_000);
        m.fetch_errors = 2;
    }
    shared
}

async fn served_metrics(shared: Shared) -> (u16, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = tempfile::tempdir().unwrap();
    let api = teal::daemon::http::Api {
        shared,
        secret: None,
        state_dir: state.path().to_path_buf(),
        token: None,
        ..Default::default()
    };
    let server = tokio::spawn(teal::daemon::http::serve(listener, api, async {
        let _ = stopped.await;
    }));
    let got = get_via(&addr, "localhost", "/metrics").await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    got
}

#[tokio::test]
async fn metrics_pass_promtool_when_busy_and_when_fresh() {
    // promtool really lints: a counter without _total and a family without
    // HELP are rejected, so a pass below means something.
    let bad = promtool_check("# TYPE teal_deploys counter\nteal_deploys 1\n").unwrap_err();
    assert!(bad.contains("_total") && bad.contains("no help text"), "{bad}");

    for (name, shared) in [("busy", busy()), ("fresh", Shared::default())] {
        let (code, body) = served_metrics(shared).await;
        assert_eq!(code, 200, "{body}");
        if let Err(e) = promtool_check(&body) {
            panic!("{name} /metrics:\n{body}\n{e}");
        }
        for family in [
            "teal_deploys_total",
            "teal_failed_checks_total",
            "teal_drift_corrections_total",
            "teal_reconcile_duration_seconds",
            "teal_fetch_errors_total",
        ] {
            assert!(body.contains(&format!("# HELP {family} ")), "{name}: {family}:\n{body}");
            assert!(body.contains(&format!("# TYPE {family} ")), "{name}: {family}:\n{body}");
        }
    }
    let (_, body) = served_metrics(busy()).await;
    assert!(
        body.contains("teal_deploys_total{service=\"api \\\"v2\\\"\",result=\"refused\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("teal_last_applied_commit_timestamp_seconds 1790000000\n"),
        "{body}"
    );
}
