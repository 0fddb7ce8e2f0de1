//! A compose `healthcheck` as teal's health: `curl -f` or `wget` of a
//! URL on localhost at the service port becomes an HTTP check, any other
//! test an exec check in the container; interval and timeout carry over,
//! start_period and retries become the deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{Healthcheck, Scalar, Service, Words};
use super::words::split_words;
use super::Note;
use crate::spec::file::{DurationStr, HealthFile, HttpProbeFile, TcpProbeFile};
use crate::spec::{defaults, duration};

pub fn health_of(
    s: &Service,
    port: u16,
    n: &mut Note,
    comments: &mut BTreeMap<&'static str, Vec<String>>,
) -> HealthFile {
    let hc = s.healthcheck.clone().unwrap_or_default();
    let disabled = hc.disable.as_ref().and_then(Scalar::bool) == Some(true);
    let test = if disabled { None } else { test_of(&hc) };
    let mut h = HealthFile::default();
    match test {
        None => {
            n.todo(
                "healthcheck",
                "none in compose: a TCP connect to the port gates the switch; an HTTP path that checks the app is better",
            );
            comments.insert(
                "health",
                vec!["A placeholder: compose declared no healthcheck. Prefer http: {path: /healthz}.".into()],
            );
            h.tcp = Some(TcpProbeFile {});
            return h;
        }
        Some(Test::Argv(argv)) => match http_of(&argv, port) {
            Some(path) => {
                h.http = Some(HttpProbeFile {
                    path: Some(path),
                    ..Default::default()
                })
            }
            None => h.exec = Some(argv),
        },
        Some(Test::Shell(line)) => {
            let first = line.split("||").next().unwrap_or(&line);
            match split_words(first).ok().and_then(|w| http_of(&w, port)) {
                Some(path) => {
                    h.http = Some(HttpProbeFile {
                        path: Some(path),
                        ..Default::default()
                    })
                }
                None => h.exec = Some(vec!["/bin/sh".into(), "-c".into(), line]),
            }
        }
    }
    let interval = dur(&hc.interval, "healthcheck.interval", n);
    let timeout = dur(&hc.timeout, "healthcheck.timeout", n);
    h.interval = interval.map(|d| DurationStr(duration::format(d)));
    h.timeout = timeout.map(|d| DurationStr(duration::format(d)));
    let start = dur(&hc.start_period, "healthcheck.start_period", n).unwrap_or_default();
    let retries = hc.retries.as_ref().and_then(Scalar::int).unwrap_or(3).clamp(0, 1000) as u32;
    let deadline = start + interval.unwrap_or(Duration::from_secs(30)) * retries;
    if deadline > defaults::DEADLINE {
        h.deadline = Some(DurationStr(duration::format(deadline)));
    }
    if hc.start_interval.is_some() {
        n.left_out("healthcheck.start_interval", "teal probes at one interval");
    }
    h
}

enum Test {
    Argv(Vec<String>),
    Shell(String),
}

fn test_of(hc: &Healthcheck) -> Option<Test> {
    match hc.test.as_ref()? {
        Words::One(s) if s.trim().is_empty() => None,
        Words::One(s) => Some(Test::Shell(s.clone())),
        Words::List(l) => {
            let words: Vec<String> = l.iter().map(Scalar::text).collect();
            match words.split_first() {
                Some((first, rest)) if first == "CMD" && !rest.is_empty() => Some(Test::Argv(rest.to_vec())),
                Some((first, rest)) if first == "CMD-SHELL" && !rest.is_empty() => Some(Test::Shell(rest.join(" "))),
                _ => None,
            }
        }
    }
}

/// The path of `curl -f URL` / `wget ... URL` when URL is on localhost at
/// `port` and its path is one teal's proxies accept.
fn http_of(argv: &[String], port: u16) -> Option<String> {
    let prog = argv.first()?.rsplit('/').next()?;
    let args = &argv[1..];
    let fails_on_error = match prog {
        "curl" => args
            .iter()
            .any(|a| a == "--fail" || (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))),
        "wget" => true,
        _ => return None,
    };
    let urls: Vec<&String> = args.iter().filter(|a| a.starts_with("http://")).collect();
    let [url] = urls.as_slice() else { return None };
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let (host, url_port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse::<u16>().ok()?),
        _ => (authority, 80),
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]");
    (fails_on_error && local && url_port == port && crate::spec::validate::is_url_path(&path)).then_some(path)
}

fn dur(v: &Option<String>, key: &str, n: &mut Note) -> Option<Duration> {
    let s = v.as_ref()?;
    match duration::parse(s) {
        Ok(d) => Some(d),
        Err(e) => {
            n.left_out(key, e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn http_checks_are_recognised_only_when_they_mean_the_same() {
        assert_eq!(
            http_of(&w("curl -f http://localhost:8080/healthz"), 8080),
            Some("/healthz".into())
        );
        assert_eq!(http_of(&w("curl -fsS http://127.0.0.1:8080/"), 8080), Some("/".into()));
        assert_eq!(
            http_of(&w("/usr/bin/wget -q --spider http://localhost/up"), 80),
            Some("/up".into())
        );
        // Without -f curl passes on a 500; another host or port is another check.
        assert_eq!(http_of(&w("curl http://localhost:8080/healthz"), 8080), None);
        assert_eq!(http_of(&w("curl -f http://localhost:9000/healthz"), 8080), None);
        assert_eq!(http_of(&w("curl -f http://db:8080/"), 8080), None);
        assert_eq!(http_of(&w("curl -f http://localhost:8080/a?b=1"), 8080), None);
        assert_eq!(http_of(&w("pg_isready"), 8080), None);
    }
}
