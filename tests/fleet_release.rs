//! The release command in a fleet: two hosts, each a Docker engine of its
//! own with its own daemon and managed HAProxy. One host (the first by
//! wave, then name) runs the release; the other runs none and deploys
//! only once that host serves the commit; a release that fails there
//! stops the other host, whose traffic stays where it was.

mod common;

use std::path::PathBuf;

use common::fleet::{admit_each_other, commit, service, teal_yaml, Member};
use common::host::TestHost;
use common::{app_image_version, proxy_or_fail};

/// The host's event log lines for `service` at `step`.
fn lines(m: &Member, service: &str, step: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(state(m).join("events.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["service"] == service && e["step"] == step)
        .collect()
}

fn state(m: &Member) -> PathBuf {
    m.config.with_file_name("state")
}

#[tokio::test]
async fn one_host_runs_the_release_and_the_other_deploys_after_it() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("flrel").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let (a, b) = (
        Member::new(&h, "h1", &[v1.as_str(), v2.as_str()]),
        Member::new(&h, "h2", &[v1.as_str(), v2.as_str()]),
    );
    admit_each_other(&[&a, &b]);
    let web = format!("{}.test", h.svc);
    let file = format!("services/{}.yaml", h.svc);
    // No waves: both hosts would deploy at once, but h2 waits for h1's
    // release (3 s long) before its color starts.
    let release =
        |mode: &str| format!("placement: {{role: web}}\nrelease: {{command: [release, '{mode}', X], timeout: 60s}}\n");
    let c1 = commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (&file, service(&web, "blue", &v1, None, &release("sleep:3000"))),
        ],
    );
    let (_da, _db) = (a.start(), b.start());
    a.serving(&h.svc, &c1).await;
    b.serving(&h.svc, &c1).await;
    b.serves(&web, "1.0 blue\n", 30).await;

    let ran = lines(&a, &h.svc, "release");
    assert_eq!(ran.len(), 1, "h1 ran the release once: {ran:?}");
    assert_eq!(ran[0]["result"], "ok");
    assert!(lines(&b, &h.svc, "release").is_empty(), "h2 ran none:\n{}", b.log());
    assert!(
        !state(&b).join(format!("releases/{}.json", h.svc)).exists(),
        "h2 has no release record"
    );
    let started = lines(&b, &h.svc, "start_color");
    let (released_at, started_at) = (ran[0]["time"].as_str().unwrap(), started[0]["time"].as_str().unwrap());
    assert!(
        started_at > released_at,
        "h2 started blue at {started_at}, before h1's release ended at {released_at}"
    );
    assert!(b.log().contains("waiting for the release on h1"), "{}", b.log());

    // A release that fails on h1 stops h2 too; both keep serving 1.0.
    let c2 = commit(&h, &[(&file, service(&web, "green", &v1, Some(&v2), &release("fail")))]);
    let start = std::time::Instant::now();
    while !b.log().contains("stopped: h1, which runs the release, failed at") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "h2 never stopped for h1's failed release of {c2}:\n{}",
            b.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    a.serves(&web, "1.0 blue\n", 5).await;
    b.serves(&web, "1.0 blue\n", 5).await;
    assert!(
        b.engine
            .containers(&h.svc)
            .iter()
            .all(|(name, _)| !name.contains("green")),
        "h2 started no green: {:?}",
        b.engine.containers(&h.svc)
    );
    assert!(lines(&b, &h.svc, "release").is_empty());
}
