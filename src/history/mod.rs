//! What happened on a host, from its event log: the step lines of
//! `events.jsonl` grouped into deploys (one service's run of steps at one
//! commit, ended by its `deploy` outcome line), each with its outcome,
//! total duration, the switch it made, and whether that switch was a
//! rollback. Pure: the command reads the file and the clock.

pub mod render;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::events::{Event, EventResult, StepKind};
pub use crate::events::{Kind, Switch};
use crate::spec::Color;

/// One deploy, or one refusal, of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// When its first step started (RFC 3339, UTC, to the millisecond).
    pub time: String,
    pub service: String,
    pub commit: String,
    pub kind: Kind,
    /// `ok`, `failed`, `rolled back`, `refused`, or `unfinished` when no
    /// outcome was recorded (still running, or teal stopped mid-deploy).
    pub result: EventResult,
    pub duration_ms: u64,
    /// Traffic moved: from (none on a first deploy) and to.
    pub switch: Option<Switch>,
    /// Colors started, with their image, in order.
    pub started: Vec<Started>,
    /// Why it failed (the failed step's error; the step is in `steps`) or
    /// was refused.
    pub error: Option<String>,
    /// Every step line of the deploy, in order.
    pub steps: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub color: Color,
    pub image: String,
}

/// Which entries to keep.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub service: Option<String>,
    /// Entries that started at or after this time.
    pub since: Option<SystemTime>,
}

/// Groups events (oldest first, as logged) into entries, oldest first,
/// keeping those `filter` selects. Rollbacks are judged on the whole log,
/// before filtering, so `--since` does not change what an entry is.
pub fn entries(events: &[Event], filter: &Filter) -> Vec<Entry> {
    let mut out = group(events);
    classify(&mut out);
    out.retain(|e| {
        filter.service.as_ref().is_none_or(|s| *s == e.service)
            && filter
                .since
                .is_none_or(|t| parse_time(&e.time).is_some_and(|at| at >= t))
    });
    out
}

/// Entries in log order. A service's run stays open until its `deploy`
/// line; a failed step, or a step at another commit, also ends it (the
/// engine stops a run at its first failure), for logs cut short.
fn group(events: &[Event]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        if e.step == StepKind::Certificate {
            // Outside any run: an entry of its own, leaving runs open.
            let mut entry = start(e);
            entry.kind = Kind::Certificate;
            entry.result = e.result.clone();
            entry.duration_ms = e.duration_ms;
            entry.error = e.error.clone();
            entry.steps.push(e.clone());
            out.push(entry);
            continue;
        }
        let current = open.get(e.service.as_str()).copied();
        if e.step == StepKind::Deploy {
            match current.filter(|i| out[*i].commit == e.commit) {
                Some(i) => finish(&mut out[i], e),
                None => {
                    let mut entry = start(e);
                    entry.time = e.time.clone();
                    finish(&mut entry, e);
                    out.push(entry);
                }
            }
            open.remove(e.service.as_str());
            continue;
        }
        let continues = current.filter(|i| out[*i].commit == e.commit && out[*i].error.is_none());
        let i = match continues {
            Some(i) => i,
            None => {
                out.push(start(e));
                out.len() - 1
            }
        };
        add_step(&mut out[i], e);
        open.insert(&e.service, i);
    }
    out
}

/// A new entry, its start time taken from the step's end minus its duration.
fn start(e: &Event) -> Entry {
    let time = parse_time(&e.time)
        .map(|end| end - Duration::from_millis(e.duration_ms))
        .map_or_else(|| e.time.clone(), |t| humantime::format_rfc3339_millis(t).to_string());
    Entry {
        time,
        service: e.service.clone(),
        commit: e.commit.clone(),
        kind: Kind::Deploy,
        result: EventResult::Unfinished,
        duration_ms: 0,
        switch: None,
        started: vec![],
        error: None,
        steps: vec![],
    }
}

fn add_step(entry: &mut Entry, e: &Event) {
    let ok = e.result == EventResult::Ok;
    match (&e.step, e.color, &e.image) {
        (StepKind::Switch, Some(to), _) if ok => entry.switch = Some(Switch { from: e.from, to }),
        (StepKind::StartColor, Some(color), Some(image)) if ok => entry.started.push(Started {
            color,
            image: image.clone(),
        }),
        _ => {}
    }
    if !ok {
        entry.error = Some(e.error.clone().unwrap_or_else(|| "no reason recorded".into()));
        entry.result = EventResult::Failed;
    }
    // Until an outcome line says otherwise: the span of the steps so far.
    entry.duration_ms = span_ms(&entry.time, &e.time).unwrap_or(entry.duration_ms + e.duration_ms);
    entry.steps.push(e.clone());
}

/// Applies a `deploy` outcome line: its result, the total the engine
/// measured, and its reason unless a failed step already said which.
fn finish(entry: &mut Entry, e: &Event) {
    entry.result = e.result.clone();
    if e.result == EventResult::Refused {
        entry.kind = Kind::Refused;
    }
    entry.duration_ms = e.duration_ms;
    if entry.error.is_none() {
        entry.error = e.error.clone();
    }
}

/// Marks rollbacks: a switch back to the color that lost traffic at the
/// previous switch, still on the image it served then (its containers were
/// kept warm, or stopped and started again).
fn classify(entries: &mut [Entry]) {
    #[derive(Default)]
    struct Seen {
        /// The image each color was last started with.
        image: BTreeMap<Color, String>,
        /// The color the last switch took traffic from, and its image then.
        left: Option<(Color, Option<String>)>,
    }
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    for e in entries
        .iter_mut()
        .filter(|e| e.kind != Kind::Refused && e.kind != Kind::Certificate)
    {
        let s = seen.entry(e.service.clone()).or_default();
        for step in e.steps.iter().filter(|s| s.result == EventResult::Ok) {
            match (&step.step, step.color) {
                (StepKind::StartColor, Some(c)) => {
                    if let Some(img) = &step.image {
                        s.image.insert(c, img.clone());
                    }
                }
                (StepKind::Switch, Some(to)) => {
                    if s.left
                        .as_ref()
                        .is_some_and(|(c, img)| *c == to && img.as_ref() == s.image.get(&to))
                    {
                        e.kind = Kind::Rollback;
                    }
                    s.left = step.from.map(|f| (f, s.image.get(&f).cloned()));
                }
                _ => {}
            }
        }
    }
}

/// An event time (RFC 3339) as a `SystemTime`.
pub fn parse_time(t: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(t).ok()
}

fn span_ms(from: &str, to: &str) -> Option<u64> {
    let d = parse_time(to)?.duration_since(parse_time(from)?).ok()?;
    Some(d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
