//! Human and machine renderings of a `Plan`: text (coloured on a TTY only),
//! Markdown (GitHub step summary, PR comment) and JSON (stable shape,
//! documented in docs/json.md). Unchanged services are left out of text and
//! Markdown, and listed in JSON with `"change": "none"`.

use std::fmt::Write;

use serde_json::json;

use super::{Change, Plan, ServicePlan, Step, Transition};
use crate::printable;
use crate::spec::{duration, Color, Health};

/// Version of the JSON shape; bumped only on incompatible changes.
pub const JSON_VERSION: u32 = 1;

struct Style(bool);

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn sigil(c: Change) -> (&'static str, &'static str) {
    match c {
        Change::Create => ("+", "32"),
        Change::Update => ("~", "33"),
        Change::Delete => ("-", "31"),
        Change::Refused => ("!", "1;31"),
        Change::RolledBack => ("!", "1;35"),
        Change::None => (" ", "0"),
    }
}

/// Counts by kind, in the order users read them: `1 to create, ...`.
fn summary(plan: &Plan) -> String {
    let n = |c: Change| plan.services.iter().filter(|s| s.change == c).count();
    if !plan.has_changes() {
        return "no changes".into();
    }
    let mut parts = vec![
        format!("{} to create", n(Change::Create)),
        format!("{} to update", n(Change::Update)),
        format!("{} to remove", n(Change::Delete)),
    ];
    if n(Change::Refused) > 0 {
        parts.push(format!("{} refused", n(Change::Refused)));
    }
    if n(Change::RolledBack) > 0 {
        parts.push(format!("{} held after a rollback", n(Change::RolledBack)));
    }
    parts.join(", ")
}

fn traffic(sp: &ServicePlan) -> String {
    let c = |c: Option<Color>| c.map_or("nothing".to_string(), |c| c.to_string());
    match (sp.change, sp.active.from, sp.active.to) {
        (Change::Delete, _, _) => format!("{} -> nothing", c(sp.active.from)),
        (_, from, to) if from != to => format!("{} -> {}", c(from), c(to)),
        (_, _, to) => format!("stays on {}", c(to)),
    }
}

fn image(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("(none)")
}

/// One color's image line, or `None` when it does not change.
fn image_change(t: &Transition<Option<String>>) -> Option<String> {
    t.changed().then(|| format!("{} -> {}", image(&t.from), image(&t.to)))
}

/// The health gate in one line.
pub fn gate(h: &Health) -> String {
    format!(
        "{}, {} consecutive passes every {}, timeout {}, deadline {}",
        h.probe,
        h.successes,
        duration::format(h.interval),
        duration::format(h.timeout),
        duration::format(h.deadline)
    )
}

/// A step in a few words.
pub fn step(s: &Step) -> String {
    match s {
        Step::PullImage { color, image } => format!("pull {image} for {color} (if missing)"),
        Step::StartColor { color, replicas: 1, .. } => format!("start {color} (1 replica)"),
        Step::StartColor { color, replicas, .. } => format!("start {color} ({replicas} replicas)"),
        Step::Release { color, image } => {
            format!("run the release command in {image} before {color} starts (once per commit)")
        }
        Step::WaitHealthy { color } => format!("check {color}"),
        Step::Switch { from: Some(f), to } => format!("switch traffic {f} -> {to}"),
        Step::Switch { from: None, to } => format!("route traffic to {to}"),
        Step::Canary { from, to, steps } => {
            let mut shares: Vec<String> = steps.iter().map(|s| format!("{} %", s.weight)).collect();
            shares.push("100 %".into());
            let holds: Vec<String> = steps.iter().map(|s| duration::format(s.hold)).collect();
            let holds = if holds.iter().all(|h| *h == holds[0]) {
                format!("holds {}", holds[0])
            } else {
                format!("holds {}", holds.join(", "))
            };
            format!("canary {from} -> {to}: {}, {holds}", shares.join(" -> "))
        }
        Step::Roll {
            color,
            image,
            replicas,
            max_surge,
        } => format!(
            "rolling update of {color} to {image}: {replicas} replica{}, {max_surge} at a time",
            if *replicas == 1 { "" } else { "s" }
        ),
        Step::Verify {
            color,
            from,
            duration: d,
        } => {
            format!("verify {color} for {}, back to {from} on errors", duration::format(*d))
        }
        Step::Reroute { color } => format!("update proxy entry (traffic stays on {color})"),
        Step::Drain { color, duration: d } => format!("drain {color} for {}", duration::format(*d)),
        Step::RemoveReplicas { color, keep } => format!("remove {color} replicas beyond {keep}"),
        Step::StopColor { color } => format!("stop {color}"),
        Step::RemoveColor { color } => format!("remove {color} containers"),
        Step::RemoveService { drain: None } => "remove proxy entry and containers".into(),
        Step::RemoveService { drain: Some(d) } => {
            format!("remove proxy entry, drain {}, remove containers", duration::format(*d))
        }
    }
}

/// Plain text for a terminal; ANSI colours only when `color` is true.
pub fn text(plan: &Plan, color: bool) -> String {
    let st = Style(color);
    let mut out = String::new();
    for sp in plan.services.iter().filter(|s| s.change != Change::None) {
        let (sig, code) = sigil(sp.change);
        let kind = match sp.change {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "remove",
            Change::RolledBack => "rolled back",
            _ => "refused",
        };
        let head = format!("{sig} {}", sp.service);
        let _ = writeln!(out, "{}  {kind}, traffic {}", st.paint(code, &head), traffic(sp));
        if let Some(why) = &sp.refused {
            let _ = writeln!(out, "    {}", st.paint("31", &printable::lines(why)));
        }
        if !sp.hosts.is_empty() {
            let _ = writeln!(out, "    hosts: {}", sp.hosts.join(", "));
        }
        for (c, t) in [(Color::Blue, &sp.images.blue), (Color::Green, &sp.images.green)] {
            if let Some(line) = image_change(t) {
                let _ = writeln!(out, "    {:<6} {line}", c.as_str());
            }
        }
        for s in &sp.secrets {
            let _ = writeln!(out, "    secret {s}");
        }
        if let Some(h) = &sp.gate {
            let _ = writeln!(out, "    gate   {}", gate(h));
        }
        for (i, s) in sp.steps.iter().enumerate() {
            let label = if i == 0 { "steps" } else { "" };
            let _ = writeln!(out, "    {label:<6} {}. {}", i + 1, step(s));
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    if plan.has_changes() {
        let _ = writeln!(out, "Plan: {}.", summary(plan));
    } else {
        out.push_str("No changes.\n");
    }
    out
}

/// Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = format!("### teal plan: {}\n\n", summary(plan));
    let changed: Vec<&ServicePlan> = plan.services.iter().filter(|s| s.change != Change::None).collect();
    if changed.is_empty() {
        out.push_str("Merging this changes nothing that runs.\n");
        return out;
    }
    for sp in changed.iter().filter(|s| s.refused.is_some()) {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> **{}** refused: {}\n",
            sp.service,
            printable::lines(sp.refused.as_deref().unwrap_or(""))
        );
    }
    let fleet = changed.iter().any(|s| !s.hosts.is_empty());
    out.push_str(if fleet {
        "| | service | traffic | blue | green | hosts |\n|---|---|---|---|---|---|\n"
    } else {
        "| | service | traffic | blue | green |\n|---|---|---|---|---|\n"
    });
    for sp in &changed {
        let img = |t: &Transition<Option<String>>| match image_change(t) {
            Some(_) => format!("`{}` → `{}`", image(&t.from), image(&t.to)),
            None => format!("`{}`", image(&t.to)),
        };
        let _ = write!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            sigil(sp.change).0,
            sp.service,
            traffic(sp).replace("->", "→"),
            img(&sp.images.blue),
            img(&sp.images.green)
        );
        if fleet {
            let _ = write!(out, " {} |", sp.hosts.join(", "));
        }
        out.push('\n');
    }
    let with_steps: Vec<&&ServicePlan> = changed.iter().filter(|s| !s.steps.is_empty()).collect();
    if with_steps.is_empty() {
        return out;
    }
    out.push_str("\n<details><summary>Steps</summary>\n\n");
    for sp in with_steps {
        let _ = writeln!(out, "**{}**", sp.service);
        for s in &sp.secrets {
            let _ = writeln!(out, "- secret {s}");
        }
        if let Some(h) = &sp.gate {
            let _ = writeln!(out, "gated by {}\n", gate(h));
        } else {
            out.push('\n');
        }
        for (i, s) in sp.steps.iter().enumerate() {
            let _ = writeln!(out, "{}. {}", i + 1, step(s));
        }
        out.push('\n');
    }
    out.push_str("</details>\n");
    out
}

/// The stable JSON shape documented in docs/json.md.
pub fn json(plan: &Plan) -> serde_json::Value {
    let n = |c: Change| plan.services.iter().filter(|s| s.change == c).count();
    let services: Vec<serde_json::Value> = plan
        .services
        .iter()
        .map(|sp| {
            let mut v = json!({
                "service": sp.service,
                "change": sp.change,
                "active": sp.active,
                "images": sp.images,
                "gate": sp.gate,
                "steps": sp.steps,
                "refused": sp.refused,
            });
            if !sp.hosts.is_empty() {
                v["hosts"] = json!(sp.hosts);
            }
            if !sp.secrets.is_empty() {
                v["secrets"] = json!(sp.secrets);
            }
            v
        })
        .collect();
    json!({
        "version": JSON_VERSION,
        "changes": plan.has_changes(),
        "summary": {
            "create": n(Change::Create),
            "update": n(Change::Update),
            "delete": n(Change::Delete),
            "refused": n(Change::Refused),
        },
        "services": services,
    })
}
