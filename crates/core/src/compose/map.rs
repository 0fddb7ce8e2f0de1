//! One compose service to one teal service file, and the notes on what
//! did not carry over and why. Pure: env files arrive already read.

use std::collections::BTreeMap;

use super::load::Loaded;
use super::map_env::{env_of, EnvOut};
use super::map_keys::{left_out_keys, port_of, volumes_of};
use super::model::{Scalar, Words};
pub use super::words::{split_words, Context};
use super::{map_health, map_route, Note, Notes};
use crate::spec::file::{ColorFile, ServiceFile};
use crate::spec::{Color, RestartPolicy};

/// A service file made from a compose service.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// teal's name (the file stem): the compose name made fit.
    pub name: String,
    pub compose_name: String,
    /// The compose files that declare the service.
    pub files: Vec<String>,
    pub file: ServiceFile,
    /// Comment lines to put above a top-level key of the written file.
    pub comments: BTreeMap<&'static str, Vec<String>>,
}

/// What became of one compose service.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Imported(Box<Imported>),
    /// Not imported (left to compose), and why.
    Skipped(String),
}

/// Images of databases and other stateful services: two colors of them
/// would be two servers on one data directory.
const STATEFUL: &[&str] = &[
    "postgres",
    "postgis",
    "mysql",
    "mariadb",
    "mongo",
    "redis",
    "valkey",
    "keydb",
    "memcached",
    "rabbitmq",
    "elasticsearch",
    "opensearch",
    "zookeeper",
    "kafka",
    "cassandra",
    "couchdb",
    "influxdb",
    "clickhouse",
    "minio",
    "etcd",
    "consul",
    "nats",
    "timescaledb",
    "neo4j",
    "mssql",
    "mongodb",
];

/// Maps `compose_name`'s service; notes go to `notes`.
pub fn map_service(compose_name: &str, loaded: &Loaded, cx: &Context<'_>, notes: &mut Notes) -> Outcome {
    let s = &loaded.service;
    let name = teal_name(compose_name);
    let mut n = Note::default();
    if name != compose_name {
        n.info(
            "",
            format!("renamed from {compose_name:?}: teal names are a-z, 0-9 and '-'"),
        );
    }
    let Some(image) = s.image.clone() else {
        let why = "no image: teal deploys images; build and push it in CI, then import with `image:` set";
        notes.extend(n, compose_name);
        return Outcome::Skipped(why.into());
    };
    if let Some(kind) = proxy(&image) {
        notes.extend(n, compose_name);
        return Outcome::Skipped(format!(
            "a {kind} image: a reverse proxy; teal's own proxy takes its place (routes come from the labels of the services behind it)"
        ));
    }
    if let Some(kind) = stateful(&image) {
        notes.extend(n, compose_name);
        return Outcome::Skipped(format!(
            "a {kind} image: a database or other stateful service stays in compose (two colors would be two servers on one data directory)"
        ));
    }
    let route = map_route::route_of(s);
    let EnvOut {
        env,
        from_files,
        port_hint,
    } = env_of(&name, s, cx, &route.consumed_env, &mut n);
    let Some(port) = route.port.or(port_hint).or_else(|| port_of(s, &mut n)) else {
        notes.extend(n, compose_name);
        return Outcome::Skipped(
            "no port (ports, expose or a proxy label's port): teal routes to the port the app listens on; add `expose: [PORT]`, or leave a worker in compose"
                .into(),
        );
    };
    let mut comments = BTreeMap::new();
    let mut file = ServiceFile {
        active: Some(Color::Blue),
        blue: Some(ColorFile { image: Some(image) }),
        port: Some(i64::from(port)),
        env,
        env_from_files: from_files,
        command: command_of(s, &mut n),
        volumes: volumes_of(s, cx.base_dir, &mut n),
        labels: labels_of(s, &route.consumed_labels, &mut n),
        replicas: replicas_of(s, &mut n),
        restart: restart_of(s, &mut n),
        ..Default::default()
    };
    if !file.env_from_files.is_empty() {
        comments.insert(
            "env_from_files",
            vec!["Secrets: see the notes of `teal import compose`; each file holds one value.".into()],
        );
    }
    file.health = Some(map_health::health_of(s, port, &mut n, &mut comments));
    file.route = Some(map_route::route_file(&name, &route, &mut n, &mut comments));
    left_out_keys(s, &mut n);
    notes.extend(n, compose_name);
    Outcome::Imported(Box::new(Imported {
        name,
        compose_name: compose_name.into(),
        files: loaded.files.clone(),
        file,
        comments,
    }))
}

/// A compose name as a teal service name: lowercase, `_` and `.` as `-`.
pub fn teal_name(compose: &str) -> String {
    let s: String = compose
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    s.trim_matches('-').chars().take(63).collect()
}

/// Reverse proxies a compose stack puts in front of its services.
const PROXIES: &[&str] = &[
    "traefik",
    "caddy",
    "nginx-proxy",
    "acme-companion",
    "docker-gen",
    "caddy-docker-proxy",
];

fn stateful(image: &str) -> Option<&'static str> {
    STATEFUL.iter().copied().find(|s| *s == image_name(image))
}

fn proxy(image: &str) -> Option<&'static str> {
    PROXIES.iter().copied().find(|s| *s == image_name(image))
}

/// `registry/team/postgres:16@sha256:...` gives `postgres`.
fn image_name(image: &str) -> &str {
    let repo = image.split('@').next().unwrap_or(image);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    last.split(':').next().unwrap_or(last)
}

fn command_of(s: &super::model::Service, n: &mut Note) -> Option<Vec<String>> {
    if s.entrypoint.is_some() {
        n.left_out(
            "entrypoint",
            "teal sets the command, not the entrypoint: bake the entrypoint into the image",
        );
    }
    match s.command.as_ref()? {
        Words::List(l) => Some(l.iter().map(Scalar::text).collect()),
        Words::One(line) => match split_words(line) {
            Ok(w) if !w.is_empty() => Some(w),
            Ok(_) => None,
            Err(e) => {
                n.left_out("command", format!("{e}: write it as a list"));
                None
            }
        },
    }
    .filter(|w: &Vec<String>| !w.is_empty())
}

fn labels_of(s: &super::model::Service, consumed: &[String], n: &mut Note) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in &s.labels {
        if consumed.contains(k) {
            continue;
        }
        if k.starts_with("teal.") {
            n.left_out(&format!("labels.{k}"), "keys starting with \"teal.\" are teal's own");
            continue;
        }
        out.insert(k.clone(), v.as_ref().map(Scalar::text).unwrap_or_default());
    }
    out
}

fn replicas_of(s: &super::model::Service, n: &mut Note) -> Option<i64> {
    let (key, v) = match (s.deploy.as_ref().and_then(|d| d.replicas.as_ref()), s.scale.as_ref()) {
        (Some(r), _) => ("deploy.replicas", r),
        (None, Some(r)) => ("scale", r),
        (None, None) => return None,
    };
    match v.int() {
        Some(1) => None,
        Some(r) if (1..=64).contains(&r) => Some(r),
        _ => {
            n.left_out(key, format!("{}: teal runs 1-64 replicas per color", v.text()));
            None
        }
    }
}

fn restart_of(s: &super::model::Service, n: &mut Note) -> Option<RestartPolicy> {
    let (key, word) = match (&s.restart, s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref())) {
        (Some(r), _) => ("restart", r.clone()),
        (None, Some(p)) => (
            "deploy.restart_policy",
            match p.condition.as_deref() {
                Some("none") => "no".into(),
                Some("on-failure") => "on-failure".into(),
                _ => "always".into(),
            },
        ),
        (None, None) => {
            n.info("restart", "compose's default is no restart; teal's is unless-stopped");
            return None;
        }
    };
    let (base, retries) = word
        .split_once(':')
        .map_or((word.as_str(), None), |(a, b)| (a, Some(b)));
    if let Some(r) = retries {
        n.left_out(
            key,
            format!("the retry count {r}: teal's on-failure restarts without a limit"),
        );
    }
    match base {
        "no" => Some(RestartPolicy::No),
        "always" => Some(RestartPolicy::Always),
        "on-failure" => Some(RestartPolicy::OnFailure),
        "unless-stopped" => None,
        other => {
            n.left_out(
                key,
                format!("{other:?} is no restart policy (no, always, on-failure, unless-stopped)"),
            );
            None
        }
    }
}
