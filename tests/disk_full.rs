//! A full disk under `state_dir` (issue 24's fault: a tmpfs filled to
//! 100 %). The event log: an event the disk did not take was lost, and the
//! part of its line that did fit stayed in the log, torn, so the next line
//! was glued to it and lost as well. Now the torn part is cut off, the line
//! is held, and it is written whole, in order, once the disk has room. And
//! a switch the proxy's files cannot record goes back (below).

mod common;

use std::time::{Duration, Instant};

use common::host::{Checks, TestHost};
use common::tmpfs::Tmpfs;
use common::{app_image_version, git_in};
use teal::events::{read_checked, Event, EventLog};

fn event(step: &str, note: usize) -> Event {
    Event {
        time: "2026-12-07T02:00:00.000Z".into(),
        step: step.into(),
        note: (note > 0).then(|| "n".repeat(note)),
        ..Event::outcome("web", "abc", "ok", 5, None)
    }
}

fn line_len(e: &Event) -> usize {
    serde_json::to_vec(e).unwrap().len() + 1
}

#[test]
fn an_event_the_full_disk_refused_is_written_whole_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("state"), 256 * 1024);
    let state = dir.path().join("state");
    let log = EventLog::open(&state).unwrap();
    // The first line ends 100 bytes short of a page: once the disk is
    // full, a longer line goes in only in part.
    let first = event("first", 4096 - 100 - line_len(&event("first", 1)) + 1);
    assert_eq!(line_len(&first), 3996);
    log.append(&first).unwrap();
    let fill = fs.fill();

    let err = log.append(&event("second", 300)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    let text = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(text.len(), 3996, "a torn line is left: {:?}", &text[3900..]);
    assert!(log.append(&event("third", 0)).is_err());
    assert!(log.flush_held().is_err(), "the disk is still full");

    std::fs::remove_file(fill).unwrap();
    log.flush_held().unwrap();
    let read = read_checked(log.path()).unwrap();
    let steps: Vec<&str> = read.events.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["first", "second", "third"]);
    assert!(read.skipped.is_empty(), "{:?}", read.skipped);
    // Written once: the next append adds only its own line.
    log.append(&event("fourth", 0)).unwrap();
    assert_eq!(read_checked(log.path()).unwrap().events.len(), 4);
    drop(fs);
}

/// Found by the soak with `state_dir` full: HAProxy's switch moved traffic
/// through the runtime API, then could not write the file that records it;
/// teal said "deploy failed, traffic stays where it was" while all traffic
/// was on the new color, and wrote no deploy line when it later found the
/// route as wanted. Now the unrecorded switch is put back.
async fn a_switch_the_full_disk_cannot_record_leaves_traffic_where_it_was(kind: &str) {
    common::proxy_or_fail(kind);
    let h = TestHost::new("full").await;
    let v1 = app_image_version(&h.docker, "1.0", true).await;
    let v2 = app_image_version(&h.docker, "2.0", true).await;
    // Five checks a second apart: time to fill the disk after the start.
    let slow = Checks {
        interval: "1s",
        successes: 5,
        deadline: "30s",
    };
    let fs = Tmpfs::mount(&h.state, 64 << 20);
    h.push("web 1.0", &h.service_checked("blue", &v1, None, &slow, ""));
    h.managed_config(kind);
    let _daemon = h.start_daemon();
    h.until_serves("1.0 blue\n", 90).await;

    h.push("web 2.0", &h.service_checked("green", &v1, Some(&v2), &slow, ""));
    let head = git_in(&h.work, &["rev-parse", "HEAD"]);
    let step = |e: &Event, step: &str| e.commit == head && e.step.as_str() == step;
    until(&h, 60, |events| events.iter().any(|e| step(e, "start_color"))).await;
    let fill = fs.fill();
    until(&h, 60, |_| {
        h.log_text().contains("deploy failed, traffic stays where it was")
    })
    .await;
    h.until_only_serves("1.0 blue\n", 10).await;

    std::fs::remove_file(fill).unwrap();
    h.until_only_serves("2.0 green\n", 60).await;
    until(&h, 30, |events| {
        events.iter().any(|e| step(e, "deploy") && e.result == "ok")
    })
    .await;
}

/// Polls the event log until `done` holds, or fails with the daemon log.
async fn until(h: &TestHost, secs: u64, done: impl Fn(&[Event]) -> bool) {
    let start = Instant::now();
    while !done(&h.events()) {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "not within {secs}s; log:\n{}",
            h.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_switch_on_a_full_disk() {
    a_switch_the_full_disk_cannot_record_leaves_traffic_where_it_was("haproxy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_switch_on_a_full_disk() {
    a_switch_the_full_disk_cannot_record_leaves_traffic_where_it_was("nginx").await;
}
