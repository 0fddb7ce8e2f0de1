//! The event log on a full disk (issue 24's fault: `state_dir` on a tmpfs
//! filled to 100 %). An event the disk did not take was lost, and the part
//! of its line that did fit stayed in the log, torn, so the next line was
//! glued to it and lost as well. Now the torn part is cut off, the line is
//! held, and it is written whole, in order, once the disk has room.

mod common;

use common::tmpfs::Tmpfs;
use teal::events::{read_checked, Event, EventLog};

fn event(step: &str, note: usize) -> Event {
    Event {
        time: "2026-12-07T02:00:00.000Z".into(),
        commit: "abc".into(),
        service: "web".into(),
        step: step.into(),
        result: "ok".into(),
        duration_ms: 5,
        error: None,
        color: None,
        from: None,
        image: None,
        note: (note > 0).then(|| "n".repeat(note)),
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
