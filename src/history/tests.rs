//! Grouping and classifying event lines, one scenario per test, on lines
//! written the way the daemon writes them.

use std::time::{Duration, SystemTime};

use super::*;
use crate::events::{Event, DEPLOY};
use crate::spec::Color::{self, Blue, Green};

/// Builds a log: each call appends one line, one second after the last.
#[derive(Default)]
struct Log {
    lines: Vec<Event>,
}

impl Log {
    fn line(&mut self, service: &str, commit: &str, step: &str, result: &str) -> &mut Event {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + self.lines.len() as u64);
        self.lines.push(Event {
            time: humantime::format_rfc3339_millis(t).to_string(),
            commit: commit.into(),
            service: service.into(),
            step: step.into(),
            result: result.into(),
            duration_ms: 500,
            error: (result == "failed").then(|| "boom".to_string()),
            color: None,
            from: None,
            image: None,
            note: None,
        });
        self.lines.last_mut().unwrap()
    }

    fn start(&mut self, service: &str, commit: &str, color: Color, image: &str) {
        let e = self.line(service, commit, "start_color", "ok");
        e.color = Some(color);
        e.image = Some(image.into());
    }

    fn switch(&mut self, service: &str, commit: &str, from: Option<Color>, to: Color) {
        let e = self.line(service, commit, "switch", "ok");
        e.color = Some(to);
        e.from = from;
    }

    fn outcome(&mut self, service: &str, commit: &str, result: &str, ms: u64) {
        let e = self.line(service, commit, DEPLOY.as_str(), result);
        e.duration_ms = ms;
        e.error = (result == "refused").then(|| "services/web.yaml: the setting port of blue ...".into());
    }

    /// A deploy of `image` on `to`, switching from `from`, with its outcome.
    fn deploy(&mut self, commit: &str, from: Option<Color>, to: Color, image: &str) {
        self.start("web", commit, to, image);
        self.line("web", commit, "wait_healthy", "ok").color = Some(to);
        self.switch("web", commit, from, to);
        self.outcome("web", commit, "ok", 2100);
    }

    fn entries(&self) -> Vec<Entry> {
        entries(&self.lines, &Filter::default())
    }
}

fn summary(entries: &[Entry]) -> Vec<(String, String, Kind, String)> {
    entries
        .iter()
        .map(|e| (e.service.clone(), e.commit.clone(), e.kind, e.result.to_string()))
        .collect()
}

fn row(service: &str, commit: &str, kind: Kind, result: &str) -> (String, String, Kind, String) {
    (service.into(), commit.into(), kind, result.into())
}

#[test]
fn interleaved_services_are_grouped_each_with_its_outcome() {
    let mut log = Log::default();
    log.start("web", "c1", Blue, "web:1");
    log.start("api", "c1", Blue, "api:1");
    log.switch("api", "c1", None, Blue);
    log.switch("web", "c1", None, Blue);
    log.outcome("api", "c1", "ok", 1500);
    log.outcome("web", "c1", "ok", 3200);
    let got = log.entries();
    assert_eq!(
        summary(&got),
        [
            row("web", "c1", Kind::Deploy, "ok"),
            row("api", "c1", Kind::Deploy, "ok")
        ]
    );
    assert_eq!(
        (got[0].duration_ms, got[1].duration_ms),
        (3200, 1500),
        "the engine's totals"
    );
    assert_eq!(got[0].steps.len(), 2);
    assert_eq!(got[0].switch, Some(Switch { from: None, to: Blue }));
    assert_eq!(
        got[0].started,
        [Started {
            color: Blue,
            image: "web:1".into()
        }]
    );
    // Starts when its first step started: that step's end minus its duration.
    assert_eq!(got[0].time, "2026-09-21T14:13:19.500Z");
}

#[test]
fn a_failure_a_retry_a_refusal_and_a_run_without_outcome() {
    let mut log = Log::default();
    log.start("web", "c2", Green, "web:2");
    log.line("web", "c2", "wait_healthy", "failed").color = Some(Green);
    log.outcome("web", "c2", "failed", 4000);
    log.line("web", "c2", "wait_healthy", "ok").color = Some(Green);
    log.switch("web", "c2", Some(Blue), Green);
    log.outcome("web", "c2", "ok", 900);
    log.outcome("web", "c3", "refused", 0);
    log.start("web", "c4", Blue, "web:4");
    let got = log.entries();
    assert_eq!(
        summary(&got),
        [
            row("web", "c2", Kind::Deploy, "failed"),
            row("web", "c2", Kind::Deploy, "ok"),
            row("web", "c3", Kind::Refused, "refused"),
            row("web", "c4", Kind::Deploy, "unfinished"),
        ]
    );
    assert_eq!(got[0].error.as_deref(), Some("boom"), "the failed step's own error");
    assert!(got[2].error.as_deref().unwrap().contains("the setting port"));
    assert!(got[2].steps.is_empty());
}

#[test]
fn a_log_without_outcome_lines_ends_a_run_at_a_failure_or_another_commit() {
    let mut log = Log::default();
    log.start("web", "c1", Blue, "web:1");
    log.line("web", "c1", "wait_healthy", "failed");
    log.line("web", "c1", "wait_healthy", "ok");
    log.start("web", "c2", Green, "web:2");
    let got = log.entries();
    assert_eq!(
        summary(&got),
        [
            row("web", "c1", Kind::Deploy, "failed"),
            row("web", "c1", Kind::Deploy, "unfinished"),
            row("web", "c2", Kind::Deploy, "unfinished"),
        ]
    );
    // Without an outcome, the duration is the span of the steps.
    assert_eq!(got[0].duration_ms, 1500);
}

#[test]
fn a_switch_back_to_the_warm_color_is_a_rollback_and_a_new_image_there_is_not() {
    let mut log = Log::default();
    log.deploy("c1", None, Blue, "web:1");
    log.deploy("c2", Some(Blue), Green, "web:2");
    // git revert: blue still runs web:1.
    log.line("web", "c3", "wait_healthy", "ok").color = Some(Blue);
    log.switch("web", "c3", Some(Green), Blue);
    log.outcome("web", "c3", "ok", 400);
    // A stopped color started again on the same image is still a rollback.
    log.start("web", "c4", Green, "web:2");
    log.switch("web", "c4", Some(Blue), Green);
    log.outcome("web", "c4", "ok", 400);
    // Back to blue, but with a new image: a deploy.
    log.deploy("c5", Some(Green), Blue, "web:5");
    let kinds: Vec<Kind> = log.entries().iter().map(|e| e.kind).collect();
    use Kind::{Deploy, Rollback};
    assert_eq!(kinds, [Deploy, Deploy, Rollback, Rollback, Deploy]);
}

#[test]
fn filters_keep_rollbacks_judged_on_the_whole_log() {
    let mut log = Log::default();
    log.deploy("c1", None, Blue, "web:1");
    log.start("api", "c1", Blue, "api:1");
    log.outcome("api", "c1", "ok", 100);
    log.deploy("c2", Some(Blue), Green, "web:2");
    log.switch("web", "c3", Some(Green), Blue);
    log.outcome("web", "c3", "ok", 400);
    let all = log.entries();
    let since = Filter {
        service: None,
        since: parse_time(&all[2].time),
    };
    let got = entries(&log.lines, &since);
    assert_eq!(
        summary(&got),
        [
            row("web", "c2", Kind::Deploy, "ok"),
            row("web", "c3", Kind::Rollback, "ok")
        ]
    );
    let api = Filter {
        service: Some("api".into()),
        since: None,
    };
    assert_eq!(
        summary(&entries(&log.lines, &api)),
        [row("api", "c1", Kind::Deploy, "ok")]
    );
}

#[test]
fn text_is_coloured_only_when_asked_and_json_has_a_version() {
    let mut log = Log::default();
    log.deploy("c1", None, Blue, "web:1");
    log.start("web", "c2", Green, "web:2");
    log.line("web", "c2", "wait_healthy", "failed").color = Some(Green);
    log.outcome("web", "c2", "failed", 4000);
    let got = log.entries();
    let plain = render::text(&got, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert_eq!(
        plain,
        "TIME (UTC)           SERVICE  COMMIT  WHAT    RESULT  TOOK  DETAIL\n\
         2026-09-21 14:13:19  web      c1      deploy  ok      2.1s  started blue web:1, traffic to blue\n\
         2026-09-21 14:13:23  web      c2      deploy  failed  4.0s  started green web:2, check green failed: boom\n"
    );
    let painted = render::text(&got, true);
    assert!(
        painted.contains("\x1b[31mfailed\x1b[0m") && painted.contains("\x1b[32mok\x1b[0m"),
        "{painted}"
    );
    let json = render::json(&got);
    assert_eq!(json["version"], 1);
    assert_eq!(json["entries"][1]["result"], "failed");
    assert_eq!(json["entries"][1]["steps"][1]["step"], "wait_healthy");
}

#[test]
fn control_characters_in_an_error_are_shown_escaped_in_text_only() {
    let mut log = Log::default();
    log.start("web", "c1", Green, "web:2");
    log.line("web", "c1", "wait_healthy", "failed").error = Some("\x1b]52;c;ZXZpbA==\x07\rall good".into());
    log.outcome("web", "c1", "failed", 4000);
    let got = log.entries();
    for color in [false, true] {
        let out = render::text(&got, color);
        assert!(!out.contains(['\x07', '\r']) && !out.contains("\x1b]"), "{out:?}");
        assert!(out.contains("\\u{1b}]52;c;ZXZpbA==\\u{7}\\rall good"), "{out}");
    }
    let json = render::json(&got);
    assert_eq!(
        json["entries"][0]["error"], "\x1b]52;c;ZXZpbA==\x07\rall good",
        "JSON stays exact"
    );
}

#[test]
fn a_release_says_its_exit_and_last_lines_before_what_started() {
    let mut log = Log::default();
    log.line("web", "c1", "release", "ok").note = Some("exit 0; last lines: migrated 3 | done".into());
    log.deploy("c1", None, Blue, "web:1");
    let e = &log.entries()[0];
    assert_eq!(
        render::detail(e),
        "release: exit 0; last lines: migrated 3 | done, started blue web:1, traffic to blue"
    );
    let line = serde_json::to_value(&e.steps[0]).unwrap();
    assert_eq!(line["note"], "exit 0; last lines: migrated 3 | done");
}

#[test]
fn the_digest_a_pull_pinned_follows_what_started() {
    let mut log = Log::default();
    log.line("web", "c1", "pull_image", "ok").note = Some("resolved to sha256:1f2e3d4c5b6a7980aabbccddeeff".into());
    log.deploy("c1", None, Blue, "r.example.com/web:1");
    let e = &log.entries()[0];
    assert_eq!(
        render::detail(e),
        "started blue r.example.com/web:1, at sha256:1f2e3d4c5b6a, traffic to blue"
    );
}

#[test]
fn a_certificate_line_is_an_entry_of_its_own_and_leaves_a_run_open() {
    let mut log = Log::default();
    log.start("web", "c1", Blue, "web:1");
    log.line("web", "c1", "certificate", "ok").note = Some("issued by CN=Pebble, expires 2027-03-05".into());
    log.switch("web", "c1", None, Blue);
    log.outcome("web", "c1", "ok", 900);
    log.line("web", "c1", "certificate", "failed").error = Some("ACME order for shop.test:\nconnection refused".into());
    let got = log.entries();
    assert_eq!(
        summary(&got),
        vec![
            row("web", "c1", Kind::Deploy, "ok"),
            row("web", "c1", Kind::Certificate, "ok"),
            row("web", "c1", Kind::Certificate, "failed"),
        ]
    );
    assert_eq!(got[0].switch.map(|s| s.to), Some(Blue), "the run kept its switch");
    assert_eq!(render::detail(&got[1]), "issued by CN=Pebble, expires 2027-03-05");
    assert_eq!(render::detail(&got[2]), "ACME order for shop.test:; connection refused");
    let text = render::text(&got, false);
    assert!(text.contains("certificate  failed"), "{text}");
}
