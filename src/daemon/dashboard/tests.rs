use std::collections::HashMap;

use super::html::{esc, event_row, live, page};
use super::*;
use crate::daemon::status::RolledBackStatus;
use crate::daemon::status::{Deploy, ServiceStatus};
use crate::spec::{Color, PerColor};
use crate::strategy::{Failure, Phase, Progress, Reason};

/// A canary of `commit` to green, in `phase`.
fn progress(commit: &str, phase: Phase) -> Progress {
    Progress {
        service: "web".into(),
        commit: commit.into(),
        service_hash: "h".into(),
        from: Color::Blue,
        to: Color::Green,
        phase,
        baseline: Default::default(),
        since_ms: 1_795_000_000_000,
        prom: Default::default(),
    }
}

fn event(time: &str, step: &str, color: Option<Color>, from: Option<Color>, image: Option<&str>) -> Event {
    Event {
        time: time.into(),
        commit: "1dcece7d5058c7e06e3ab444262212ecae472b70".into(),
        service: "web".into(),
        step: step.into(),
        result: "ok".into(),
        duration_ms: 120,
        error: None,
        color,
        from,
        image: image.map(String::from),
        note: None,
    }
}

/// web: 1.0 on blue, 2.0 on green and live, a deploy of 2.0 in the log.
fn status() -> (Status, Vec<Event>) {
    let mut s = Status {
        applied_commit: Some("1dcece7d5058c7e06e3ab444262212ecae472b70".into()),
        fetched_commit: Some("1dcece7d5058c7e06e3ab444262212ecae472b70".into()),
        ..Status::default()
    };
    s.services.insert(
        "web".into(),
        ServiceStatus {
            live: Some(Color::Green),
            images: PerColor {
                blue: Some("registry.example.com:5000/shop/web:1.0".into()),
                green: Some("registry.example.com:5000/shop/web:2.0".into()),
            },
            running: PerColor { blue: 2, green: 2 },
            healthy: PerColor { blue: 2, green: 1 },
            weights: PerColor { blue: 0, green: 100 },
            ..ServiceStatus::default()
        },
    );
    let img = Some("registry.example.com:5000/shop/web:2.0");
    let events = vec![
        event("2026-11-25T19:43:08.000Z", "pull_image", Some(Color::Green), None, img),
        event("2026-11-25T19:43:09.000Z", "start_color", Some(Color::Green), None, img),
        event(
            "2026-11-25T19:43:10.000Z",
            "switch",
            Some(Color::Green),
            Some(Color::Blue),
            None,
        ),
        Event::outcome("web", "1dcece7d5058c7e06e3ab444262212ecae472b70", "ok", 2100, None),
    ];
    add_history(&mut s, &events);
    let info = CommitInfo {
        message: "web 2.0".into(),
        author: "Ada <ada@example.com>".into(),
        time: "2026-11-25T19:42:00Z".into(),
    };
    let infos = HashMap::from([(s.applied_commit.clone().unwrap(), info)]);
    add_commits(&mut s, &infos);
    (s, events)
}

#[test]
fn versions_are_image_tags() {
    for (image, want) in [
        ("web:1.4.2", "1.4.2"),
        ("registry.example.com:5000/shop/web:2.0", "2.0"),
        ("registry.example.com:5000/shop/web", "latest"),
        ("web", "latest"),
        ("web@sha256:0123456789abcdef0123", "@0123456789ab"),
    ] {
        assert_eq!(version(image), want, "{image}");
    }
}

#[test]
fn the_status_gains_versions_history_and_commit_subjects() {
    let (s, _) = status();
    let web = &s.services["web"];
    assert_eq!(web.versions.green.as_deref(), Some("2.0"));
    assert_eq!(web.versions.blue.as_deref(), Some("1.0"));
    assert_eq!(web.history.len(), 1);
    let last = &web.history[0];
    assert_eq!((last.result.as_str(), last.duration_ms), ("ok", 2100));
    assert_eq!(last.message.as_deref(), Some("web 2.0"));
    assert!(last.detail.contains("traffic blue -> green"), "{}", last.detail);
    assert_eq!(
        s.applied.as_ref().map(|a| a.author.as_str()),
        Some("Ada <ada@example.com>")
    );
    // A blue-green deploy records no rollout: nothing to show.
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["services"]["web"]["rollout"].is_null(), "{json}");
}

#[test]
fn the_live_part_reads_as_expected() {
    let (s, _) = status();
    insta::assert_snapshot!(live(&s));
}

#[test]
fn the_page_shows_service_version_color_and_events_without_script() {
    let (s, events) = status();
    let snap = Snapshot {
        status: s,
        events: events.into_iter().rev().collect(),
        skipped: 1,
    };
    let html = page(&snap, "host-1", "2026-11-25T19:44:00Z");
    assert!(html.starts_with("<!doctype html>"), "{html}");
    assert!(html.contains("<article class=\"svc\" id=\"svc-web\""), "{html}");
    assert!(html.contains("<tr data-color=\"green\" class=\"is-live\">"), "{html}");
    assert!(html.contains("<td class=\"version\">2.0</td>"), "{html}");
    assert!(
        html.contains("<span class=\"badge c-green\">traffic on green</span>"),
        "{html}"
    );
    assert!(html.contains("data-step=\"switch\""), "{html}");
    assert!(html.contains("<title>teal · host-1</title>"), "{html}");
    assert!(html.contains("1 line of events.jsonl is not an event"), "{html}");
    // Nothing is fetched from elsewhere.
    for outside in ["http://", "https://", "//fonts", "<link", "src="] {
        assert!(!html.contains(outside), "{outside} in the page");
    }
}

#[test]
fn everything_from_outside_is_escaped() {
    let (mut s, _) = status();
    let evil = "<script>alert(1)</script><!--live-->\"'&";
    let web = s.services.get_mut("web").unwrap();
    web.images.blue = Some(format!("web:{evil}"));
    web.versions.blue = Some(evil.into());
    web.history[0].message = Some(evil.into());
    web.history[0].detail = evil.into();
    web.last_deploy = Some(Deploy {
        commit: evil.into(),
        result: evil.into(),
        duration_ms: 1,
        error: Some(evil.into()),
        at: evil.into(),
        message: Some(evil.into()),
        author: Some(evil.into()),
    });
    let failure = Failure {
        reason: Reason::Errors,
        figures: evil.into(),
    };
    web.rollout = Some(progress(evil, Phase::RolledBack(failure)));
    web.rolled_back = Some(RolledBackStatus {
        commit: evil.into(),
        figures: evil.into(),
    });
    let mut svc = web.clone();
    svc.history.clear();
    s.services.insert(evil.into(), svc);
    s.config_errors = vec![evil.into()];
    s.last_error = Some(evil.into());
    s.fetched_commit = Some(evil.into());
    let mut bad = event("2026", evil, Some(Color::Blue), None, Some(evil));
    bad.service = evil.into();
    bad.error = Some(evil.into());
    bad.result = evil.into();
    let snap = Snapshot {
        status: s,
        events: vec![bad.clone()],
        skipped: 0,
    };
    let html = page(&snap, evil, evil);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("\"'&"), "{html}");
    assert!(html.contains(&esc(evil)));
    // The live part stays one part: an escaped marker is not filled.
    assert_eq!(html.matches("<main id=\"live\">").count(), 1);
    assert!(!event_row(&bad).contains("<script>alert"));
    // The rollout block is shown when there is one, and the hold after a rollback.
    assert!(
        html.contains("<section class=\"rollout\" data-phase=\"rolled_back\">"),
        "{html}"
    );
    assert!(html.contains("Rolled back by analysis at <code"), "{html}");
}

#[test]
fn a_canary_step_in_progress_is_shown_with_its_weight() {
    let (mut s, _) = status();
    let web = s.services.get_mut("web").unwrap();
    web.rollout = Some(progress("1dcece7d50", Phase::Step { index: 1, weight: 50 }));
    web.weights = PerColor { blue: 50, green: 50 };
    let html = live(&s);
    assert!(
        html.contains("<span class=\"kind\">in progress</span> <code title=\"1dcece7d50\">1dcece7d50</code> blue → green: canary step 2: 50 % of requests to green</p>"),
        "{html}"
    );
    assert!(html.contains("data-phase=\"step\""), "{html}");
    assert!(html.contains("<td class=\"weight\">50 %</td>"), "{html}");
}

#[test]
fn swarm_tasks_show_under_the_colors_table_with_node_and_endpoint() {
    let (mut s, _) = status();
    assert!(!live(&s).contains("tasks:"), "engine mode: no task line");
    let web = s.services.get_mut("web").unwrap();
    web.tasks.green = vec![
        crate::daemon::status::TaskStatus {
            name: "web-green.1.abc".into(),
            node: "node-1".into(),
            endpoint: Some("10.0.0.5:30001".into()),
            running: true,
        },
        crate::daemon::status::TaskStatus {
            name: "web-green.2.<x>".into(),
            node: "node-2".into(),
            endpoint: None,
            running: false,
        },
    ];
    let html = live(&s);
    assert!(
        html.contains("<p class=\"tasks muted\">green tasks: <code>web-green.1.abc</code> on node-1 at 10.0.0.5:30001, <code>web-green.2.&lt;x&gt;</code> on node-2 not running</p>"),
        "{html}"
    );
}

#[test]
fn a_route_certificate_is_shown_and_a_failed_one_as_a_problem() {
    use crate::status::{CertSource, CertState, CertificateStatus};
    let (mut s, _) = status();
    assert!(!live(&s).contains("Certificate"), "no tls: no line");
    let web = s.services.get_mut("web").unwrap();
    web.certificate = Some(CertificateStatus {
        source: CertSource::Acme,
        state: CertState::Failed,
        subject: Some("CN=<shop>".into()),
        issuer: Some("CN=Pebble".into()),
        names: vec!["shop.example.com".into()],
        not_after: Some(86_400),
        error: Some("order: connection refused".into()),
        retry_at: None,
    });
    let html = live(&s);
    assert!(
        html.contains("<p class=\"cert problem\">Certificate failed (acme): order: connection refused; still serving CN=&lt;shop&gt;, issued by CN=Pebble, expires 1970-01-02T00:00:00Z</p>"),
        "{html}"
    );
}

#[test]
fn a_pull_in_flight_shows_its_progress() {
    let (mut s, _) = status();
    assert!(!live(&s).contains("Pulling"), "no pull: no line");
    s.services.get_mut("web").unwrap().pulling = Some("pulling: 2 of 5 layers done, <12.3> MB".into());
    let html = live(&s);
    assert!(
        html.contains(
            "<p class=\"pulling muted\">Pulling the new image: pulling: 2 of 5 layers done, &lt;12.3&gt; MB</p>"
        ),
        "{html}"
    );
}
