//! The event log: every applied step appended to `events.jsonl` in the
//! state dir, one JSON object per line (time, commit, service, step,
//! result, duration), and after a service's steps one `deploy` line with
//! the outcome (or a refusal). A torn last line (a crash mid-write) is
//! skipped by the reader and fenced off by the writer. The log rotates by
//! size (`rotate`), so it never grows without bound, and nothing reads
//! more of it than it needs: the writer looks at its last byte, views of
//! recent events at its tail. `teal history` reads it back across the
//! rotated files; the line format is documented in docs/history.md.

mod held;
mod rotate;
pub mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use rotate::{files, Rotation, DEFAULT_KEEP, DEFAULT_MAX_SIZE};
pub use teal_core::events::{Event, EventResult, Kind, StepEvent, StepKind, Switch, DEPLOY};

fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Appends events to a file.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
    /// Where each appended event is also sent (the dashboard's stream).
    tx: Option<tokio::sync::broadcast::Sender<Event>>,
    /// Where each appended event is offered without waiting (the
    /// notifier): when its queue is full the event is dropped, not waited for.
    sink: Option<tokio::sync::mpsc::Sender<Event>>,
    rotation: Rotation,
    /// One append (and rotation) at a time among the clones of this log,
    /// and the lines a full disk did not take yet (`held`).
    writing: Arc<Mutex<held::Held>>,
}

impl EventLog {
    /// The log in `state_dir`, created when missing, with the default
    /// rotation. A torn last line left by a crash is ended, so the next
    /// event starts on its own line; only that last byte is read.
    pub fn open(state_dir: &Path) -> std::io::Result<EventLog> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("events.jsonl");
        if rotate::last_byte(&path).ok().flatten().is_some_and(|b| b != b'\n') {
            std::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"\n")?;
        }
        Ok(EventLog {
            path,
            tx: None,
            sink: None,
            rotation: Rotation::default(),
            writing: Arc::default(),
        })
    }

    /// Rotates at `rotation` instead of the default (`events` in the host config).
    pub fn with_rotation(mut self, rotation: Rotation) -> EventLog {
        self.rotation = rotation;
        self
    }

    /// Also sends each event to `tx` once it is written.
    pub fn with_broadcast(mut self, tx: tokio::sync::broadcast::Sender<Event>) -> EventLog {
        self.tx = Some(tx);
        self
    }

    /// Also offers each event to `sink` once it is written, never waiting.
    pub fn with_sink(mut self, sink: Option<tokio::sync::mpsc::Sender<Event>>) -> EventLog {
        self.sink = sink;
        self
    }

    /// Appends one event as one line, with a single write; first rotates
    /// the log when the line would take it past its size. An event
    /// without a time is stamped with the time of writing. When the disk
    /// does not take it (full), the line is held and written before the
    /// next one (`held`); the error is still returned, and the event is
    /// still broadcast and notified: it happened.
    pub fn append(&self, e: &Event) -> std::io::Result<()> {
        let stamped;
        let e = if e.time.is_empty() {
            stamped = Event {
                time: now(),
                ..e.clone()
            };
            &stamped
        } else {
            e
        };
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut held = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        held.push(&line);
        let written = held.write(&self.path, &self.rotation);
        drop(held);
        if let Some(tx) = &self.tx {
            // No receiver (no dashboard open) is not an error.
            let _ = tx.send(e.clone());
        }
        if let Some(sink) = &self.sink {
            if let Err(tokio::sync::mpsc::error::TrySendError::Full(e)) = sink.try_send(e.clone()) {
                tracing::warn!(service = %e.service, commit = %e.commit, step = %e.step, result = %e.result, "notify queue full: event not notified");
            }
        }
        written
    }

    /// Writes the lines a full disk did not take (each pass of the daemon
    /// calls it, so they do not wait for the next event); `Ok` when none
    /// are left.
    pub fn flush_held(&self) -> std::io::Result<()> {
        let mut held = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        held.write(&self.path, &self.rotation)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every complete event; lines that do not parse (a torn write) are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Event>> {
    Ok(read_checked(path)?.events)
}

/// The events in the last `bytes` of the log, across its rotated files
/// (the first, partial line dropped), for views of what happened lately
/// without reading it all. Lines that are not events are counted in
/// `skipped`, numbered from the start of that window.
pub fn read_tail(path: &Path, bytes: u64) -> std::io::Result<Log> {
    let (buf, on_line) = rotate::tail(path, bytes)?;
    let text = String::from_utf8_lossy(&buf);
    let whole = if on_line {
        &text[..]
    } else {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    };
    Ok(parse(whole))
}

/// What `read_checked` found.
#[derive(Debug, Default)]
pub struct Log {
    pub events: Vec<Event>,
    /// Lines that are not events, as (1-based line number, why).
    pub skipped: Vec<(usize, String)>,
}

/// Reads every event and says which lines were skipped and why, so a
/// reader can warn about them (blank lines are not worth a warning).
pub fn read_checked(path: &Path) -> std::io::Result<Log> {
    let bytes = std::fs::read(path)?;
    // Checking UTF-8 whole is much faster than the lossy walk, which only
    // a log with invalid bytes needs.
    Ok(match String::from_utf8(bytes) {
        Ok(text) => parse(&text),
        Err(e) => parse(&String::from_utf8_lossy(e.as_bytes())),
    })
}

fn parse(text: &str) -> Log {
    let mut log = Log::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(e) => log.events.push(e),
            Err(err) => log.skipped.push((i + 1, err.to_string())),
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;
    use crate::spec::Color;

    fn event(step: &str) -> Event {
        Event {
            time: "2026-11-22T17:00:00.000Z".into(),
            commit: "abc".into(),
            service: "web".into(),
            step: step.into(),
            result: "ok".into(),
            duration_ms: 5,
            error: None,
            color: None,
            from: None,
            image: None,
            note: None,
        }
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_fenced_off() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&event("pull_image")).unwrap();
        log.append(&event("start_color")).unwrap();
        // A crash in the middle of the third write.
        let mut f = std::fs::OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(br#"{"time":"2026-11-22T17:00:01Z","commit":"abc","serv"#)
            .unwrap();
        let got: Vec<String> = read(log.path())
            .unwrap()
            .into_iter()
            .map(|e| e.step.to_string())
            .collect();
        assert_eq!(got, ["pull_image", "start_color"]);
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&event("switch")).unwrap();
        let got: Vec<String> = read(log.path())
            .unwrap()
            .into_iter()
            .map(|e| e.step.to_string())
            .collect();
        assert_eq!(got, ["pull_image", "start_color", "switch"]);
    }

    #[test]
    fn a_step_line_carries_its_colors_and_image_and_old_lines_still_read() {
        let switch = StepEvent {
            service: "web".into(),
            commit: "abc".into(),
            step: Step::Switch {
                from: Some(Color::Blue),
                to: Color::Green,
            },
            result: Ok(()),
            duration: std::time::Duration::from_millis(3),
            note: None,
            waiting: false,
        };
        let line = serde_json::to_value(Event::from(&switch)).unwrap();
        assert_eq!(
            (line["step"].as_str(), line["color"].as_str(), line["from"].as_str()),
            (Some("switch"), Some("green"), Some("blue"))
        );
        assert!(line.get("image").is_none() && line.get("error").is_none(), "{line}");
        let old = r#"{"time":"2026-11-22T17:00:00.000Z","commit":"abc","service":"web","step":"switch","result":"ok","duration_ms":5}"#;
        let e: Event = serde_json::from_str(old).unwrap();
        assert_eq!((e.color, e.from), (None, None));
    }

    #[test]
    fn appended_events_are_broadcast_and_the_tail_reads_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::broadcast::channel(8);
        let log = EventLog::open(dir.path()).unwrap().with_broadcast(tx);
        for step in ["pull_image", "start_color", "switch"] {
            log.append(&event(step)).unwrap();
        }
        assert_eq!(rx.try_recv().unwrap().step, "pull_image");
        assert_eq!(rx.try_recv().unwrap().step, "start_color");
        let line = std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .len() as u64;
        // A window that cuts the second line in half yields only the third.
        let tail = read_tail(log.path(), line + 10).unwrap();
        let steps: Vec<&str> = tail.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps, ["switch"]);
        let mut f = std::fs::OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(b"not json\n").unwrap();
        let all = read_tail(log.path(), 1 << 20).unwrap();
        let steps: Vec<&str> = all.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps, ["pull_image", "start_color", "switch"]);
        assert_eq!(all.skipped.len(), 1, "{:?}", all.skipped);
    }

    #[test]
    fn a_full_notify_queue_drops_the_event_and_the_log_still_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let log = EventLog::open(dir.path()).unwrap().with_sink(Some(tx));
        log.append(&event("pull_image")).unwrap();
        log.append(&event("start_color")).unwrap();
        assert_eq!(rx.try_recv().unwrap().step, "pull_image");
        assert!(rx.try_recv().is_err(), "the second was dropped, not waited for");
        assert_eq!(read(log.path()).unwrap().len(), 2);
    }

    #[test]
    fn read_checked_names_the_lines_it_skips() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&event("pull_image")).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(log.path()).unwrap();
        f.write_all(b"not json\n\n").unwrap();
        log.append(&Event::outcome("web", "abc", "ok", 9, None)).unwrap();
        let got = read_checked(log.path()).unwrap();
        let steps: Vec<&str> = got.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps, ["pull_image", "deploy"]);
        assert_eq!(got.skipped.len(), 1);
        assert_eq!(got.skipped[0].0, 2, "{:?}", got.skipped);
    }

    /// Every kind of line as the release before typed events wrote it
    /// (each step ok and failed, each deploy result, a refused head), and
    /// the lines of a real run: read and written again, byte for byte.
    #[test]
    fn lines_of_the_previous_release_read_and_write_back_identically() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for (file, torn) in [("events/previous-release.jsonl", 0), ("history/events.jsonl", 1)] {
            let text = std::fs::read_to_string(fixtures.join(file)).unwrap();
            let log = parse(&text);
            assert_eq!(log.skipped.len(), torn, "{file}: {:?}", log.skipped);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| serde_json::from_str::<Event>(l).is_ok())
                .collect();
            assert_eq!(lines.len(), log.events.len());
            for (line, e) in lines.iter().zip(&log.events) {
                assert!(
                    !matches!(e.step, StepKind::Other(_)) && !matches!(e.result, EventResult::Other(_)),
                    "{file}: a name this release should know: {line}"
                );
                assert_eq!(serde_json::to_string(e).unwrap(), *line, "{file}");
            }
        }
        let all = parse(&std::fs::read_to_string(fixtures.join("events/previous-release.jsonl")).unwrap());
        let results: std::collections::BTreeSet<&str> = all.events.iter().map(|e| e.result.as_str()).collect();
        assert_eq!(results, ["failed", "ok", "refused", "rolled back"].into());
        let steps: std::collections::BTreeSet<&str> = all.events.iter().map(|e| e.step.as_str()).collect();
        assert_eq!(steps.len(), 14, "every step of the plan and deploy: {steps:?}");
    }
}
