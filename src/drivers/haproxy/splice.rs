//! A switch's record without rendering the whole file: when the routes of
//! a change keep their structure, the file teal wrote last differs from
//! the new one only in those routes' record lines and server lines (and
//! the header's hash). At 500 routes rendering and comparing the whole
//! file was most of what a switch cost over one with a single route.
//! Splicing is only done on the file this teal wrote itself (`Parsed`
//! knows), so a file of an older teal or a hand edit always takes the
//! full render, which sees what needs a reload.

use std::collections::BTreeMap;

use super::names::backend;
use super::render::{backend_blocks, record_line, render, same_skeleton, HaproxyConfig};
use crate::drivers::reload::{config_token, sha256};
use crate::drivers::route::RouteSpec;

/// Whether `batch` keeps the structure of `recorded`: each of its routes
/// is there already and, rendered alone, has the same skeleton. It looks
/// at the routes only, not at the file, so a switch asks it before it
/// moves traffic and splices the file after.
pub(super) fn fits(recorded: &BTreeMap<String, RouteSpec>, batch: &[RouteSpec], cfg: &HaproxyConfig) -> bool {
    let alone = |r: &RouteSpec| render(&BTreeMap::from([(r.service.clone(), r.clone())]), cfg, "");
    batch.iter().all(|r| {
        recorded
            .get(&r.service)
            .is_some_and(|old| same_skeleton(&alone(old), &alone(r)))
    })
}

/// `text` (teal's own render of routes that `batch` [`fits`]) with the
/// routes of `batch` in place of their records, or None when one of them
/// is not found in it (then only a full render will do).
pub(super) fn splice(text: &str, batch: &[RouteSpec]) -> Option<String> {
    let mut edits = vec![];
    for r in batch {
        edits.push(record(text, r)?);
        edits.push(backends(text, r)?);
    }
    edits.sort_by_key(|e| e.0);
    // Each range is one route's own; ranges that overlap (the same route
    // twice in a batch) are left to the full render.
    if edits.windows(2).any(|w| w[0].1 > w[1].0) {
        return None;
    }
    let (header, _) = text.split_once('\n')?;
    let (kept, _) = header.rsplit_once("sha256=")?;
    let mut out = String::with_capacity(text.len() + 1024);
    out.push_str(kept);
    out.push_str("sha256=");
    let hash_at = out.len();
    out.push_str(&"0".repeat(64));
    out.push('\n');
    let body_at = out.len();
    let mut at = header.len() + 1;
    for (start, end, with) in edits {
        out.push_str(&text[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&text[at..]);
    let hash = sha256(&out[body_at..]);
    out.replace_range(hash_at..hash_at + hash.len(), &hash);
    Some(out)
}

/// The whole file rendered again for `routes`, when it has the skeleton of
/// `text`; None when only a reload can make it serve.
pub(super) fn rendered_alike(text: &str, routes: &BTreeMap<String, RouteSpec>, cfg: &HaproxyConfig) -> Option<String> {
    let full = render(routes, cfg, &config_token());
    same_skeleton(text, &full).then_some(full)
}

/// The range of `r`'s record line in `text`, and the line that replaces it.
fn record(text: &str, r: &RouteSpec) -> Option<(usize, usize, String)> {
    let mut line = record_line(r);
    let (key, _) = line.split_once(',')?;
    let start = text.find(&format!("\n{key},"))? + 1;
    let end = start + text[start..].find('\n')? + 1;
    line.push('\n');
    Some((start, end, line))
}

/// The range of `r`'s backend sections in `text` (contiguous, in render
/// order), and those sections rendered again.
fn backends(text: &str, r: &RouteSpec) -> Option<(usize, usize, String)> {
    let start = text.find(&format!("\nbackend {}\n", backend(&r.service)))? + 1;
    let mut block = String::new();
    let sections = backend_blocks(&mut block, r);
    let mut end = start;
    for _ in 0..sections {
        end = match text[end + 1..].find("\nbackend ") {
            Some(i) => end + 1 + i + 1,
            None => text.len(),
        };
    }
    Some((start, end, block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::route::{Backend, PreviewRoute};
    use crate::spec::{Color, PerColor, Traffic};

    fn cfg() -> HaproxyConfig {
        crate::drivers::haproxy::render::tests::config()
    }

    fn route(service: &str, blue: &[&str], green: &[&str], on_green: u32) -> RouteSpec {
        let addrs = |a: &[&str]| a.iter().map(|a| a.parse().unwrap()).collect();
        RouteSpec {
            service: service.into(),
            host: format!("{service}.test"),
            aliases: vec![],
            tls: None,
            path: "/".into(),
            backends: PerColor {
                blue: Backend {
                    weight: 100 - on_green,
                    addrs: addrs(blue),
                },
                green: Backend {
                    weight: on_green,
                    addrs: addrs(green),
                },
            },
            preview: None,
            commit: "c1".into(),
            traffic: Traffic::default(),
            next: None,
            route_hash: "h".into(),
        }
    }

    fn routes(rs: Vec<RouteSpec>) -> BTreeMap<String, RouteSpec> {
        rs.into_iter().map(|r| (r.service.clone(), r)).collect()
    }

    #[test]
    fn a_switch_spliced_in_is_the_file_a_full_render_gives() {
        let mut web = route("web", &["10.0.0.1:80"], &["10.0.0.2:80"], 0);
        web.preview = Some(PreviewRoute {
            host: "next.web.test".into(),
            allow: vec![],
            color: Color::Green,
        });
        web.traffic.sticky = true;
        let before = routes(vec![
            route("api", &["10.0.1.1:80", "10.0.1.2:80"], &[], 0),
            web.clone(),
            route("zz", &["10.0.2.1:80"], &[], 0),
        ]);
        let text = render(&before, &cfg(), "t1");
        // Traffic moves to green with a new commit; addresses change, the
        // slot count does not.
        let mut moved = web.clone();
        moved.backends.green.weight = 100;
        moved.backends.blue.weight = 0;
        moved.backends.green.addrs = vec!["10.0.0.9:80".parse().unwrap(), "10.0.0.2:80".parse().unwrap()];
        moved.commit = "c2".into();
        let mut api = before["api"].clone();
        api.backends.blue.addrs.pop();
        let after = routes(vec![api.clone(), moved.clone(), before["zz"].clone()]);
        assert!(
            fits(&before, &[moved.clone(), api.clone()], &cfg()),
            "the structure is kept"
        );
        let spliced = splice(&text, &[moved, api]).expect("both routes are in the file");
        assert_eq!(spliced, render(&after, &cfg(), "t1"));
    }

    #[test]
    fn a_new_route_or_a_change_of_structure_does_not_fit() {
        let before = routes(vec![route("web", &["10.0.0.1:80"], &[], 0)]);
        let text = render(&before, &cfg(), "t1");
        let new = route("api", &["10.0.1.1:80"], &[], 0);
        assert!(!fits(&before, std::slice::from_ref(&new), &cfg()));
        assert_eq!(splice(&text, &[new]), None, "not in the file");
        // Five replicas need eight slots: a reload.
        let five: Vec<String> = (1..=5).map(|i| format!("10.0.0.{i}:80")).collect();
        let five: Vec<&str> = five.iter().map(String::as_str).collect();
        let grown = route("web", &five, &[], 0);
        assert!(!fits(&before, &[grown], &cfg()));
        let mut moved = before["web"].clone();
        moved.path = "/shop".into();
        assert!(!fits(&before, &[moved], &cfg()));
    }
}
