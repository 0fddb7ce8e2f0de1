//! The Swarm tasks a plan was made against, per service, color and node,
//! for `teal plan` in swarm mode: where each replica runs now, next to
//! what the plan would change.

use std::fmt::Write;

use serde::Serialize;

use super::Observed;
use crate::spec::Color;

/// One task as `teal plan` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    pub service: String,
    pub color: Color,
    pub node: String,
    /// Docker's name for the task's container (`web-blue.1.<id>`).
    pub task: String,
    /// `<node address>:<published port>`, when it runs.
    pub endpoint: Option<String>,
    pub running: bool,
    /// A task of a rolling update's twin service.
    pub twin: bool,
}

/// Every observed task, sorted by service, color, node and name.
pub fn rows(observed: &Observed) -> Vec<TaskRow> {
    let mut out = Vec::new();
    for (service, obs) in &observed.services {
        for color in Color::ALL {
            for c in obs.containers.get(color) {
                let Some(node) = &c.node else { continue };
                out.push(TaskRow {
                    service: service.clone(),
                    color,
                    node: node.clone(),
                    task: c.name.clone(),
                    endpoint: c
                        .addr
                        .zip(c.port)
                        .map(|(a, p)| format!("{}", std::net::SocketAddr::new(a, p))),
                    running: c.running,
                    twin: c.twin,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.service, a.color, &a.node, &a.task).cmp(&(&b.service, b.color, &b.node, &b.task)));
    out
}

fn state(r: &TaskRow) -> String {
    let mut s = if r.running { "running" } else { "not running" }.to_string();
    if r.twin {
        s.push_str(", rolling update");
    }
    s
}

/// The text section, after the plan.
pub fn text(rows: &[TaskRow]) -> String {
    let mut out = String::from("\nSwarm tasks now, per node:\n");
    if rows.is_empty() {
        out.push_str("  (none)\n");
    }
    for r in rows {
        let at = r.endpoint.as_deref().map(|e| format!(" at {e}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}/{} on {}: {}{at} ({})",
            r.service,
            r.color,
            r.node,
            r.task,
            state(r)
        );
    }
    out
}

/// The markdown section, after the plan.
pub fn markdown(rows: &[TaskRow]) -> String {
    let mut out = String::from("\n#### Swarm tasks now\n\n");
    if rows.is_empty() {
        out.push_str("None.\n");
        return out;
    }
    out.push_str("| service | color | node | task | endpoint | state |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} | {} |",
            r.service,
            r.color,
            r.node,
            r.task,
            r.endpoint.as_deref().unwrap_or("-"),
            state(r)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ObservedContainer, ObservedService};

    fn task(name: &str, node: &str, port: Option<u16>, twin: bool) -> ObservedContainer {
        ObservedContainer {
            name: name.into(),
            replica: 0,
            image: "web:1".into(),
            spec_hash: "h".into(),
            running: port.is_some(),
            commit: None,
            addr: port.map(|_| "10.0.0.2".parse().unwrap()),
            port,
            node: Some(node.into()),
            spec: None,
            twin,
        }
    }

    #[test]
    fn tasks_are_listed_per_service_color_and_node() {
        let mut obs = ObservedService::default();
        obs.containers.blue = vec![
            task("web-blue.2.b", "node-b", Some(30002), false),
            task("web-blue.1.a", "node-a", Some(30001), false),
        ];
        obs.containers.green = vec![task("web-green-next.1.c", "node-a", None, true)];
        let observed = Observed {
            services: [("web".to_string(), obs)].into(),
        };
        let rows = rows(&observed);
        assert_eq!(
            text(&rows),
            "\nSwarm tasks now, per node:\n  web/blue on node-a: web-blue.1.a at 10.0.0.2:30001 (running)\n  web/blue on node-b: web-blue.2.b at 10.0.0.2:30002 (running)\n  web/green on node-a: web-green-next.1.c (not running, rolling update)\n"
        );
        assert!(markdown(&rows)
            .contains("| web | green | node-a | `web-green-next.1.c` | - | not running, rolling update |"));
    }
}
