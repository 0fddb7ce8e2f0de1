//! What older lines of the event log leave for judging newer ones, so
//! `history --since` need not parse them. `classify` carries, per service,
//! the image each color was last started with and the color the last
//! switch left (with its image then); `group` carries the run each service
//! has open. A `FileSummary` is what one file does to that state, worked
//! out from the file alone: written next to each file the log rotates
//! aside (`events.jsonl.<n>.summary.json`, by `events::rotate`). Folded
//! oldest first into a `Seed`, the summaries of the files before a window
//! give the state at its start, exactly as reading those files would.
//!
//! A summary is only a shortcut: one missing, unreadable or not matching
//! its file makes the reader parse the files instead.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use teal_core::events::{Event, EventResult, StepKind};

use super::parse_time;
use crate::spec::Color;

/// Version of the summary format; another one is not read.
pub const VERSION: u32 = 1;

/// What `classify` remembers of one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The image each color was last started with.
    image: BTreeMap<Color, String>,
    /// The color the last switch took traffic from, and its image then.
    left: Option<(Color, Option<String>)>,
}

impl Seen {
    /// Takes in one step of a deploy that counts; says whether it is a
    /// switch back to the color the last switch left, on the same image.
    pub(super) fn step(&mut self, step: &Event) -> bool {
        if step.result != EventResult::Ok {
            return false;
        }
        match (&step.step, step.color) {
            (StepKind::StartColor, Some(c)) => {
                if let Some(img) = &step.image {
                    self.image.insert(c, img.clone());
                }
                false
            }
            (StepKind::Switch, Some(to)) => {
                let back = self
                    .left
                    .as_ref()
                    .is_some_and(|(c, img)| *c == to && img.as_ref() == self.image.get(&to));
                self.left = step.from.map(|f| (f, self.image.get(&f).cloned()));
                back
            }
            _ => false,
        }
    }
}

/// What a file's deploys that counted do to a service's `Seen`, whatever
/// it was before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Delta {
    /// The image each color was last started with in the file.
    #[serde(default)]
    started: BTreeMap<Color, String>,
    /// Whether the file has a switch: then `left` replaces the earlier one.
    #[serde(default)]
    switched: bool,
    /// The color the last switch left, with its image when it was started
    /// in this file before that switch (none: as it was before the file).
    #[serde(default)]
    left: Option<(Color, Option<String>)>,
}

impl Delta {
    fn step(&mut self, step: &Event) {
        if step.result != EventResult::Ok {
            return;
        }
        match (&step.step, step.color, &step.image) {
            (StepKind::StartColor, Some(c), Some(img)) => {
                self.started.insert(c, img.clone());
            }
            (StepKind::Switch, Some(_), _) => {
                self.switched = true;
                self.left = step.from.map(|f| (f, self.started.get(&f).cloned()));
            }
            _ => {}
        }
    }

    fn apply(&self, seen: &mut Seen) {
        if self.switched {
            seen.left = self.left.clone().map(|(c, img)| {
                let img = img.or_else(|| seen.image.get(&c).cloned());
                (c, img)
            });
        }
        seen.image.extend(self.started.clone());
    }
}

/// How a service's first entry in a file ended, read alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum End {
    /// Closed, and its steps count.
    Counted,
    /// Closed by a refusal: its steps do not count.
    Refused,
    /// Still open at the end of the file (it is then its only entry).
    Open,
}

/// A service's first entry in a file: whether it goes on with a run an
/// older file left open, and how that run then ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Head {
    commit: String,
    /// Begun by a step; else it is a lone `deploy` line.
    by_step: bool,
    end: End,
}

/// One service in one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Service {
    head: Head,
    /// The closed entries that count, the head among them.
    delta: Delta,
    /// The steps of the run still open at the end of the file.
    #[serde(default)]
    open: Vec<Event>,
}

/// What one file of the log does to the state `history` carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    pub version: u32,
    /// The length of the file summed up: one of another length is not it.
    pub bytes: u64,
    /// The latest line time in the file (RFC 3339); none when no line has one.
    pub latest: Option<String>,
    services: BTreeMap<String, Service>,
}

impl FileSummary {
    /// Sums up the lines of one file (of `bytes` bytes), read alone.
    pub fn of(events: &[Event], bytes: u64) -> FileSummary {
        let latest = events.iter().filter_map(|e| parse_time(&e.time)).max();
        FileSummary {
            version: VERSION,
            bytes,
            latest: latest.map(|t| humantime::format_rfc3339_nanos(t).to_string()),
            services: services(events),
        }
    }

    /// Whether every line is before `t`, so no entry `--since t` shows
    /// starts in the file.
    pub fn before(&self, t: SystemTime) -> bool {
        self.latest
            .as_deref()
            .is_none_or(|l| parse_time(l).is_some_and(|at| at < t))
    }

    /// Whether a summary read back hangs together: this version, and each
    /// open run one run of its service (one commit, no outcome, a failure
    /// only last), as `Seed` replays it.
    pub fn is_sound(&self) -> bool {
        self.version == VERSION
            && self.services.iter().all(|(name, s)| {
                let run = &s.open;
                let last = run.len().saturating_sub(1);
                run.iter().enumerate().all(|(i, e)| {
                    e.service == *name
                        && e.commit == run[0].commit
                        && e.step != StepKind::Deploy
                        && e.step != StepKind::Certificate
                        && (e.result == EventResult::Ok || i == last)
                }) && (s.head.end != End::Open || !run.is_empty())
            })
    }
}

/// Each service's summary of `events` read alone. `group`'s rules, kept
/// per service as a run of step indices rather than built into entries
/// (the lines before a `--since` window go through here too).
fn services(events: &[Event]) -> BTreeMap<String, Service> {
    /// A run still open: its commit, whether a step failed, its steps,
    /// whether it is the service's first entry in the file.
    struct Run<'a> {
        commit: &'a str,
        failed: bool,
        steps: Vec<usize>,
        head: bool,
    }
    let mut services: BTreeMap<String, Service> = BTreeMap::new();
    let mut open: BTreeMap<&str, Run> = BTreeMap::new();
    // Ends an entry of service `name` (its head when `head`); its steps
    // count when `end` says so.
    let close = |services: &mut BTreeMap<String, Service>, name: &str, steps: &[usize], head: bool, end: End| {
        let Some(s) = services.get_mut(name) else { return };
        if head {
            s.head.end = end;
        }
        if end == End::Counted {
            steps.iter().for_each(|i| s.delta.step(&events[*i]));
        }
    };
    for (i, e) in events.iter().enumerate() {
        if e.step == StepKind::Certificate {
            continue;
        }
        let name = e.service.as_str();
        let first = !services.contains_key(name);
        if first {
            services.insert(
                name.to_string(),
                Service {
                    head: Head {
                        commit: e.commit.clone(),
                        by_step: e.step != StepKind::Deploy,
                        end: End::Open,
                    },
                    delta: Delta::default(),
                    open: vec![],
                },
            );
        }
        let end_of = |r: &EventResult| {
            if *r == EventResult::Refused {
                End::Refused
            } else {
                End::Counted
            }
        };
        if e.step == StepKind::Deploy {
            match open.remove(name) {
                Some(run) if run.commit == e.commit => {
                    close(&mut services, name, &run.steps, run.head, end_of(&e.result))
                }
                other => {
                    if let Some(run) = other {
                        close(&mut services, name, &run.steps, run.head, End::Counted);
                    }
                    // A lone outcome line: an entry without steps.
                    close(&mut services, name, &[], first, end_of(&e.result));
                }
            }
            continue;
        }
        let failed = e.result != EventResult::Ok;
        match open.get_mut(name) {
            Some(run) if run.commit == e.commit && !run.failed => {
                run.steps.push(i);
                run.failed = failed;
            }
            _ => {
                let run = Run {
                    commit: &e.commit,
                    failed,
                    steps: vec![i],
                    head: first,
                };
                if let Some(done) = open.insert(name, run) {
                    close(&mut services, name, &done.steps, done.head, End::Counted);
                }
            }
        }
    }
    for (name, run) in open {
        if let Some(s) = services.get_mut(name) {
            s.open = run.steps.iter().map(|i| events[*i].clone()).collect();
        }
    }
    services
}

/// The state at the end of the lines summed up so far: per service what
/// `classify` remembers and the steps of the run still open.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seed {
    pub(super) seen: BTreeMap<String, Seen>,
    open: BTreeMap<String, Vec<Event>>,
}

impl Seed {
    /// Adds the next file's summary (oldest first), as reading its lines
    /// after the earlier ones would: a run left open goes on into the
    /// file's first entry of that service when that continues it, and
    /// counts unless that entry ends refused.
    pub fn add(&mut self, file: &FileSummary) {
        for (name, s) in &file.services {
            let seen = self.seen.entry(name.clone()).or_default();
            let mut open = s.open.clone();
            if let Some(run) = self.open.remove(name) {
                let failed = run.iter().any(|e| e.result != EventResult::Ok);
                let goes_on = run.first().is_some_and(|e| e.commit == s.head.commit) && (!s.head.by_step || !failed);
                match (goes_on, s.head.end) {
                    (true, End::Refused) => {}
                    (true, End::Open) => open = [run, open].concat(),
                    _ => run.iter().for_each(|step| {
                        seen.step(step);
                    }),
                }
            }
            s.delta.apply(seen);
            if !open.is_empty() {
                self.open.insert(name.clone(), open);
            }
        }
    }

    /// The steps of the runs still open, a run after another.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.open.values().flatten()
    }

    /// How many runs are still open (one entry each when replayed).
    pub fn runs(&self) -> usize {
        self.open.len()
    }
}

/// How many of the oldest rotated files `--since t` can leave unread, and
/// the seed standing for them: the longest run of oldest files each with a
/// sound summary and every line before `t`. `summaries` come oldest first
/// (none: missing or unreadable) and are taken only as far as needed.
pub fn skip(summaries: impl IntoIterator<Item = Option<FileSummary>>, t: SystemTime) -> (usize, Seed) {
    let mut seed = Seed::default();
    let mut n = 0;
    for s in summaries {
        match s {
            Some(s) if s.is_sound() && s.before(t) => seed.add(&s),
            _ => break,
        }
        n += 1;
    }
    (n, seed)
}
