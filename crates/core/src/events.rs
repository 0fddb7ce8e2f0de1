//! The event log's lines as data: what a step or a deploy came to, in
//! the JSON shape of `events.jsonl` (docs/history.md). The names the log
//! writes are the serde names here, so the format stays byte for byte
//! what earlier releases wrote; a name this release does not know (a log
//! written by a later one) is kept as it is, not dropped. Writing and
//! reading the file is the `teal` crate's `events`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::plan::Step;
use crate::spec::Color;

/// The `step` of the line that ends a service's run of steps.
pub const DEPLOY: StepKind = StepKind::Deploy;

/// One line of `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// RFC 3339, UTC: when the line was written. Left empty by the
    /// constructors here (the core reads no clock): the log stamps it.
    pub time: String,
    pub commit: String,
    pub service: String,
    pub step: StepKind,
    /// `ok` or `failed`; a `deploy` line also `rolled back` or `refused`.
    pub result: EventResult,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The color the step acted on; for a switch, the color traffic moved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// A switch: the color traffic moved from (none on a first deploy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Color>,
    /// Pulling or starting a color: its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What a step that succeeded said: a release's exit code and last
    /// lines of output (secret values blanked out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Event {
    /// The `deploy` line ending a service's run at `commit` (its time is
    /// stamped when it is written).
    pub fn outcome(
        service: &str,
        commit: &str,
        result: impl Into<EventResult>,
        duration_ms: u64,
        error: Option<String>,
    ) -> Event {
        Event {
            time: String::new(),
            commit: commit.to_string(),
            service: service.to_string(),
            step: StepKind::Deploy,
            result: result.into(),
            duration_ms,
            error,
            color: None,
            from: None,
            image: None,
            note: None,
        }
    }

    /// A `certificate` line: `Ok(note)` says what was installed, renewed
    /// or removed, `Err(error)` why not (at `commit`, the one served).
    pub fn certificate(service: &str, commit: &str, result: Result<String, String>) -> Event {
        let (result, note, error) = match result {
            Ok(note) => (EventResult::Ok, Some(note), None),
            Err(error) => (EventResult::Failed, None, Some(error)),
        };
        Event {
            step: StepKind::Certificate,
            note,
            ..Event::outcome(service, commit, result, 0, error)
        }
    }
}

impl From<&StepEvent> for Event {
    fn from(e: &StepEvent) -> Event {
        let (from, image) = match &e.step {
            Step::Switch { from, .. } => (*from, None),
            Step::PullImage { image, .. } | Step::StartColor { image, .. } => (None, Some(image.clone())),
            _ => (None, None),
        };
        Event {
            time: String::new(),
            commit: e.commit.clone(),
            service: e.service.clone(),
            step: StepKind::of(&e.step),
            result: e.verdict(),
            duration_ms: e.duration.as_millis() as u64,
            error: e.result.clone().err(),
            color: e.step.color(),
            from,
            image,
            note: e.note.clone(),
        }
    }
}

/// One step's outcome as the engine reports it, for progress output and
/// the event log.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvent {
    pub service: String,
    pub commit: String,
    pub step: Step,
    /// `ok`, or the error in words.
    pub result: Result<(), String>,
    #[serde(with = "crate::spec::duration::serde_human")]
    pub duration: Duration,
    /// What the step said when it succeeded (a release's last lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The step did not fail: it waits for a promotion (its error says so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub waiting: bool,
}

impl StepEvent {
    /// `ok` or `failed`.
    pub fn verdict(&self) -> EventResult {
        match self.result {
            Ok(()) => EventResult::Ok,
            Err(_) if self.waiting => EventResult::Waiting,
            Err(_) => EventResult::Failed,
        }
    }
}

/// Declares a string-named enum: its serde names, `as_str`, `Display`,
/// parsing (`From<&str>`) and comparison with a name; a name not listed
/// is kept as `Other`.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
            /// A name this release does not know, kept as read.
            #[serde(untagged)]
            Other(String),
        }

        impl $name {
            /// The name as the event log writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// By name: `Other("ok")` is `ok`.
        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                self.as_str().hash(h)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        /// In the order of the names (as the metrics list them).
        impl Ord for $name {
            fn cmp(&self, other: &$name) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &$name) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
    };
}

named! {
    /// What a line is about: a step of the plan, or the `deploy` line
    /// that ends a service's run.
    StepKind {
        PullImage = "pull_image",
        /// The service's release command, before the new color starts.
        Release = "release",
        StartColor = "start_color",
        WaitHealthy = "wait_healthy",
        Switch = "switch",
        Canary = "canary",
        Verify = "verify",
        Roll = "roll",
        Reroute = "reroute",
        Drain = "drain",
        RemoveReplicas = "remove_replicas",
        StopColor = "stop_color",
        RemoveColor = "remove_color",
        RemoveService = "remove_service",
        /// The end of a service's run: its outcome and total time.
        Deploy = "deploy",
        /// A route certificate installed, renewed, removed or failed: a
        /// line of its own, outside any run.
        Certificate = "certificate",
    }
}

named! {
    /// What a step or a deploy came to.
    EventResult {
        Ok = "ok",
        /// Traffic stayed where it was (or, after the switch, moved on).
        Failed = "failed",
        /// A `deploy` line: analysis put all traffic back on the old color.
        RolledBack = "rolled back",
        /// A `deploy` line: the commit was not applied to the service.
        Refused = "refused",
        /// A rollout step that waits for a promotion (`teal promote`).
        Waiting = "waiting",
        /// Never written: a history entry whose run has no `deploy` line
        /// (still going, or teal stopped mid-deploy).
        Unfinished = "unfinished",
    }
}

impl StepKind {
    /// The kind of a step of the plan (its `step` tag in the plan's JSON).
    pub fn of(step: &Step) -> StepKind {
        match step {
            Step::PullImage { .. } => StepKind::PullImage,
            Step::Release { .. } => StepKind::Release,
            Step::StartColor { .. } => StepKind::StartColor,
            Step::WaitHealthy { .. } => StepKind::WaitHealthy,
            Step::Switch { .. } => StepKind::Switch,
            Step::Canary { .. } => StepKind::Canary,
            Step::Verify { .. } => StepKind::Verify,
            Step::Roll { .. } => StepKind::Roll,
            Step::Reroute { .. } => StepKind::Reroute,
            Step::Drain { .. } => StepKind::Drain,
            Step::RemoveReplicas { .. } => StepKind::RemoveReplicas,
            Step::StopColor { .. } => StepKind::StopColor,
            Step::RemoveColor { .. } => StepKind::RemoveColor,
            Step::RemoveService { .. } => StepKind::RemoveService,
        }
    }
}

/// What a history entry was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A run of steps towards a commit.
    Deploy,
    /// A deploy whose switch sent traffic back to the color that served
    /// before, on the containers it left running (a `git revert`).
    Rollback,
    /// A commit teal would not apply to this service.
    Refused,
    /// A route certificate installed, renewed, removed or failed.
    Certificate,
}

impl Kind {
    /// A run of a service at a commit (a deploy or a rollback), not a
    /// refusal or a certificate line.
    pub fn is_run(self) -> bool {
        matches!(self, Kind::Deploy | Kind::Rollback)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Refused => "refused",
            Kind::Certificate => "certificate",
        }
    }
}

/// Where a deploy moved traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switch {
    pub from: Option<Color>,
    pub to: Color,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps() -> Vec<Step> {
        use Color::{Blue, Green};
        let d = Duration::from_secs(1);
        vec![
            Step::PullImage {
                color: Green,
                image: "i".into(),
            },
            Step::Release {
                color: Green,
                image: "i".into(),
            },
            Step::StartColor {
                color: Green,
                image: "i".into(),
                replicas: 1,
                spec_hash: "h".into(),
            },
            Step::WaitHealthy { color: Green },
            Step::Switch { from: None, to: Green },
            Step::Canary {
                from: Blue,
                to: Green,
                steps: vec![],
            },
            Step::Verify {
                color: Green,
                from: Blue,
                duration: d,
            },
            Step::Roll {
                color: Blue,
                image: "i".into(),
                replicas: 1,
                max_surge: 1,
            },
            Step::Reroute { color: Green },
            Step::Drain {
                color: Blue,
                duration: d,
            },
            Step::RemoveReplicas { color: Green, keep: 1 },
            Step::StopColor { color: Blue },
            Step::RemoveColor { color: Blue },
            Step::RemoveService { drain: None },
        ]
    }

    #[test]
    fn a_steps_kind_is_its_tag_in_the_plan() {
        for step in steps() {
            let tag = serde_json::to_value(&step).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string();
            let kind = StepKind::of(&step);
            assert_eq!(kind.as_str(), tag);
            assert_eq!(serde_json::to_value(&kind).unwrap(), tag.as_str());
            assert!(!matches!(StepKind::from(tag.as_str()), StepKind::Other(_)), "{tag}");
        }
    }

    #[test]
    fn names_read_back_to_their_variant_and_unknown_ones_are_kept() {
        for r in ["ok", "failed", "rolled back", "refused", "waiting", "unfinished"] {
            let read: EventResult = serde_json::from_value(r.into()).unwrap();
            assert!(!matches!(read, EventResult::Other(_)), "{r}");
            assert_eq!((read.as_str(), serde_json::to_value(&read).unwrap()), (r, r.into()));
        }
        let later: StepKind = serde_json::from_str("\"warm_cache\"").unwrap();
        assert_eq!(later, StepKind::Other("warm_cache".into()));
        assert_eq!(serde_json::to_string(&later).unwrap(), "\"warm_cache\"");
        assert_eq!(EventResult::Other("ok".into()), EventResult::Ok);
        assert!(EventResult::Failed < EventResult::Ok && EventResult::Refused < EventResult::RolledBack);
    }
}
