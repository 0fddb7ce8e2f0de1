//! `teal history` output: aligned text for a terminal (ANSI colours only
//! when asked) and a JSON array for tools (shape in docs/history.md).

use std::fmt::Write;
use std::time::Duration;

use super::{Entry, Kind};
use crate::commit::ShortCommit;
use crate::spec::Color;
use teal_core::events::{Event, EventResult, StepKind};

/// Version of the JSON shape; bumped only on incompatible changes.
pub const JSON_VERSION: u32 = 1;

/// One line per entry under a header, oldest first; `color` paints the
/// result and marks rollbacks.
pub fn text(entries: &[Entry], color: bool) -> String {
    let rows: Vec<[String; 7]> = entries.iter().map(row).collect();
    let header = ["TIME (UTC)", "SERVICE", "COMMIT", "WHAT", "RESULT", "TOOK", "DETAIL"].map(String::from);
    let mut width = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String; 7], paint: &dyn Fn(usize, &str) -> String| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = if i == 6 { 0 } else { width[i] - cell.chars().count() + 2 };
            let _ = write!(l, "{}{}", paint(i, cell), " ".repeat(pad));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut out, &header, &|_, c| paint(color, "1", c));
    for (r, e) in rows.iter().zip(entries) {
        line(&mut out, r, &|i, c| match i {
            2 => paint(color, "2", c),
            3 if e.kind == Kind::Rollback => paint(color, "35", c),
            4 => paint(color, result_code(&e.result), c),
            _ => c.to_string(),
        });
    }
    out
}

fn paint(on: bool, code: &str, s: &str) -> String {
    if on && !s.is_empty() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn result_code(result: &EventResult) -> &'static str {
    match result {
        EventResult::Ok => "32",
        EventResult::Failed => "31",
        _ => "33",
    }
}

fn row(e: &Entry) -> [String; 7] {
    let kind = e.kind.as_str();
    let took = if matches!(e.kind, Kind::Refused | Kind::Certificate) {
        "-".to_string()
    } else {
        took(Duration::from_millis(e.duration_ms))
    };
    // Each cell read from the event log, whose errors quote containers and
    // git, is escaped before it is padded or painted.
    let p = |s: &str| crate::printable::field(s).into_owned();
    [
        p(&e.time.get(..19).unwrap_or(&e.time).replace('T', " ")),
        p(&e.service),
        p(ShortCommit::of(&e.commit).as_str()),
        kind.to_string(),
        p(e.result.as_str()),
        took,
        p(&detail(e)),
    ]
}

/// `850ms`, `12.3s`, `1m 5s`: precise where it matters, short otherwise.
pub fn took(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        crate::spec::duration::format(Duration::from_secs(d.as_secs()))
    }
}

/// What a reader needs on one line: what started, where traffic went,
/// what was stopped or removed, or why it failed or was refused.
pub fn detail(e: &Entry) -> String {
    if e.kind == Kind::Certificate {
        let note = e.steps.iter().filter_map(|s| s.note.clone());
        let parts: Vec<String> = note.chain(e.error.clone()).collect();
        return parts.join(", ").lines().map(str::trim).collect::<Vec<_>>().join("; ");
    }
    // A release ran before any color started: what it said comes first.
    let mut parts: Vec<String> = e
        .steps
        .iter()
        .filter(|s| s.step == StepKind::Release && s.result == EventResult::Ok)
        .filter_map(|s| Some(format!("release: {}", s.note.as_deref()?)))
        .collect();
    parts.extend(e.started.iter().map(|s| format!("started {} {}", s.color, s.image)));
    // The digest a started color's tag was pinned to (its pull step's note).
    parts.extend(
        e.steps
            .iter()
            .filter(|s| s.step == StepKind::PullImage && s.result == EventResult::Ok)
            .filter_map(|s| s.note.as_deref()?.split_once(" to ").map(|(_, d)| d.to_string()))
            .map(|d| format!("at {}", &d[..d.len().min("sha256:".len() + 12)])),
    );
    if let Some(sw) = e.switch {
        parts.push(match sw.from {
            Some(from) => format!("traffic {from} -> {}", sw.to),
            None => format!("traffic to {}", sw.to),
        });
    }
    let ok = |s: &&Event| s.result == EventResult::Ok;
    parts.extend(e.steps.iter().filter(ok).filter_map(|s| removal(&s.step, s.color)));
    if parts.is_empty() {
        // Nothing started, switched or removed: say what was done (a reroute).
        parts.extend(e.steps.iter().filter(ok).map(|s| done(&s.step, s.color)));
        parts.dedup();
    }
    if let Some(err) = &e.error {
        // One line per entry: a reason with a line per replica is joined.
        let why = err.lines().map(str::trim).collect::<Vec<_>>().join("; ");
        parts.push(match e.steps.iter().find(|s| s.result != EventResult::Ok) {
            Some(s) => format!("{} failed: {why}", done(&s.step, s.color)),
            None => why,
        });
    }
    if e.result == EventResult::Unfinished {
        parts.push("no outcome recorded: still running, or teal stopped mid-deploy".into());
    }
    parts.join(", ")
}

/// Steps that take something away, always worth a mention.
fn removal(step: &StepKind, color: Option<Color>) -> Option<String> {
    let c = color.map_or(String::new(), |c| c.to_string());
    Some(match step {
        StepKind::StopColor => format!("stopped {c}"),
        StepKind::RemoveColor => format!("removed {c} containers"),
        StepKind::RemoveReplicas => format!("removed extra {c} replicas"),
        StepKind::RemoveService => "removed the service".to_string(),
        _ => return None,
    })
}

/// A step in words; `events.jsonl` keeps the step's name, not its details.
fn done(step: &StepKind, color: Option<Color>) -> String {
    let c = color.map_or(String::new(), |c| c.to_string());
    match step {
        StepKind::PullImage => format!("pull for {c}"),
        StepKind::StartColor => format!("start {c}"),
        StepKind::WaitHealthy => format!("check {c}"),
        StepKind::Switch => format!("switch to {c}"),
        StepKind::Reroute => format!("proxy entry updated (traffic on {c})"),
        StepKind::Drain => format!("drain {c}"),
        other => removal(other, color).unwrap_or_else(|| format!("{other} {c}").trim_end().to_string()),
    }
}

/// `{"version": 1, "entries": [...]}`, entries oldest first.
pub fn json(entries: &[Entry]) -> serde_json::Value {
    serde_json::json!({ "version": JSON_VERSION, "entries": entries })
}
