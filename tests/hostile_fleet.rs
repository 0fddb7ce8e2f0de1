//! Hostile-input tests of issue 22 around the daemon's neighbours: a
//! `teal apply` run next to a running daemon, status URLs a repo names
//! for the fleet, and an event log that grows for years. Each reproduces
//! the attack or the bad behaviour against real processes (a daemon, a
//! listener that plays the peer) and asserts what came of it.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::host::TestHost;
use common::hostile::{bytes_read, event_line, history_entry, token_file, until_deployed, until_waiting, FakePeer};
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
    let head = std::process::Command::new("git")
        .args(["-C", h.bare.to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap().trim().to_string();
    assert_eq!(head.len(), 40, "the bare repo's head");
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
    // The daemon (poll 10m, no watcher) has not seen the new commit, so a
    // line about it can only come from apply. (Counting lines raced the
    // daemon's own late lines of the first deploy.)
    let about_head: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| head.starts_with(&e.commit) && !e.commit.is_empty())
        .collect();
    assert!(
        about_head.is_empty(),
        "apply wrote to the daemon's event log: {about_head:?}"
    );

    // The hint: SIGHUP makes the daemon fetch and apply at once.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    h.until_serves("2.0 green\n", 60).await;
}

/// `teal status --fleet` reads only the status URLs the host config
/// lets it read: a URL the repo names for an attacker gets no request
/// (so never the token), plain http off loopback is refused with what to
/// do, and a peer answering an endless body is cut at 1 MiB.
#[test]
fn status_fleet_sends_the_token_only_to_peers_the_host_config_names() {
    let good = FakePeer::start(false);
    let evil = FakePeer::start(false);
    let flood = FakePeer::start(true);
    let repo = common::Repo::new();
    let teal_yaml = format!(
        "hosts:\n  good: {{status: '{}'}}\n  evil: {{status: '{}/'}}\n  far: {{status: 'http://10.255.255.1:9470'}}\n  flood: {{status: '{}'}}\n",
        good.url, evil.url, flood.url
    );
    repo.commit(
        "fleet",
        &[("teal.yaml", Some(&teal_yaml)), ("services/.gitkeep", Some(""))],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.yaml");
    std::fs::write(
        &config,
        format!(
            "repo: {{url: {}}}\nproxy: {{kind: haproxy}}\nstate_dir: {}\nhost: {{name: good, token_file: {}}}\nfleet:\n  peers: ['{}', '{}']\n",
            repo.path().display(),
            dir.path().join("state").display(),
            token_file(dir.path()).display(),
            good.url,
            flood.url
        ),
    )
    .unwrap();
    let started = Instant::now();
    let run = teal(dir.path(), &["status", "--fleet", "--config", config.to_str().unwrap()]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "three hosts are not read:\n{}{}", run.stdout, run.stderr);
    let row = |host: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no row for {host}:\n{}", run.stdout))
            .to_string()
    };

    // The peer the host config names is read, with the token.
    assert!(row("good").ends_with("no services"), "{}", run.stdout);
    let heads = good.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].starts_with("GET /status "), "{heads:?}");
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer fleet-s3cret"),
        "{heads:?}"
    );

    // The repo's URL for an attacker gets nothing at all.
    assert_eq!(evil.heads(), Vec::<String>::new(), "the attacker's URL was contacted");
    assert!(
        row("evil").contains(&format!(
            "status URL {}/ is not in fleet.peers of the host config: not read; add it there",
            evil.url
        )),
        "{}",
        run.stdout
    );

    // Plain http to a host off loopback: refused, saying what to do.
    assert!(
        row("far").contains("status URL http://10.255.255.1:9470 is plain http to a host that is not loopback: not read; use https://, or set fleet.allow_http_peers: true"),
        "{}",
        run.stdout
    );

    // An endless body: cut at the cap, well within the timeout.
    assert!(
        row("flood").contains("status body over 1 MiB: cut there"),
        "{}",
        run.stdout
    );
    assert_eq!(flood.heads().len(), 1);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let start = Instant::now();
    while flood.writing() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "teal kept reading the endless body"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A host config that names a plain-http peer off loopback is refused at
/// its line, unless it opts in with fleet.allow_http_peers.
#[test]
fn a_plain_http_peer_in_the_host_config_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.yaml");
    let text = "repo: {url: /srv/deploy}\nproxy: {kind: haproxy}\nfleet:\n  peers:\n    - https://10.0.0.11:9470\n    - http://10.0.0.12:9470\n";
    std::fs::write(&config, text).unwrap();
    let run = teal(dir.path(), &["config", "--check", config.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let want = format!(
        "{}:6:7: fleet.peers[1]: http://10.0.0.12:9470 is plain http to a host that is not loopback: use https://, or set fleet.allow_http_peers: true (host.token_file then crosses the network in clear)",
        config.display()
    );
    assert!(run.stderr.contains(&want), "{want}\nnot in:\n{}", run.stderr);
    std::fs::write(&config, format!("{text}  allow_http_peers: true\n")).unwrap();
    let run = teal(dir.path(), &["config", "--check", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// The waves read peers through the same rules: a repo that names an
/// attacker's URL as the wave-1 host holds the wave (and the attacker
/// gets no request); an admitted peer answering an endless body is cut at
/// 1 MiB and holds the wave as an unreachable one.
#[tokio::test]
async fn waves_read_only_admitted_peers_and_cut_endless_bodies() {
    proxy_or_fail("haproxy");
    let evil = FakePeer::start(false);
    let flood = FakePeer::start(true);
    let h = TestHost::new("wavepeers").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let token = token_file(h.dir.path());
    std::fs::write(
        &h.config,
        format!(
            "repo: {{url: {}, poll: 300ms}}\nhost: {{name: h2, token_file: {}}}\ndocker: {{network: {}}}\nproxy: {{kind: haproxy, listen: '{}', managed: true}}\nstate_dir: {}\nlisten: '{}'\nfleet: {{peers: ['{}']}}\n",
            h.bare.display(),
            token.display(),
            h.network,
            h.listen,
            h.state.display(),
            h.api,
            flood.url
        ),
    )
    .unwrap();
    let hosts = |h1: &str| {
        format!(
            "hosts:\n  h1: {{labels: {{role: web, wave: \"1\"}}, status: '{h1}'}}\n  h2: {{labels: {{role: web, wave: \"2\"}}, status: 'http://{}'}}\n",
            h.api
        )
    };
    // 1.0 first, without waves: a service that runs nowhere yet is not in
    // the status, so its waiting could not be read there.
    std::fs::write(h.work.join("teal.yaml"), hosts(&evil.url)).unwrap();
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let waves = "placement: {role: web}\nrollout: {by: wave}\n";
    h.push("web 2.0 by wave", &h.service("green", &v1, Some(&v2), waves));

    let want = format!(
        "waiting for wave 1: h1: status URL {} is not in fleet.peers of the host config: not read; add it there if this host may read it (and send it host.token_file)",
        evil.url
    );
    until_waiting(&h, 60, |w| w == want).await;
    assert_eq!(evil.heads(), Vec::<String>::new(), "the attacker's URL was contacted");
    let v2_runs = || h.ps("{{.Image}}").contains(&v2);
    assert!(!v2_runs(), "wave 2 deployed without wave 1");

    std::fs::write(h.work.join("teal.yaml"), hosts(&flood.url)).unwrap();
    h.push("h1 at the flood", &h.service("green", &v1, Some(&v2), waves));
    until_waiting(&h, 60, |w| {
        w.starts_with("waiting for wave 1: h1 unreachable since ") && w.ends_with("(status body over 1 MiB: cut there)")
    })
    .await;
    let heads = flood.heads();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer fleet-s3cret"),
        "an admitted peer gets the token: {heads:?}"
    );
    assert!(!v2_runs(), "wave 2 deployed without wave 1");
}

/// A deploy whose lines straddle two rotations is one whole entry in
/// `teal history`: it reads events.jsonl.N ... .1 and events.jsonl in order.
#[test]
fn history_reads_across_the_rotated_files_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    std::fs::write(
        state.join("events.jsonl.2"),
        event_line("start_color", Some("green"), None, Some("shop/web:2.0")),
    )
    .unwrap();
    std::fs::write(
        state.join("events.jsonl.1"),
        event_line("switch", Some("green"), Some("blue"), None),
    )
    .unwrap();
    std::fs::write(state.join("events.jsonl"), event_line("deploy", None, None, None)).unwrap();
    let run = teal(
        dir.path(),
        &["history", "--state-dir", state.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", run.stdout);
    let e = &entries[0];
    assert_eq!(e["result"], "ok", "{e}");
    assert_eq!(e["switch"], serde_json::json!({"from": "blue", "to": "green"}), "{e}");
    assert_eq!(
        e["started"],
        serde_json::json!([{"color": "green", "image": "shop/web:2.0"}]),
        "{e}"
    );
    assert_eq!(e["steps"].as_array().unwrap().len(), 2, "{e}");
}

/// A daemon starting on a 200 MiB event log (years of history, or a log
/// blown up on purpose) reads its last byte, not the whole file: what the
/// process reads in all stays far below the log's size. The first append
/// then rotates the log instead of growing it further.
#[tokio::test]
async fn a_huge_event_log_is_not_read_at_start_and_rotates() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("biglog").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    h.managed_config("haproxy");
    std::fs::create_dir_all(&h.state).unwrap();
    let log = h.state.join("events.jsonl");
    const HUGE: u64 = 200 * 1024 * 1024;
    {
        // Sparse: 200 MiB on paper, a few blocks on disk.
        let f = std::fs::File::create(&log).unwrap();
        f.set_len(HUGE).unwrap();
    }
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(event_line("deploy", None, None, None).as_bytes()).unwrap();
    drop(f);
    let huge_len = std::fs::metadata(&log).unwrap().len();

    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    let start = Instant::now();
    while !h
        .events()
        .iter()
        .any(|e| e.step == teal::events::DEPLOY && e.service == h.svc)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no deploy line:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = bytes_read(daemon.pid());
    // The figure in BENCHMARKS.md ("Daemon start on a huge event log").
    eprintln!("the daemon read {read} bytes in all; the event log is {huge_len} bytes");
    assert!(
        read < 32 * 1024 * 1024,
        "the daemon read {read} bytes in all with a {huge_len}-byte event log: it reads the log whole"
    );
    // The default 16 MiB rotation: the huge file moved aside, by a rename.
    let rotated = h.state.join("events.jsonl.1");
    assert_eq!(std::fs::metadata(&rotated).map(|m| m.len()).ok(), Some(huge_len));
    assert!(std::fs::metadata(&log).unwrap().len() < 64 * 1024);
}

/// With `events: {max_size: 1KiB, keep: 2}` the daemon's log rotates
/// before any file passes 1 KiB and keeps two rotated files; `teal
/// history` shows a deploy whose lines are spread over two files whole.
#[tokio::test]
async fn the_daemon_rotates_its_log_at_the_configured_size() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("rotate").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    h.managed_config("haproxy");
    let text = std::fs::read_to_string(&h.config).unwrap();
    std::fs::write(&h.config, format!("{text}events: {{max_size: 1KiB, keep: 2}}\n")).unwrap();
    let log = h.state.join("events.jsonl");
    h.push("web 1.0", &h.service("blue", &v1, None, ""));
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 60).await;
    h.push("web 2.0", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    let c2 = until_deployed(&h, &log).await;

    // The 2.0 deploy's six or so lines cannot fit in one 1 KiB file.
    let holding = teal::events::files(&log)
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(&c2))
        .count();
    assert!(holding >= 2, "the 2.0 deploy's lines are in {holding} file(s)");
    let entry = history_entry(&h, &c2);
    assert_eq!(entry["result"], "ok", "{entry}");
    assert_eq!(
        entry["switch"],
        serde_json::json!({"from": "blue", "to": "green"}),
        "{entry}"
    );
    assert_eq!(
        entry["started"],
        serde_json::json!([{"color": "green", "image": v2}]),
        "{entry}"
    );

    // More deploys: still two rotated files, none past 1 KiB.
    h.push("web 1.0 again", &h.service("blue", &v1, Some(&v2), ""));
    h.until_serves("1.0 blue\n", 60).await;
    until_deployed(&h, &log).await;
    h.push("web 2.0 again", &h.service("green", &v1, Some(&v2), ""));
    h.until_serves("2.0 green\n", 60).await;
    until_deployed(&h, &log).await;
    let files = teal::events::files(&log);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["events.jsonl.2", "events.jsonl.1", "events.jsonl"]);
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 1024, "{} is {len} bytes, past max_size", f.display());
    }
}
