//! The event log: every applied step appended to `events.jsonl` in the
//! state dir, one JSON object per line (time, commit, service, step,
//! result, duration). A torn last line (a crash mid-write) is skipped by
//! the reader and fenced off by the writer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::engine::{step_name, StepEvent};

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, UTC.
    pub time: String,
    pub commit: String,
    pub service: String,
    pub step: String,
    /// `ok` or `failed`.
    pub result: String,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&StepEvent> for Event {
    fn from(e: &StepEvent) -> Event {
        Event {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            commit: e.commit.clone(),
            service: e.service.clone(),
            step: step_name(&e.step),
            result: if e.result.is_ok() { "ok" } else { "failed" }.into(),
            duration_ms: e.duration.as_millis() as u64,
            error: e.result.clone().err(),
        }
    }
}

/// Appends events to a file.
#[derive(Debug, Clone)]
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// The log in `state_dir`, created when missing. A torn last line
    /// left by a crash is ended, so the next event starts on its own line.
    pub fn open(state_dir: &Path) -> std::io::Result<EventLog> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("events.jsonl");
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.last().is_some_and(|b| *b != b'\n') {
                std::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"\n")?;
            }
        }
        Ok(EventLog { path })
    }

    /// Appends one event as one line, with a single write.
    pub fn append(&self, e: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        f.write_all(&line)?;
        f.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every complete event; lines that do not parse (a torn write) are skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: &str) -> Event {
        Event {
            time: "2026-11-22T17:00:00.000Z".into(),
            commit: "abc".into(),
            service: "web".into(),
            step: step.into(),
            result: "ok".into(),
            duration_ms: 5,
            error: None,
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
        let got: Vec<String> = read(log.path()).unwrap().into_iter().map(|e| e.step).collect();
        assert_eq!(got, ["pull_image", "start_color"]);
        let log = EventLog::open(dir.path()).unwrap();
        log.append(&event("switch")).unwrap();
        let got: Vec<String> = read(log.path()).unwrap().into_iter().map(|e| e.step).collect();
        assert_eq!(got, ["pull_image", "start_color", "switch"]);
    }
}
