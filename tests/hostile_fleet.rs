//! Hostile-input tests of issue 22 around the daemon's neighbours: a
//! `teal apply` run next to a running daemon, status URLs a repo names
//! for the fleet, and an event log that grows for years. Each reproduces
//! the attack or the bad behaviour against real processes (a daemon, a
//! listener that plays the peer) and asserts what came of it.

mod common;

use common::host::TestHost;
use common::{app_image_version, proxy_or_fail, teal};

/// `teal apply` next to a running daemon would race it on the proxy's
/// files and the containers: it must refuse, name the daemon, say how to
/// make the daemon apply now, and change nothing; that hint must work.
#[tokio::test]
async fn apply_next_to_a_running_daemon_refuses_and_says_how_to_trigger_it() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("applock").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    // No watcher and a long poll: only the hint can start the next pass.
    std::fs::write(
        &h.config,
        format!(
            "repo: {{url: {}, poll: 10m, watch: false}}\ndocker: {{network: {}}}\nproxy: {{kind: haproxy, listen: '{}', managed: true}}\nstate_dir: {}\nlisten: '{}'\n",
            h.bare.display(),
            h.network,
            h.listen,
            h.state.display(),
            h.api
        ),
    )
    .unwrap();
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    // The first deploy is over once its outcome line is written.
    let start = std::time::Instant::now();
    while !h.events().iter().any(|e| e.step == teal::events::DEPLOY) {
        assert!(start.elapsed().as_secs() < 30, "no deploy line:\n{}", h.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    let events_before = h.events().len();
    let run = teal(h.dir.path(), &["apply", "--config", h.config.to_str().unwrap()]);
    let pid = daemon.pid();
    assert_eq!(run.code, 1, "apply must refuse next to the daemon:\n{}", run.stderr);
    for want in [
        format!("a teal daemon (pid {pid}) is running on {}", h.state.display()),
        "applies the branch head itself".to_string(),
        format!("kill -HUP {pid}"),
        "systemctl reload teal".to_string(),
    ] {
        assert!(run.stderr.contains(&want), "{want:?} not in:\n{}", run.stderr);
    }
    assert!(
        h.ps("{{.Image}}").iter().all(|i| *i != v2),
        "apply started 2.0 next to the daemon: {:?}",
        h.ps("{{.Names}} {{.Image}}")
    );
    assert_eq!(h.events().len(), events_before, "apply wrote to the daemon's event log");

    // The hint: SIGHUP makes the daemon fetch and apply at once.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    h.until_serves("2.0 green\n", 60).await;
}
