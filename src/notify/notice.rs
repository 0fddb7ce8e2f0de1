//! From event log lines to the deploy steps worth telling: a service's
//! first step at a commit starts a deploy; a switch moves traffic; the
//! `deploy` line ends it (served, failed, rolled back or refused).

use std::collections::HashMap;

use serde::Serialize;

use crate::events::{Event, EventResult, StepKind};

/// What happened, as the webhook's `event` field says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Started,
    Switched,
    /// The deploy finished and the commit serves.
    Deployed,
    Failed,
    RolledBack,
    Refused,
    /// A rollout waits for a promotion (`teal promote` or `teal abort`).
    Waiting,
    /// A route certificate installed, renewed or removed.
    Certificate,
    /// A certificate not installed or not renewed (and, 14 days before
    /// it expires, the warning that renewal keeps failing).
    CertificateFailed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Switched => "switched",
            Kind::Deployed => "deployed",
            Kind::Failed => "failed",
            Kind::RolledBack => "rolled_back",
            Kind::Refused => "refused",
            Kind::Waiting => "waiting",
            Kind::Certificate => "certificate",
            Kind::CertificateFailed => "certificate_failed",
        }
    }
}

/// One notice: the webhook body as it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub event: Kind,
    /// The service; `(repo)` for a refused head (the whole commit).
    pub service: String,
    pub host: String,
    pub commit: String,
    /// The color deployed (for a switch, the one traffic moved to).
    pub color: Option<String>,
    /// A switch: the color traffic moved from.
    pub from: Option<String>,
    pub image: Option<String>,
    /// Why it failed, was rolled back or refused.
    pub reason: Option<String>,
    /// RFC 3339, UTC: when the event was recorded.
    pub time: String,
}

/// What is known of a deploy in progress.
#[derive(Default)]
struct Running {
    commit: String,
    color: Option<String>,
    image: Option<String>,
}

/// Turns events into notices, remembering each deploy in progress.
pub struct Tracker {
    host: String,
    running: HashMap<String, Running>,
}

impl Tracker {
    pub fn new(host: String) -> Tracker {
        Tracker {
            host,
            running: HashMap::new(),
        }
    }

    /// The notices `e` gives rise to (none for most steps).
    pub fn notices(&mut self, e: &Event) -> Vec<Notice> {
        let mut out = vec![];
        let color = e.color.map(|c| c.to_string());
        if e.step == StepKind::Certificate {
            let ok = e.result == EventResult::Ok;
            let mut n = self.notice(if ok { Kind::Certificate } else { Kind::CertificateFailed }, e);
            n.reason = if ok { e.note.clone() } else { e.error.clone() };
            out.push(n);
            return out;
        }
        if e.step == StepKind::Deploy {
            let run = self.running.remove(&e.service).unwrap_or_default();
            let kind = match e.result {
                EventResult::Ok => Kind::Deployed,
                EventResult::RolledBack => Kind::RolledBack,
                EventResult::Refused => Kind::Refused,
                _ => Kind::Failed,
            };
            let mut n = self.notice(kind, e);
            n.color = run.color;
            n.image = run.image;
            n.reason = e.error.clone();
            out.push(n);
            return out;
        }
        let fresh = self.running.get(&e.service).is_none_or(|r| r.commit != e.commit);
        if fresh {
            self.running.insert(
                e.service.clone(),
                Running {
                    commit: e.commit.clone(),
                    ..Default::default()
                },
            );
            out.push(self.notice(Kind::Started, e));
        }
        let run = self.running.get_mut(&e.service).expect("just inserted");
        if e.image.is_some() {
            run.image = e.image.clone();
        }
        if color.is_some() && (e.step == StepKind::Switch || run.color.is_none() || e.image.is_some()) {
            run.color = color.clone();
        }
        let (run_color, run_image) = (run.color.clone(), run.image.clone());
        if let Some(first) = out.first_mut() {
            (first.color, first.image) = (run_color.clone(), run_image.clone());
        }
        if e.result == EventResult::Waiting {
            let mut n = self.notice(Kind::Waiting, e);
            (n.color, n.image, n.reason) = (color.clone(), run_image.clone(), e.error.clone());
            out.push(n);
        }
        if e.step == StepKind::Switch && e.result == EventResult::Ok {
            let mut n = self.notice(Kind::Switched, e);
            (n.color, n.from, n.image) = (color, e.from.map(|c| c.to_string()), run_image);
            out.push(n);
        }
        out
    }

    fn notice(&self, kind: Kind, e: &Event) -> Notice {
        Notice {
            event: kind,
            service: e.service.clone(),
            host: self.host.clone(),
            commit: e.commit.clone(),
            color: None,
            from: None,
            image: None,
            reason: None,
            time: e.time.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Color;

    fn step(step: &str, color: Option<Color>, image: Option<&str>) -> Event {
        let mut e = Event::outcome("web", "c1", "ok", 1, None);
        e.step = step.into();
        e.color = color;
        e.image = image.map(String::from);
        e
    }

    #[test]
    fn a_deploy_is_started_switched_and_deployed_with_its_color_and_image() {
        let mut t = Tracker::new("h1".into());
        let mut kinds = vec![];
        let mut last = None;
        for e in [
            step("pull_image", Some(Color::Green), Some("app:2")),
            step("start_color", Some(Color::Green), Some("app:2")),
            step("wait_healthy", Some(Color::Green), None),
            {
                let mut s = step("switch", Some(Color::Green), None);
                s.from = Some(Color::Blue);
                s
            },
            step("stop_color", Some(Color::Blue), None),
            Event::outcome("web", "c1", "ok", 9, None),
        ] {
            for n in t.notices(&e) {
                kinds.push(n.event);
                last = Some(n);
            }
        }
        assert_eq!(kinds, [Kind::Started, Kind::Switched, Kind::Deployed]);
        let last = last.unwrap();
        assert_eq!(
            (last.color.as_deref(), last.image.as_deref(), last.host.as_str()),
            (Some("green"), Some("app:2"), "h1")
        );
        let refused = t.notices(&Event::outcome(
            "(repo)",
            "c2",
            "refused",
            0,
            Some("no signature".into()),
        ));
        assert_eq!(refused[0].event, Kind::Refused);
        assert_eq!(refused[0].reason.as_deref(), Some("no signature"));
        let body = serde_json::to_value(&refused[0]).unwrap();
        assert_eq!(body["event"], "refused");
    }

    #[test]
    fn a_certificate_line_is_a_notice_of_its_own_with_what_it_says() {
        let mut t = Tracker::new("h1".into());
        let started = t.notices(&step("pull_image", Some(Color::Green), Some("app:2")));
        assert_eq!(started[0].event, Kind::Started);
        let ok = t.notices(&Event::certificate(
            "web",
            "c1",
            Ok("installed (ordered): CN=shop".into()),
        ));
        assert_eq!(ok.len(), 1);
        assert_eq!(
            (ok[0].event, ok[0].reason.as_deref()),
            (Kind::Certificate, Some("installed (ordered): CN=shop"))
        );
        let failed = t.notices(&Event::certificate("web", "c1", Err("order: refused".into())));
        assert_eq!(
            (failed[0].event, failed[0].reason.as_deref()),
            (Kind::CertificateFailed, Some("order: refused"))
        );
        assert_eq!(serde_json::to_value(&failed[0]).unwrap()["event"], "certificate_failed");
        // The run it came in the middle of still ends as a deploy.
        let done = t.notices(&Event::outcome("web", "c1", "ok", 9, None));
        assert_eq!(done[0].event, Kind::Deployed);
        assert_eq!(done[0].image.as_deref(), Some("app:2"));
    }
}
