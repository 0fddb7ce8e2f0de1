//! The dashboard's HTML, rendered on the server: the whole page for
//! `GET /`, and the two parts `GET /events` sends when they change (the
//! live part, one event row). Every value from the repo, Docker or the
//! event log goes through `esc`; the page's own CSS and script are built
//! into the binary (no CDN, no fonts, no build step).

use std::fmt::Write;

use super::colors::{color_row, tasks};
use std::time::Duration;

use super::Snapshot;
use crate::commit::ShortCommit;
use crate::daemon::status::{Recent, ServiceStatus, Status};
use crate::events::Event;
use crate::spec::Color;
use crate::strategy::{Phase, Progress};

const PAGE: &str = include_str!("assets/page.html");
const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/live.js");

pub use super::escape::esc;

/// The whole page for `host` at `now` (RFC 3339).
pub fn page(s: &Snapshot, host: &str, now: &str) -> String {
    let mut events = if s.events.is_empty() {
        "<li class=\"none muted\">Nothing yet: events appear here as teal works.</li>\n".to_string()
    } else {
        s.events.iter().map(event_row).collect()
    };
    if s.skipped > 0 {
        let _ = writeln!(
            events,
            "<li class=\"problem\">{} line{} of events.jsonl {} not an event (a write cut off by a crash?): skipped; <code>teal history</code> names {}.</li>",
            s.skipped,
            if s.skipped == 1 { "" } else { "s" },
            if s.skipped == 1 { "is" } else { "are" },
            if s.skipped == 1 { "it" } else { "them" },
        );
    }
    fill(
        PAGE,
        &[
            ("<!--style-->", STYLE.to_string()),
            ("<!--script-->", SCRIPT.to_string()),
            ("<!--host-->", esc(host)),
            ("<!--now-->", esc(&when(now))),
            ("<!--max-->", super::EVENTS.to_string()),
            ("<!--version-->", esc(env!("CARGO_PKG_VERSION"))),
            ("<!--live-->", live(&s.status)),
            ("<!--events-->", events),
        ],
    )
}

/// Replaces each marker of the template in one pass, so no value can
/// smuggle in a marker of its own.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match values.iter().find(|(m, _)| tail.starts_with(m)) {
            Some((m, v)) => {
                out.push_str(v);
                rest = &tail[m.len()..];
            }
            None => {
                out.push_str("<!--");
                rest = &tail[4..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The part of the page that follows the status: what is applied, any
/// problem, and a card per service.
pub fn live(s: &Status) -> String {
    let mut o = String::from("<section class=\"summary\">\n");
    match &s.applied_commit {
        Some(c) => {
            let _ = write!(o, "<p>Serving commit {}", commit(c));
            if let Some(i) = &s.applied {
                let _ = write!(
                    o,
                    " <q>{}</q> <span class=\"muted\">by {}, {}</span>",
                    esc(&i.message),
                    esc(&i.author),
                    esc(&when(&i.time))
                );
            }
            o.push_str("</p>\n");
        }
        None => o.push_str("<p class=\"muted\">No commit applied yet.</p>\n"),
    }
    if s.fetched_commit.is_some() && s.fetched_commit != s.applied_commit {
        let newest = s.fetched_commit.as_deref().unwrap_or("");
        let _ = writeln!(
            o,
            "<p class=\"problem\">Newest commit {} is not applied:</p>",
            commit(newest)
        );
    }
    if !s.config_errors.is_empty() {
        o.push_str("<ul class=\"errors\">\n");
        for e in &s.config_errors {
            let _ = writeln!(o, "<li><code>{}</code></li>", esc(e));
        }
        o.push_str("</ul>\n");
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(
            o,
            "<p class=\"problem\">Problem: {}\nStill serving the last good state.</p>",
            esc(e)
        );
    }
    o.push_str("</section>\n<div class=\"services\">\n");
    if s.services.is_empty() {
        o.push_str("<p class=\"muted\">No services yet.</p>\n");
    }
    for (name, svc) in &s.services {
        o.push_str(&service(name, svc));
    }
    o.push_str("</div>\n");
    o
}

/// One service's card.
fn service(name: &str, svc: &ServiceStatus) -> String {
    let n = esc(name);
    let live = svc.live.map_or("none".to_string(), |c| c.to_string());
    let mut o = format!(
        "<article class=\"svc\" id=\"svc-{n}\" data-service=\"{n}\" data-live=\"{live}\">\n<header><h2>{n}</h2>"
    );
    match svc.live {
        Some(c) => {
            let _ = write!(o, "<span class=\"badge c-{c}\">traffic on {c}</span>");
        }
        None => o.push_str("<span class=\"badge muted\">not routed</span>"),
    }
    o.push_str("</header>\n");
    let label: Vec<String> = Color::ALL
        .iter()
        .map(|c| format!("{c} {} %", svc.weights.get(*c)))
        .collect();
    let _ = write!(
        o,
        "<div class=\"weights\" role=\"img\" aria-label=\"traffic: {}\">",
        label.join(", ")
    );
    for c in Color::ALL {
        let _ = write!(
            o,
            "<span class=\"c-{c}\" style=\"width:{}%\"></span>",
            svc.weights.get(c).min(&100)
        );
    }
    o.push_str("</div>\n<div class=\"table-wrap\"><table>\n<thead><tr><th>color</th><th>version</th><th>image</th><th>traffic</th><th>running</th><th>healthy</th></tr></thead>\n<tbody>\n");
    for c in Color::ALL {
        o.push_str(&color_row(svc, c));
    }
    o.push_str("</tbody></table></div>\n");
    o.push_str(&tasks(svc));
    if let Some(rb) = &svc.rolled_back {
        let _ = writeln!(
            o,
            "<p class=\"problem held\">Rolled back by analysis at {}: {}. Not deployed again until a new commit: revert it or push a fix.</p>",
            commit(&rb.commit),
            esc(&rb.figures)
        );
    }
    if let Some(p) = &svc.rollout {
        o.push_str(&rollout(p));
    }
    if let Some(line) = &svc.pulling {
        let _ = writeln!(o, "<p class=\"pulling muted\">Pulling the new image: {}</p>", esc(line));
    }
    if let Some(c) = &svc.certificate {
        let class = if c.state == crate::status::CertState::Failed {
            "problem"
        } else {
            "muted"
        };
        let _ = writeln!(o, "<p class=\"cert {class}\">Certificate {}</p>", esc(&c.describe()));
    }
    o.push_str(&last_deploy(svc));
    let past: Vec<&Recent> = svc.history.iter().take(5).collect();
    if !past.is_empty() {
        o.push_str("<h3>Deploys, rollbacks and refusals</h3>\n<ol class=\"history\">\n");
        for r in past {
            o.push_str(&recent(r));
        }
        o.push_str("</ol>\n");
    }
    o.push_str("</article>\n");
    o
}

/// The newest deploy or rollback from the event log; else the one the
/// loop recorded (a log that was cleared).
fn last_deploy(svc: &ServiceStatus) -> String {
    let mut o = String::from("<section class=\"last\"><h3>Last deploy</h3>\n");
    let line = |result: &str, c: &str, msg: Option<&str>, author: Option<&str>, at: String, ms: u64| {
        let meta: Vec<String> = author
            .map(|a| format!("by {}", esc(a)))
            .into_iter()
            .chain([esc(&at), format!("took {}", took(ms))])
            .collect();
        format!(
            "<p><span class=\"res {class}\">{res}</span> {} {}<span class=\"muted\">{}</span></p>\n",
            commit(c),
            message(msg),
            meta.join(", "),
            res = esc(result),
            class = slug(result),
        )
    };
    if let Some(r) = svc.history.iter().find(|r| r.kind.is_run()) {
        let at = format!("started {}", when(&r.time));
        o.push_str(&line(
            r.result.as_str(),
            &r.commit,
            r.message.as_deref(),
            r.author.as_deref(),
            at,
            r.duration_ms,
        ));
        let _ = writeln!(o, "<p class=\"detail\">{}</p>", esc(&r.detail));
    } else if let Some(d) = &svc.last_deploy {
        let at = format!("finished {}", when(&d.at));
        o.push_str(&line(
            d.result.as_str(),
            &d.commit,
            d.message.as_deref(),
            d.author.as_deref(),
            at,
            d.duration_ms,
        ));
        if let Some(e) = &d.error {
            let _ = writeln!(o, "<p class=\"detail\">{}</p>", esc(e));
        }
    } else {
        o.push_str("<p class=\"muted\">None recorded yet.</p>\n");
    }
    o.push_str("</section>\n");
    o
}

fn recent(r: &Recent) -> String {
    let kind = r.kind.as_str();
    format!(
        "<li class=\"k-{kind}\"><time datetime=\"{t}\">{}</time> <span class=\"kind\">{kind}</span> <span class=\"res {class}\">{res}</span> {} {}<span class=\"detail\">{}</span></li>\n",
        esc(&when(&r.time)),
        commit(&r.commit),
        message(r.message.as_deref()),
        esc(&r.detail),
        t = esc(&r.time),
        res = esc(r.result.as_str()),
        class = slug(r.result.as_str()),
    )
}

/// The service's rollout as the engine recorded it: the phase in words
/// (a canary step and its weight, the verify window, or the analysis
/// figures of a rollback), for which commit, since when.
fn rollout(p: &Progress) -> String {
    let phase = match &p.phase {
        Phase::Step { .. } => "step",
        Phase::Waiting { .. } => "waiting",
        Phase::Verify => "verify",
        Phase::Done => "done",
        Phase::RolledBack(_) => "rolled_back",
    };
    let state = if p.finished() { "last rollout" } else { "in progress" };
    let since = std::time::UNIX_EPOCH + Duration::from_millis(p.since_ms);
    format!(
        "<section class=\"rollout\" data-phase=\"{phase}\"><h3>Rollout</h3>\n<p><span class=\"kind\">{state}</span> {} {} → {}: {}</p>\n<p class=\"muted\">since {}</p>\n</section>\n",
        commit(&p.commit),
        p.from,
        p.to,
        esc(&crate::strategy::describe(p)),
        esc(&when(&humantime::format_rfc3339_seconds(since).to_string())),
    )
}

/// A result as a class name: `rolled back` -> `rolled-back`.
fn slug(result: &str) -> String {
    result
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// One line of the event list.
pub fn event_row(e: &Event) -> String {
    let mut what = String::new();
    match (e.from, e.color) {
        (Some(from), Some(to)) => {
            let _ = write!(
                what,
                " <span class=\"c-{from}\">{from}</span> → <span class=\"c-{to}\">{to}</span>"
            );
        }
        (None, Some(c)) => {
            let _ = write!(what, " <span class=\"c-{c}\">{c}</span>");
        }
        _ => {}
    }
    if let Some(img) = &e.image {
        let _ = write!(what, " <code>{}</code>", esc(img));
    }
    let err = e
        .error
        .as_deref()
        .map(|x| format!(" <span class=\"err\">{}</span>", esc(x)))
        .unwrap_or_default();
    format!(
        "<li class=\"ev\" data-step=\"{step}\" data-service=\"{svc}\"><time datetime=\"{t}\">{}</time> <b>{svc}</b> <span class=\"step\">{step}</span>{what} <span class=\"res {class}\">{res}</span> <span class=\"muted\">{}</span> {}{err}</li>\n",
        esc(&when(&e.time)),
        took(e.duration_ms),
        commit(&e.commit),
        t = esc(&e.time),
        svc = esc(&e.service),
        step = esc(e.step.as_str()),
        res = esc(e.result.as_str()),
        class = slug(e.result.as_str()),
    )
}

fn commit(c: &str) -> String {
    format!("<code title=\"{}\">{}</code>", esc(c), esc(ShortCommit::of(c).as_str()))
}

fn message(m: Option<&str>) -> String {
    m.map(|m| format!("<q>{}</q> ", esc(m))).unwrap_or_default()
}

/// `2026-11-25 19:43:09` from RFC 3339 (UTC, to the second).
fn when(t: &str) -> String {
    t.get(..19).unwrap_or(t).replace('T', " ")
}

fn took(ms: u64) -> String {
    crate::history::render::took(Duration::from_millis(ms))
}
