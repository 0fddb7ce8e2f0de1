//! Traffic for people in HAProxy: stickiness, testers and maintenance.
//! The frontend first names the route a request takes (`txn.teal_svc`,
//! longest path first), so every rule below applies to exactly one route.
//! What changes during a rollout lives in maps the runtime API sets, like
//! server weights: the canary's share for sticky clients (`weights.map`),
//! the color testers reach (`next.map`) and maintenance pages
//! (`maint.map`, `retry.map`); held requests (`pause`) have their own
//! module. Only adding or removing a sticky or tester
//! rule changes the config's structure.
//!
//! Sticky: a client carries a bucket 0-99 in the cookie `teal_<service>`
//! (drawn at random on its first request); buckets below the green share
//! go to green, the others to blue, so a growing share moves only the
//! buckets it adds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::names::backend;
use super::tls::TlsFiles;
use super::Haproxy;
use crate::drivers::reload::{persist, read_opt, write_atomic};
use crate::drivers::route::{Backend, ProxyError, RouteSpec};
use crate::spec::{Color, Match, Traffic};

impl TlsFiles {
    /// service -> percent on green, for sticky routes.
    pub fn weights_map(&self) -> PathBuf {
        self.dir.join("weights.map")
    }
    /// service -> the color testers reach (`none` outside a rollout).
    pub fn next_map(&self) -> PathBuf {
        self.dir.join("next.map")
    }
    /// service -> maintenance message, `-` when serving.
    pub fn maint_map(&self) -> PathBuf {
        self.dir.join("maint.map")
    }
    /// service -> `Retry-After` seconds of its maintenance page.
    pub fn retry_map(&self) -> PathBuf {
        self.dir.join("retry.map")
    }
}

impl Haproxy {
    /// Writes the maps the frontend's traffic rules read, as `routes`
    /// set them: before HAProxy (re)loads a config naming them.
    pub fn write_maps(&self, routes: &BTreeMap<String, RouteSpec>) -> Result<(), ProxyError> {
        let dir = &self.config.tls.dir;
        std::fs::create_dir_all(dir).map_err(|source| ProxyError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        for (path, text) in map_files(routes.values(), &self.config.tls) {
            write_atomic(&path, &text)?;
        }
        Ok(())
    }

    /// Records the maps a switch set through the runtime API, so that a
    /// restarted HAProxy loads them: only those whose text changed (most
    /// switches change none).
    pub(super) async fn record_maps(&self, routes: &BTreeMap<String, RouteSpec>) -> Result<(), ProxyError> {
        for (path, text) in map_files(routes.values(), &self.config.tls) {
            if read_opt(&path)?.as_deref() != Some(text.as_str()) {
                persist(&path, text).await?;
            }
        }
        Ok(())
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Whether a route sends requests by color rules, not by server weights.
fn by_color(r: &RouteSpec) -> bool {
    r.traffic.sticky || r.traffic.testers.is_some()
}

/// Per-color backends of a route with color rules: `teal_<svc>_blue` and
/// `teal_<svc>_green`, each serving every replica of its color.
pub(super) fn color_backends(r: &RouteSpec) -> Vec<(String, [Backend; 2])> {
    if !by_color(r) {
        return vec![];
    }
    Color::ALL
        .iter()
        .map(|c| {
            let serve = |k: Color| Backend {
                weight: if k == *c { 100 } else { 0 },
                addrs: r.backends.get(k).addrs.clone(),
            };
            (
                format!("{}_{c}", backend(&r.service)),
                [serve(Color::Blue), serve(Color::Green)],
            )
        })
        .collect()
}

fn is(service: &str) -> String {
    format!("{{ var(txn.teal_svc) -m str {service} }}")
}

fn tester(m: &Match) -> String {
    match m {
        Match::Header { name, value } => format!("{{ req.hdr({name}) -m str {value} }}"),
        Match::Cookie { name, value } => format!("{{ req.cook({name}) -m str {value} }}"),
    }
}

/// The frontend rules, after the host is known and before the routes'
/// `use_backend` lines. `by_path` is longest path first.
pub(super) fn frontend(by_path: &[&RouteSpec], files: &TlsFiles) -> String {
    let mut b = String::new();
    for r in by_path {
        let _ = writeln!(
            b,
            "    http-request set-var(txn.teal_svc) str({}) if {{ var(txn.host) -m str {} }} {{ path_beg {} }} !{{ var(txn.teal_svc) -m found }}",
            r.service,
            r.hosts().collect::<Vec<_>>().join(" "),
            r.path
        );
    }
    let (maint, retry) = (p(&files.maint_map()), p(&files.retry_map()));
    let _ = writeln!(
        b,
        "    http-request return status 503 content-type \"text/html; charset=utf-8\" lf-string \"<!doctype html><meta charset=utf-8><title>Down for maintenance</title><p>%[var(txn.teal_svc),map({maint})]</p>\" hdr Retry-After \"%[var(txn.teal_svc),map({retry})]\" hdr Cache-Control no-store if {{ var(txn.teal_svc) -m found }} !{{ var(txn.teal_svc),map({maint},-) -m str -- - }}"
    );
    b.push_str(&super::pause::frontend(by_path, files));
    let weights = p(&files.weights_map());
    let next = p(&files.next_map());
    for r in by_path.iter().filter(|r| r.traffic.sticky) {
        let (s, cookie) = (&r.service, Traffic::cookie(&r.service));
        let _ = writeln!(
            b,
            "    http-request set-var(txn.teal_b) req.cook({cookie}) if {} {{ req.cook({cookie}) -m reg ^[0-9][0-9]?$ }}\n    http-request set-var(txn.teal_new) bool(true) if {} !{{ var(txn.teal_b) -m found }}\n    http-request set-var(txn.teal_b) rand(100) if {} !{{ var(txn.teal_b) -m found }}\n    http-request set-var(txn.teal_g) str({s}),map_str_int({weights},0) if {}\n    http-request set-var(txn.teal_d) var(txn.teal_b),sub(txn.teal_g) if {}",
            is(s),
            is(s),
            is(s),
            is(s),
            is(s)
        );
        let _ = writeln!(
            b,
            "    http-response add-header Set-Cookie \"{cookie}=%[var(txn.teal_b)]; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax\" if {} {{ var(txn.teal_new) -m found }}",
            is(s)
        );
    }
    for r in by_path.iter().filter(|r| by_color(r)) {
        let (s, be) = (&r.service, backend(&r.service));
        if let Some(m) = &r.traffic.testers {
            for c in Color::ALL {
                let _ = writeln!(
                    b,
                    "    use_backend {be}_{c} if {} {} {{ str({s}),map({next},none) -m str {c} }}",
                    is(s),
                    tester(m)
                );
            }
        }
        if r.traffic.sticky {
            let _ = writeln!(
                b,
                "    use_backend {be}_green if {} {{ var(txn.teal_d) -m int lt 0 }}\n    use_backend {be}_blue if {}",
                is(s),
                is(s)
            );
        }
    }
    b
}

/// The value of each map for one route.
fn values(r: &RouteSpec) -> [(&'static str, Option<String>); 4] {
    let m = r.traffic.maintenance.as_ref();
    [
        ("weights", r.traffic.sticky.then(|| r.backends.green.weight.to_string())),
        (
            "next",
            r.traffic
                .testers
                .as_ref()
                .map(|_| r.next.map_or("none", |c| c.as_str()).to_string()),
        ),
        ("maint", Some(m.map_or("-".to_string(), |m| m.message.clone()))),
        ("retry", Some(m.map_or(0, |m| m.retry_after).to_string())),
    ]
}

/// Whether two versions of a route set the same map entries.
pub(super) fn same_maps(a: &RouteSpec, b: &RouteSpec) -> bool {
    values(a) == values(b)
}

fn map_path(files: &TlsFiles, which: &str) -> PathBuf {
    match which {
        "weights" => files.weights_map(),
        "next" => files.next_map(),
        "maint" => files.maint_map(),
        _ => files.retry_map(),
    }
}

/// The four map files for `routes`, as HAProxy loads them at a reload.
pub(super) fn map_files<'a>(routes: impl Iterator<Item = &'a RouteSpec>, files: &TlsFiles) -> Vec<(PathBuf, String)> {
    let mut texts: [(&str, String); 4] = [
        ("weights", String::new()),
        ("next", String::new()),
        ("maint", String::new()),
        ("retry", String::new()),
    ];
    for r in routes {
        for ((_, text), (_, v)) in texts.iter_mut().zip(values(r)) {
            if let Some(v) = v {
                let _ = writeln!(text, "{} {v}", r.service);
            }
        }
    }
    texts
        .into_iter()
        .map(|(which, text)| (map_path(files, which), text))
        .collect()
}

/// Runtime commands that set a route's map entries (each exists since the
/// reload that added the route). Spaces of a message are escaped: the
/// runtime API splits a command's words at unescaped spaces.
pub(super) fn map_commands(r: &RouteSpec, files: &TlsFiles) -> Vec<String> {
    values(r)
        .into_iter()
        .filter_map(|(which, v)| {
            let v = v?.replace(' ', "\\ ");
            Some(format!("set map {} {} {v}", p(&map_path(files, which)), r.service))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Maintenance;

    fn route(traffic: Traffic) -> RouteSpec {
        let mut backends = crate::spec::PerColor::<Backend>::default();
        backends.blue.weight = 80;
        backends.green.weight = 20;
        backends.green.addrs = vec!["10.0.0.2:80".parse().unwrap()];
        RouteSpec {
            service: "web".into(),
            host: "shop.test".into(),
            aliases: vec![],
            path: "/".into(),
            tls: None,
            backends,
            preview: None,
            traffic,
            next: Some(Color::Green),
            commit: "c".into(),
            route_hash: "h".into(),
        }
    }

    #[test]
    fn plain_routes_get_only_the_route_name_and_the_maintenance_rule() {
        let files = TlsFiles { dir: "/s".into() };
        let r = route(Traffic::default());
        let text = frontend(&[&r], &files);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(color_backends(&r).is_empty());
        assert_eq!(
            map_commands(&r, &files),
            ["set map /s/maint.map web -", "set map /s/retry.map web 0"]
        );
    }

    #[test]
    fn sticky_testers_and_maintenance_render_into_rules_and_maps() {
        let files = TlsFiles { dir: "/s".into() };
        let r = route(Traffic {
            sticky: true,
            testers: Some(Match::Header {
                name: "X-Canary".into(),
                value: "1".into(),
            }),
            maintenance: Some(Maintenance {
                message: "Back at 14:00".into(),
                retry_after: 600,
            }),
            pause: None,
        });
        let text = frontend(&[&r], &files);
        assert!(text.contains("http-request set-var(txn.teal_b) rand(100) if { var(txn.teal_svc) -m str web } !{ var(txn.teal_b) -m found }"), "{text}");
        assert!(text.contains("use_backend teal_web_green if { var(txn.teal_svc) -m str web } { req.hdr(X-Canary) -m str 1 } { str(web),map(/s/next.map,none) -m str green }"), "{text}");
        // Testers first, then the buckets.
        let testers = text.find("req.hdr(X-Canary)").unwrap();
        let buckets = text.find("-m int lt 0").unwrap();
        assert!(testers < buckets, "{text}");
        assert_eq!(
            map_commands(&r, &files),
            [
                "set map /s/weights.map web 20",
                "set map /s/next.map web green",
                "set map /s/maint.map web Back\\ at\\ 14:00",
                "set map /s/retry.map web 600"
            ]
        );
        let maps = map_files([&r].into_iter(), &files);
        assert_eq!(maps[2], ("/s/maint.map".into(), "web Back at 14:00\n".into()));
        assert_eq!(color_backends(&r)[1].0, "teal_web_green");
        assert_eq!(color_backends(&r)[1].1[1].weight, 100);
    }
}
