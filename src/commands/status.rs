//! `teal status`: what the daemon on this host serves, from its status API.

use std::fmt::Write;

use std::time::Duration;

use anyhow::anyhow;

use super::host::HostArgs;
use crate::commit::ShortCommit;
use crate::drivers::peer::{PeerClient, PeerError};
use crate::spec::Color;
use crate::status::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
    /// Output format: text for people, json for tools.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    /// Every host of teal.yaml's hosts side by side, read from their
    /// status URLs at once (unreachable hosts marked), instead of this
    /// host's daemon.
    #[arg(long)]
    pub fleet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// One block per service: live color, image and replicas per color, last deploy.
    Text,
    /// The daemon's /status document as it is (described in docs/status.md of
    /// the teal repository).
    Json,
}

pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let config = args.host.load()?;
    if args.fleet {
        return super::fleet::run(&config, args.format == StatusFormat::Json).await;
    }
    let url = format!("http://{}/status", config.listen);
    let token = super::host::token(&config)?.map(crate::secret::Secret::new);
    let status = PeerClient::new(token, Duration::from_secs(5))
        .read(&url)
        .await
        .map_err(|e| match e {
            PeerError::Unreachable(_) => anyhow!(e).context(format!(
                "no teal daemon answers at {url}: is it running (systemctl status teal)?"
            )),
            _ => anyhow!(e).context(format!("{url} did not return a status document")),
        })?;
    match args.format {
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        StatusFormat::Text => print!("{}", text(&status)),
    }
    Ok(super::exit::OK)
}

/// The status for people: one block per service, control characters
/// shown escaped (`printable`).
pub fn text(s: &Status) -> String {
    let short = |c: &Option<String>| {
        c.as_deref()
            .map_or("none".to_string(), |c| ShortCommit::of(c).to_string())
    };
    let mut o = format!("applied commit {}", short(&s.applied_commit));
    if let Some(a) = &s.applied {
        let _ = write!(o, " {:?} by {}", a.message, a.author);
    }
    if s.fetched_commit != s.applied_commit {
        let _ = write!(o, " (newest {} not applied)", short(&s.fetched_commit));
    }
    o.push('\n');
    for e in &s.config_errors {
        let _ = writeln!(o, "  config error: {e}");
    }
    if let Some(r) = &s.refused {
        let _ = writeln!(
            o,
            "  refused {}: {}",
            ShortCommit::git(&r.commit),
            r.reason.replace('\n', "\n    ")
        );
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(o, "  problem: {}", e.lines().next().unwrap_or(""));
    }
    for (name, svc) in &s.services {
        o.push_str(&service(name, svc));
    }
    if let Some(i) = &s.images {
        let _ = writeln!(o, "images {}", i.describe());
    }
    let swarm = s
        .services
        .values()
        .any(|svc| Color::ALL.iter().any(|c| !svc.tasks.get(*c).is_empty()));
    if swarm {
        let _ = writeln!(o, "note: {}", crate::drivers::swarm::PUBLISHED_EVERYWHERE);
    }
    // Authors, subjects and errors come from the repo, containers and git.
    crate::printable::lines(&o).into_owned()
}

/// One service: where traffic goes, each color, the last deploy.
fn service(name: &str, svc: &crate::status::ServiceStatus) -> String {
    let mut o = String::new();
    let live = svc.live.map_or("nothing".to_string(), |c| c.to_string());
    if svc.weights.blue > 0 && svc.weights.green > 0 {
        let _ = writeln!(
            o,
            "{name}: traffic split, blue {} %, green {} %",
            svc.weights.blue, svc.weights.green
        );
    } else {
        let _ = writeln!(o, "{name}: traffic on {live}");
    }
    if let Some(p) = svc.rollout.as_ref().filter(|p| !p.finished()) {
        // A wait for a promotion may last hours: say since when.
        let since = p.waiting().then(|| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(p.since_ms);
            format!(" (since {})", humantime::format_rfc3339_seconds(at))
        });
        let _ = writeln!(
            o,
            "  rollout: {}{}",
            crate::strategy::describe(p),
            since.unwrap_or_default()
        );
    }
    if let Some(rb) = &svc.rolled_back {
        let _ = writeln!(
            o,
            "  rolled back by analysis at {}: {}; revert or push a fix",
            ShortCommit::of(&rb.commit),
            rb.figures
        );
    }
    if let Some(cert) = &svc.certificate {
        let _ = writeln!(o, "  certificate {}", cert.describe());
    }
    for c in Color::ALL {
        if let Some(img) = svc.images.get(c) {
            let _ = writeln!(
                o,
                "  {:<6} {img} ({} running, {} healthy, {} % of traffic)",
                c.as_str(),
                svc.running.get(c),
                svc.healthy.get(c),
                svc.weights.get(c)
            );
            if let Some(d) = svc.digests.get(c) {
                let _ = writeln!(o, "         pinned to {d}");
            }
            if let Some(now) = svc.moved.get(c) {
                let _ = writeln!(
                    o,
                    "         tag moved: the registry now has {now}; {c} keeps running the pinned digest"
                );
            }
        }
        for t in svc.tasks.get(c) {
            let at = t
                .endpoint
                .as_deref()
                .map_or("(not running)".to_string(), |e| format!("at {e}"));
            let _ = writeln!(o, "         task {} on {} {at}", t.name, t.node);
        }
    }
    if let Some(d) = &svc.last_deploy {
        let _ = write!(
            o,
            "  last deploy {} of {}{} at {}",
            d.result,
            ShortCommit::of(&d.commit),
            d.message.as_ref().map(|m| format!(" {m:?}")).unwrap_or_default(),
            d.at
        );
        match &d.error {
            Some(e) => {
                let _ = writeln!(o, ": {e}");
            }
            None => o.push('\n'),
        }
    } else if let Some(r) = svc.history.iter().find(|r| r.kind.is_run()) {
        // The daemon restarted since: the event log still knows.
        let _ = writeln!(
            o,
            "  last deploy {} of {}{} started {}: {}",
            r.result,
            ShortCommit::of(&r.commit),
            r.message.as_ref().map(|m| format!(" {m:?}")).unwrap_or_default(),
            r.time,
            r.detail
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{Deploy, ServiceStatus};
    use crate::spec::PerColor;

    #[test]
    fn status_text_for_people() {
        let mut s = Status {
            applied_commit: Some("4be1c0aa7f0d11e2b6a1c9e5a8f7d6c5b4a39281".into()),
            fetched_commit: Some("9f3a77aa7f0d11e2b6a1c9e5a8f7d6c5b4a39281".into()),
            config_errors: vec!["services/web.yaml:3:3: blue: unknown field \"imgae\", expected \"image\"".into()],
            applied: Some(crate::source::CommitInfo {
                message: "web 1.4.2".into(),
                author: "Ada <ada@example.com>".into(),
                time: "2026-11-22T17:29:00Z".into(),
            }),
            ..Status::default()
        };
        s.services.insert(
            "web".into(),
            ServiceStatus {
                live: Some(Color::Green),
                images: PerColor {
                    blue: Some("shop/web:1.4.1".into()),
                    green: Some("shop/web:1.4.2".into()),
                },
                running: PerColor { blue: 2, green: 2 },
                healthy: PerColor { blue: 2, green: 1 },
                weights: PerColor { blue: 0, green: 100 },
                last_deploy: Some(Deploy {
                    commit: "4be1c0aa7f0d11e2b6a1c9e5a8f7d6c5b4a39281".into(),
                    result: "ok".into(),
                    duration_ms: 8123,
                    error: None,
                    at: "2026-11-22T17:30:00Z".into(),
                    message: Some("web 1.4.2".into()),
                    author: Some("Ada <ada@example.com>".into()),
                }),
                ..ServiceStatus::default()
            },
        );
        insta::assert_snapshot!(text(&s));
    }

    #[test]
    fn control_characters_from_a_repo_or_a_container_are_shown_escaped() {
        // An author who retitles the terminal and overwrites the line.
        let evil = "Eve\x1b]0;pwned\x07\r\x1b[2KAda <ada@example.com>";
        let mut s = Status {
            applied_commit: Some("4be1c0aa7f".into()),
            fetched_commit: Some("4be1c0aa7f".into()),
            applied: Some(crate::source::CommitInfo {
                message: "web\r1.4.2".into(),
                author: evil.into(),
                time: "2026-11-22T17:29:00Z".into(),
            }),
            last_error: Some("pull failed: \x1b[8mhidden".into()),
            images: Some(crate::status::ImagesStatus {
                kept: 3,
                kept_bytes: 210_300_000,
                removed: vec!["web:1".into()],
                disk_free_bytes: Some(41_200_000_000),
                error: None,
            }),
            ..Status::default()
        };
        s.services.insert(
            "web".into(),
            ServiceStatus {
                last_deploy: Some(Deploy {
                    commit: "4be1c0aa7f".into(),
                    result: "failed".into(),
                    duration_ms: 1,
                    error: Some("check said \x1b[31mOK\r".into()),
                    at: "2026-11-22T17:30:00Z".into(),
                    message: None,
                    author: Some(evil.into()),
                }),
                ..ServiceStatus::default()
            },
        );
        let out = text(&s);
        assert!(!out.contains(['\x1b', '\r', '\x07']), "{out:?}");
        assert!(
            out.contains("\nimages 3 kept (210.3 MB), 41.2 GB free; the last cleanup removed 1\n"),
            "{out}"
        );
        assert!(
            out.contains("by Eve\\u{1b}]0;pwned\\u{7}\\r\\u{1b}[2KAda <ada@example.com>")
                && out.contains("problem: pull failed: \\u{1b}[8mhidden")
                && out.contains(": check said \\u{1b}[31mOK\\r\n"),
            "{out}"
        );
    }

    #[test]
    fn swarm_tasks_are_listed_under_their_color_with_node_and_endpoint() {
        let mut s = Status::default();
        let task = |name: &str, endpoint: Option<&str>| crate::daemon::status::TaskStatus {
            name: name.into(),
            node: "node-1".into(),
            endpoint: endpoint.map(String::from),
            running: endpoint.is_some(),
        };
        s.services.insert(
            "web".into(),
            ServiceStatus {
                live: Some(Color::Blue),
                images: PerColor {
                    blue: Some("shop/web:1".into()),
                    green: None,
                },
                tasks: PerColor {
                    blue: vec![
                        task("web-blue.1.abc", Some("10.0.0.5:30001")),
                        task("web-blue.2.def", None),
                    ],
                    green: vec![],
                },
                ..ServiceStatus::default()
            },
        );
        let out = text(&s);
        assert!(
            out.contains("         task web-blue.1.abc on node-1 at 10.0.0.5:30001\n")
                && out.contains("         task web-blue.2.def on node-1 (not running)\n"),
            "{out}"
        );
        assert!(out.ends_with("see the rule in README \"Swarm mode\"\n"), "{out}");
    }
}
