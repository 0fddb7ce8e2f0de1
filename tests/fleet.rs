//! Several hosts on one repo: each host a Docker engine of its own (its
//! own bridge and address pool) with its own daemon, managed proxy and
//! status API. Placement, waves gated on the peers' status, a failed wave
//! stopping the rollout, an unreachable wave-1 host holding wave 2,
//! `teal status --fleet` with a host down, a host name the fleet does not
//! list, and nothing left behind.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::fleet::{admit_each_other, commit, service, teal_yaml, Member};
use common::host::TestHost;
use common::{app_image_version, proxy_or_fail, teal};

#[tokio::test]
async fn placement_waves_a_failed_wave_and_an_unreachable_one() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("fleet").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    let v3 = app_image_version(&h.docker, "3.0", true).await;
    let bad = app_image_version(&h.docker, "9.0", false).await;
    let images = [v1.as_str(), v2.as_str(), v3.as_str(), bad.as_str()];
    let (a, b) = (Member::new(&h, "h1", &images), Member::new(&h, "h2", &images));
    admit_each_other(&[&a, &b]);
    let web = format!("{}.test", h.svc);
    let solo = format!("solo-{}", h.svc);
    let waves = "placement: {role: web}\nrollout: {by: wave}\n";
    let web_file = format!("services/{}.yaml", h.svc);
    let solo_file = format!("services/{solo}.yaml");
    commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (&web_file, service(&web, "blue", &v1, None, waves)),
            (
                &solo_file,
                service("solo.test", "blue", &v1, None, "placement: {wave: \"1\"}\n"),
            ),
        ],
    );
    let mut da = a.start();
    let db = b.start();
    a.serves(&web, "1.0 blue\n", 60).await;
    b.serves(&web, "1.0 blue\n", 60).await;
    a.serves("solo.test", "1.0 blue\n", 60).await;

    // Placement: solo runs on h1 only.
    assert_eq!(a.engine.containers(&solo).len(), 1);
    assert!(b.engine.containers(&solo).is_empty(), "solo is not placed on h2");

    // Waves: h2 creates 2.0 only once h1 serves it, and without waiting
    // for h1's drain of the old color (6 s here; 5 s by default).
    let draining = service(&web, "green", &v1, Some(&v2), waves).replace("drain: 100ms", "drain: 6s");
    let c2 = commit(&h, &[(&web_file, draining)]);
    let h1_events = a.config.with_file_name("state").join("events.jsonl");
    let h1_drained = || {
        std::fs::read_to_string(&h1_events)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&c2) && l.contains("\"step\":\"drain\""))
    };
    let start = Instant::now();
    let (mut h1_serves, mut h2_starts) = (None, None);
    while h2_starts.is_none() {
        if h1_serves.is_none()
            && a.status()
                .await
                .is_some_and(|s| s["services"][&h.svc]["serving"] == c2.as_str())
        {
            h1_serves = Some(Instant::now());
        }
        if b.engine.containers(&h.svc).iter().any(|(_, i)| *i == v2) {
            h2_starts = Some(Instant::now());
            assert!(!h1_drained(), "wave 2 waited for wave 1's drain");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no wave 2:\n{}", b.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        h1_serves.is_some_and(|s| s <= h2_starts.unwrap()),
        "wave 2 created 2.0 before wave 1 served it"
    );
    b.serves(&web, "2.0 green\n", 60).await;
    b.serving(&h.svc, &c2).await;
    a.serving(&solo, &c2).await;
    // Both runs end (the drains) before the fleet's status is read.
    for m in [&a, &b] {
        let events = m.config.with_file_name("state").join("events.jsonl");
        let start = Instant::now();
        while !std::fs::read_to_string(&events)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&c2) && l.contains("\"step\":\"deploy\""))
        {
            assert!(start.elapsed() < Duration::from_secs(60), "{}", m.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let fleet = teal(
        h.dir.path(),
        &["status", "--fleet", "--config", a.config.to_str().unwrap()],
    );
    assert_eq!(fleet.code, 0, "{}{}", fleet.stdout, fleet.stderr);
    for host in ["h1", "h2"] {
        let line = fleet
            .stdout
            .lines()
            .find(|l| l.starts_with(host) && l.contains(&format!(" {} ", h.svc)))
            .unwrap_or("");
        assert!(
            line.contains("green") && line.contains("2.0") && line.contains(&c2[..7]) && line.ends_with("serving"),
            "{}",
            fleet.stdout
        );
    }

    // A service moved to another host leaves this one (after a drain).
    let moved = commit(
        &h,
        &[(
            &solo_file,
            service("solo.test", "blue", &v1, None, "placement: {wave: \"2\"}\n"),
        )],
    );
    b.serves("solo.test", "1.0 blue\n", 60).await;
    let start = Instant::now();
    while !a.engine.containers(&solo).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "solo stays on h1 at {moved}:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(b.engine.containers(&solo).len(), 1);

    // A failed wave stops the rollout: h2 never starts the broken build.
    let c9 = commit(&h, &[(&web_file, service(&web, "blue", &bad, Some(&v2), waves))]);
    let start = Instant::now();
    loop {
        if b.status().await.is_some_and(|s| {
            s["services"][&h.svc]["waiting"] == format!("stopped: wave 1 failed at {} on h1", &c9[..7]).as_str()
        }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "h2 never stopped:\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !b.engine.containers(&h.svc).iter().any(|(_, i)| *i == bad),
        "h2 never runs the broken build"
    );
    b.serves(&web, "2.0 green\n", 5).await;

    // An unreachable wave-1 host holds wave 2.
    da.kill_9();
    let _ = a.engine.docker(&["ps"]);
    common::process::kill_proxies(&h.dir.path().join("h1/state/proxy"));
    let c3 = commit(&h, &[(&web_file, service(&web, "blue", &v3, Some(&v2), waves))]);
    let start = Instant::now();
    loop {
        let w = b
            .status()
            .await
            .and_then(|s| s["services"][&h.svc]["waiting"].as_str().map(String::from));
        if w.as_deref()
            .is_some_and(|w| w.starts_with("waiting for wave 1: h1 unreachable since "))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "h2 does not say it waits ({w:?}):\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !b.engine.containers(&h.svc).iter().any(|(_, i)| *i == v3),
        "h2 waits for h1 (at {c3})"
    );
    let fleet = teal(
        h.dir.path(),
        &["status", "--fleet", "--config", b.config.to_str().unwrap()],
    );
    assert_eq!(fleet.code, 1, "a host down is a failed read: {}", fleet.stdout);
    assert!(
        fleet
            .stdout
            .lines()
            .any(|l| l.starts_with("h1") && l.contains("unreachable")),
        "{}",
        fleet.stdout
    );
    assert!(
        fleet.stdout.lines().any(|l| l.starts_with("h2") && l.contains(&h.svc)),
        "{}",
        fleet.stdout
    );

    // Nothing of the engines stays behind.
    let bridges = [a.engine.bridge().to_string(), b.engine.bridge().to_string()];
    drop(db);
    drop((a, b));
    for br in bridges {
        assert!(
            !Command::new("ip")
                .args(["link", "show", &br])
                .output()
                .unwrap()
                .status
                .success(),
            "bridge {br} removed"
        );
    }
}

#[tokio::test]
async fn a_host_the_fleet_does_not_list_applies_nothing() {
    proxy_or_fail("haproxy");
    let h = TestHost::new("stranger").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let a = Member::new(&h, "h1", &[v1.as_str()]);
    let b = Member::new(&h, "h2", &[v1.as_str()]);
    let stranger = Member::new(&h, "h3", &[v1.as_str()]);
    let text = std::fs::read_to_string(&stranger.config)
        .unwrap()
        .replace("name: h3", "name: web-9");
    std::fs::write(&stranger.config, text).unwrap();
    commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (
                &format!("services/{}.yaml", h.svc),
                service("x.test", "blue", &v1, None, ""),
            ),
        ],
    );
    let _d = stranger.start();
    let start = Instant::now();
    loop {
        if let Some(r) = stranger
            .status()
            .await
            .and_then(|s| s["refused"]["reason"].as_str().map(String::from))
        {
            assert_eq!(r, "this host, \"web-9\" (host.name in the host config), is not in teal.yaml's hosts (h1, h2): applying nothing");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{}", stranger.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stranger.engine.containers(&h.svc).is_empty(), "nothing deployed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_moved_between_two_waves_pulls_leaves_both_hosts_on_one_digest() {
    proxy_or_fail("haproxy");
    let reg = common::registry::Registry::start();
    let h = TestHost::new("fleetpin").await;
    let repo = common::unique("shop/fleet");
    let tag = reg.push(&app_image_version(&h.docker, "1.0", true).await, &format!("{repo}:1"));
    let (a, b) = (Member::new(&h, "h1", &[]), Member::new(&h, "h2", &[]));
    admit_each_other(&[&a, &b]);
    let pw = reg.password_file(h.dir.path(), &reg.password);
    for m in [&a, &b] {
        let text = std::fs::read_to_string(&m.config).unwrap();
        std::fs::write(
            &m.config,
            format!(
                "{text}registries: [{{host: '{}', username: {}, password_file: {}}}]\n",
                reg.addr,
                reg.user,
                pw.display()
            ),
        )
        .unwrap();
    }
    let web = format!("{}.test", h.svc);
    let waves = "placement: {role: web}\nrollout: {by: wave}\n";
    let c1 = commit(
        &h,
        &[
            ("teal.yaml", teal_yaml(&a, &b)),
            (
                &format!("services/{}.yaml", h.svc),
                service(&web, "blue", &tag, None, waves),
            ),
        ],
    );
    // Wave 1 pulls the tag and serves it; only then does the tag move.
    let _da = a.start();
    a.serving(&h.svc, &c1).await;
    a.serves(&web, "1.0 blue\n", 60).await;
    let digest = a.status().await.unwrap()["services"][&h.svc]["digests"]["blue"]
        .as_str()
        .expect("h1's status names the digest")
        .to_string();
    reg.push(&app_image_version(&h.docker, "2.0", true).await, &format!("{repo}:1"));
    // Wave 2 pulls after the move, and runs what wave 1 runs.
    let _db = b.start();
    b.serving(&h.svc, &c1).await;
    b.serves(&web, "1.0 blue\n", 60).await;
    let pinned = format!("{}/{repo}@{digest}", reg.addr);
    let names: Vec<String> = b.engine.containers(&h.svc).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 1, "{}", b.log());
    let out = b
        .engine
        .docker(&["inspect", "--format", "{{.Config.Image}}", &names[0]]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pinned, "{}", b.log());
    assert!(b.log().contains("pinned as the earlier wave runs it"), "{}", b.log());
    assert_eq!(
        b.status().await.unwrap()["services"][&h.svc]["digests"]["blue"],
        digest.as_str()
    );
}
