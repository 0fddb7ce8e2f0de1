//! The route from the labels of the proxy a compose stack used: traefik
//! (`traefik.http.routers.NAME.rule=Host(...) && PathPrefix(...)`, the
//! service's `loadbalancer.server.port`), caddy-docker-proxy (`caddy:
//! HOST`, `caddy.reverse_proxy: {{upstreams PORT}}`) or nginx-proxy
//! (`VIRTUAL_HOST`, `VIRTUAL_PATH`, `VIRTUAL_PORT`). Without one, a
//! placeholder host the user replaces.

use std::collections::BTreeMap;

use super::model::Service;
use super::words::text;
use super::Note;
use crate::spec::file::RouteFile;
use crate::spec::validate::{is_hostname, is_url_path};

/// What the proxy labels said.
#[derive(Debug, Default)]
pub struct Hints {
    pub hosts: Vec<String>,
    pub path: Option<String>,
    pub port: Option<u16>,
    /// Where the hosts came from, for the note.
    pub from: Option<String>,
    pub consumed_labels: Vec<String>,
    pub consumed_env: Vec<String>,
    /// Words that did not parse: (key, why).
    pub problems: Vec<(String, String)>,
}

pub fn route_of(s: &Service) -> Hints {
    let mut h = Hints::default();
    let labels: BTreeMap<&str, String> = s.labels.iter().map(|(k, v)| (k.as_str(), text(v))).collect();
    for (k, v) in &labels {
        if k.starts_with("traefik.") || *k == "caddy" || k.starts_with("caddy.") || k.starts_with("caddy_") {
            h.consumed_labels.push(k.to_string());
        }
        if k.starts_with("traefik.http.routers.") && k.ends_with(".rule") && h.hosts.is_empty() {
            traefik_rule(&mut h, k, v);
        }
        if k.starts_with("traefik.http.services.") && k.ends_with(".loadbalancer.server.port") {
            h.port = v.trim().parse().ok();
        }
        if (*k == "caddy" || k.starts_with("caddy_")) && h.hosts.is_empty() {
            h.hosts = v
                .split([',', ' '])
                .map(|w| w.trim().trim_start_matches("http://").trim_start_matches("https://"))
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            h.from = Some(format!("label {k}"));
        }
        if k.ends_with("reverse_proxy") && k.starts_with("caddy") {
            let inner = v.trim().trim_start_matches("{{").trim_end_matches("}}");
            if let Some(p) = inner.trim().strip_prefix("upstreams") {
                h.port = p.trim().parse().ok();
            }
        }
    }
    let env = |k: &str| s.environment.get(k).and_then(|v| v.as_ref()).map(|v| v.text());
    if let Some(v) = env("VIRTUAL_HOST") {
        h.consumed_env.push("VIRTUAL_HOST".into());
        if h.hosts.is_empty() {
            h.hosts = v
                .split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect();
            h.from = Some("environment.VIRTUAL_HOST (nginx-proxy)".into());
        }
    }
    if let Some(v) = env("VIRTUAL_PATH") {
        h.consumed_env.push("VIRTUAL_PATH".into());
        h.path = h.path.take().or(Some(v));
    }
    for k in ["LETSENCRYPT_HOST", "LETSENCRYPT_EMAIL"] {
        if env(k).is_some() {
            h.consumed_env.push(k.into());
            h.problems.push((
                format!("environment.{k}"),
                "HTTPS: set `route.tls: acme` and the host's acme: settings".into(),
            ));
        }
    }
    h
}

/// `Host(`a`, `b`) || Host(`c`) && PathPrefix(`/x`)`.
fn traefik_rule(h: &mut Hints, key: &str, rule: &str) {
    for (func, args) in calls(rule) {
        match func.as_str() {
            "Host" => h.hosts.extend(args),
            "PathPrefix" | "Path" if h.path.is_none() => h.path = args.into_iter().next(),
            other => h.problems.push((
                format!("labels.{key}"),
                format!("{other}(...) has no teal equivalent: the route matches host and path prefix"),
            )),
        }
    }
    h.from = Some(format!("label {key}"));
}

/// Each `Name(args)` of a traefik rule, with its quoted arguments.
fn calls(rule: &str) -> Vec<(String, Vec<String>)> {
    let mut out = vec![];
    let mut rest = rule;
    while let Some(open) = rest.find('(') {
        let name: String = rest[..open]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let Some(close) = rest[open..].find(')') else { break };
        let inner = &rest[open + 1..open + close];
        let args = inner
            .split(',')
            .map(|a| a.trim().trim_matches(|c| c == '`' || c == '"' || c == '\'').to_string())
            .filter(|a| !a.is_empty())
            .collect();
        out.push((name, args));
        rest = &rest[open + close + 1..];
    }
    out
}

/// The route of teal service `name` from `h`, or a placeholder.
pub fn route_file(
    name: &str,
    h: &Hints,
    n: &mut Note,
    comments: &mut BTreeMap<&'static str, Vec<String>>,
) -> RouteFile {
    for (k, why) in &h.problems {
        n.left_out(k, why.clone());
    }
    let mut hosts = vec![];
    for host in &h.hosts {
        let lower = host.to_ascii_lowercase();
        if is_hostname(&lower) && !hosts.contains(&lower) {
            hosts.push(lower);
        } else if !is_hostname(&lower) {
            n.left_out(
                "route",
                format!("{host:?} is not a host name teal routes (no wildcards or patterns)"),
            );
        }
    }
    let path = h.path.clone().filter(|p| {
        let ok = is_url_path(p);
        if !ok {
            n.left_out(
                "route",
                format!("path {p:?} is not a path prefix teal's proxies accept"),
            );
        }
        ok && p != "/"
    });
    if hosts.is_empty() {
        let host = format!("{name}.example.com");
        n.todo(
            "route",
            format!("no traefik, caddy or nginx-proxy label named a host: {host} is a placeholder, set the name clients use"),
        );
        comments.insert("route", vec!["A placeholder: set the host name clients use.".into()]);
        hosts.push(host);
    } else if let Some(from) = &h.from {
        n.info("route", format!("from {from}"));
    }
    let host = hosts.remove(0);
    RouteFile {
        host: Some(host),
        aliases: hosts,
        path,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traefik_rules() {
        assert_eq!(
            calls("Host(`a.example.com`) || Host(`b.example.com`, `c.example.com`) && PathPrefix(`/api`)"),
            [
                ("Host".to_string(), vec!["a.example.com".to_string()]),
                ("Host".into(), vec!["b.example.com".into(), "c.example.com".into()]),
                ("PathPrefix".into(), vec!["/api".into()])
            ]
        );
        let mut h = Hints::default();
        traefik_rule(
            &mut h,
            "traefik.http.routers.web.rule",
            "Host(`a.example.com`) && Headers(`X`, `y`)",
        );
        assert_eq!(h.hosts, ["a.example.com"]);
        assert_eq!(h.problems.len(), 1, "{:?}", h.problems);
    }
}
