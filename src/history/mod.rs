//! What happened on a host, from its event log: the step lines of
//! `events.jsonl` grouped into deploys (one service's run of steps at one
//! commit, ended by its `deploy` outcome line), each with its outcome,
//! total duration, the switch it made, and whether that switch was a
//! rollback. Pure: the command reads the file and the clock.
//!
//! Whether a deploy is a rollback depends on every older switch of its
//! service, so `entries` judges on the whole log. `entries_after` gives the
//! same answer for a `--since` window from the newer lines alone and a
//! `summary::Seed` standing for the older ones (see `summary`).

pub mod render;
pub mod summary;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

// From the core, not `crate::events`: that module writes the summaries
// and so depends on this one.
use teal_core::events::{Event, EventResult, StepKind};
pub use teal_core::events::{Kind, Switch};

use crate::spec::Color;
use summary::{FileSummary, Seed, Seen};

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
    let (mut out, _) = group(events);
    classify(&mut out, &mut BTreeMap::new());
    out.retain(|e| filter.keeps(e));
    out
}

/// What `entries` gives on the whole log, from the lines after those
/// `seed` stands for (oldest first). With `filter.since`, the leading
/// lines before it are summed up too rather than grouped: no entry shown
/// starts among them, a run they leave open goes on into the window.
pub fn entries_after(mut seed: Seed, events: &[Event], filter: &Filter) -> Vec<Entry> {
    let cut = filter.since.map_or(0, |t| {
        // A line without a readable time starts no entry `since` keeps.
        events
            .iter()
            .take_while(|e| parse_time(&e.time).is_none_or(|at| at < t))
            .count()
    });
    if cut > 0 {
        seed.add(&FileSummary::of(&events[..cut], 0));
    }
    let (mut out, _) = group(seed.events().chain(&events[cut..]));
    classify(&mut out, &mut seed.seen);
    // The seed's runs came first, one entry each, all started before the window.
    out.drain(..seed.runs().min(out.len()));
    out.retain(|e| filter.keeps(e));
    out
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        self.service.as_ref().is_none_or(|s| *s == e.service)
            && self.since.is_none_or(|t| parse_time(&e.time).is_some_and(|at| at >= t))
    }
}

/// Entries in log order. A service's run stays open until its `deploy`
/// line; a failed step, or a step at another commit, also ends it (the
/// engine stops a run at its first failure), for logs cut short. Also
/// returns the runs still open at the end: service -> index.
fn group<'a>(events: impl IntoIterator<Item = &'a Event>) -> (Vec<Entry>, BTreeMap<&'a str, usize>) {
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
    (out, open)
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
/// kept warm, or stopped and started again). `seen` holds what each
/// service's earlier deploys left, and is brought up to date.
fn classify(entries: &mut [Entry], seen: &mut BTreeMap<String, Seen>) {
    for e in entries.iter_mut().filter(|e| counts(e)) {
        let s = seen.entry(e.service.clone()).or_default();
        for step in &e.steps {
            if s.step(step) {
                e.kind = Kind::Rollback;
            }
        }
    }
}

/// Whether an entry's steps move what `classify` remembers.
fn counts(e: &Entry) -> bool {
    e.kind != Kind::Refused && e.kind != Kind::Certificate
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
mod summary_tests;
#[cfg(test)]
mod tests;
