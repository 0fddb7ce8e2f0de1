//! The dashboard's rows per color of a service: version, image, traffic,
//! running and healthy replicas, and in swarm mode the tasks.

use super::escape::esc;
use crate::daemon::status::ServiceStatus;
use crate::spec::Color;

pub(super) fn color_row(svc: &ServiceStatus, c: Color) -> String {
    let is_live = if svc.live == Some(c) { " class=\"is-live\"" } else { "" };
    let (version, image) = match svc.images.get(c) {
        Some(img) => (
            esc(svc.versions.get(c).as_deref().unwrap_or("")),
            format!("<code>{}</code>", esc(img)),
        ),
        None => (
            "-".to_string(),
            "<span class=\"muted\">no containers</span>".to_string(),
        ),
    };
    format!(
        "<tr data-color=\"{c}\"{is_live}><th scope=\"row\"><span class=\"dot c-{c}\"></span>{c}</th><td class=\"version\">{version}</td><td>{image}</td><td class=\"weight\">{} %</td><td class=\"running\">{}</td><td class=\"healthy\">{}</td></tr>\n",
        svc.weights.get(c),
        svc.running.get(c),
        svc.healthy.get(c)
    )
}

/// Swarm mode: each color's tasks, by node and endpoint (nothing in
/// engine mode).
pub(super) fn tasks(svc: &ServiceStatus) -> String {
    let task = |t: &crate::daemon::status::TaskStatus| {
        let at = t
            .endpoint
            .as_deref()
            .map_or("not running".into(), |e| format!("at {}", esc(e)));
        format!("<code>{}</code> on {} {at}", esc(&t.name), esc(&t.node))
    };
    Color::ALL
        .into_iter()
        .filter(|c| !svc.tasks.get(*c).is_empty())
        .map(|c| {
            let each: Vec<String> = svc.tasks.get(c).iter().map(task).collect();
            format!("<p class=\"tasks muted\">{c} tasks: {}</p>\n", each.join(", "))
        })
        .collect()
}
