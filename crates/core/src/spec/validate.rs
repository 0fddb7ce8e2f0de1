//! Semantic rules over one parsed service file, resolving repo-wide defaults
//! from `teal.yaml`. Every problem is collected, each pointing into the file
//! the offending value came from (a bad default points at `teal.yaml`).

use std::time::Duration;

use super::file::{RepoFile, ServiceFile};
use super::health_rules::{resolve_health, resolve_switch};
use super::locate::Locator;
pub use super::names::{check_image, is_hostname};
use super::{defaults, duration, Diagnostic, PerColor, Preview, Route, Service};

/// A parsed file with its locator, for located messages.
pub struct Source<'a> {
    pub path: &'a str,
    pub loc: &'a Locator,
}

/// Collects diagnostics against two sources: the service file and teal.yaml.
pub struct Ctx<'a> {
    pub svc: Source<'a>,
    pub repo: Source<'a>,
    pub diags: &'a mut Vec<Diagnostic>,
}

/// Which file a resolved value came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum From {
    Service,
    Repo,
}

impl Ctx<'_> {
    pub(super) fn err(&mut self, from: From, path: &[&str], msg: impl Into<String>) {
        let src = if from == From::Service { &self.svc } else { &self.repo };
        let (line, col) = src.loc.pos(path);
        self.diags.push(Diagnostic::new(src.path, line, col, msg));
    }
}

/// Checks one service file and resolves it with the repo defaults. Returns
/// `None` when it has errors (all of them pushed to `ctx.diags`).
pub fn resolve_service(
    ctx: &mut Ctx<'_>,
    name: &str,
    f: &ServiceFile,
    repo: &RepoFile,
    secrets: Option<&super::file::SecretsFile>,
) -> Option<Service> {
    let before = ctx.diags.len();
    check_name(ctx, name);
    let active = f.active;
    if active.is_none() {
        ctx.err(
            From::Service,
            &[],
            "missing required field \"active\": the color that serves traffic, blue or green",
        );
    }
    let images = PerColor {
        blue: color_image(ctx, f.blue.as_ref().and_then(|c| c.image.as_deref()), "blue"),
        green: color_image(ctx, f.green.as_ref().and_then(|c| c.image.as_deref()), "green"),
    };
    if let Some(a) = active {
        if images.get(a).is_none() {
            let declared = if a == super::Color::Blue {
                f.blue.is_some()
            } else {
                f.green.is_some()
            };
            let path: &[&str] = if declared { &[a.as_str()] } else { &["active"] };
            ctx.err(
                From::Service,
                path,
                format!("the active color {a} has no image: set {a}.image, or make the color that has one active"),
            );
        }
    }
    let port = match f.port {
        None => {
            ctx.err(
                From::Service,
                &[],
                "missing required field \"port\": the port the app listens on inside the container",
            );
            None
        }
        Some(p) if !(1..=65535).contains(&p) => {
            ctx.err(
                From::Service,
                &["port"],
                format!("port {p} is out of range: use 1-65535"),
            );
            None
        }
        Some(p) => Some(p as u16),
    };
    let replicas = match f.replicas {
        None => defaults::REPLICAS,
        Some(r) if !(1..=64).contains(&r) => {
            ctx.err(
                From::Service,
                &["replicas"],
                format!("replicas {r} is out of range: use 1-64"),
            );
            1
        }
        Some(r) => r as u32,
    };
    check_env(ctx, f);
    check_labels(ctx, f);
    check_volumes(ctx, f);
    if let Some(cmd) = &f.command {
        if cmd.is_empty() {
            ctx.err(
                From::Service,
                &["command"],
                "command is empty: remove it to use the image's command",
            );
        }
    }
    let network = f.network.clone().or_else(|| repo.network.clone());
    if let Some(n) = &network {
        check_network(ctx, n, if f.network.is_some() { From::Service } else { From::Repo });
    }
    let route = super::route::resolve_route(ctx, f);
    let preview = resolve_preview(ctx, f, route.as_ref());
    let health = resolve_health(ctx, f.health.as_ref(), repo.health.as_ref());
    let switch = resolve_switch(ctx, f.switch.as_ref(), repo.switch.as_ref());
    let strategy = super::strategy::resolve_strategy(ctx, f, active);
    let analysis = super::strategy::resolve_analysis(ctx, f);
    let repo_pause = repo.switch.as_ref().and_then(|s| s.pause.as_ref());
    let traffic = super::traffic::resolve_traffic(ctx, f, repo_pause);
    let promotion = super::promote::resolve_promotion(ctx, f);
    let secrets = super::secret::resolve_secrets(ctx, f, secrets, &super::secret::secrets_path(name));
    let release = f.release.as_ref().map(|r| super::release::resolve_release(ctx, r));
    if ctx.diags.len() > before {
        return None;
    }
    Some(Service {
        name: name.to_string(),
        file: ctx.svc.path.to_string(),
        active: active?,
        images,
        port: port?,
        replicas,
        env: f.env.clone(),
        command: f.command.clone(),
        volumes: f.volumes.clone(),
        labels: f.labels.clone(),
        restart: f.restart.unwrap_or_default(),
        pull: f.pull.unwrap_or_default(),
        digests: PerColor::default(),
        network,
        route: route?,
        preview,
        health: health?,
        switch: switch?,
        strategy: strategy?,
        analysis,
        traffic,
        promotion,
        placement: f.placement.clone().unwrap_or_default(),
        by_wave: f.rollout.as_ref().and_then(|r| r.by).is_some(),
        secrets,
        release: release.flatten(),
        secret_error: None,
        env_key: Default::default(),
    })
}

fn check_name(ctx: &mut Ctx<'_>, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        ctx.err(
            From::Service,
            &[],
            format!("invalid service name {name:?} (the file name): use 1-63 of a-z, 0-9 and '-', not starting or ending with '-'; it becomes part of container and file names"),
        );
    }
}

fn color_image(ctx: &mut Ctx<'_>, image: Option<&str>, color: &str) -> Option<String> {
    let image = image?;
    if let Err(why) = check_image(image) {
        ctx.err(
            From::Service,
            &[color, "image"],
            format!("invalid image reference {image:?}: {why}"),
        );
    }
    Some(image.to_string())
}

fn check_env(ctx: &mut Ctx<'_>, f: &ServiceFile) {
    for k in f.env.keys() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            ctx.err(
                From::Service,
                &["env", k],
                format!("invalid environment variable name {k:?}: it must be non-empty without '='"),
            );
        }
    }
}

fn check_labels(ctx: &mut Ctx<'_>, f: &ServiceFile) {
    for k in f.labels.keys() {
        if k.starts_with("teal.") {
            ctx.err(
                From::Service,
                &["labels", k],
                format!("label {k:?} is reserved: keys starting with \"teal.\" are set by teal"),
            );
        }
    }
}

fn check_volumes(ctx: &mut Ctx<'_>, f: &ServiceFile) {
    for (i, v) in f.volumes.iter().enumerate() {
        let parts: Vec<&str> = v.split(':').collect();
        let ok = match parts.as_slice() {
            [src, dst] | [src, dst, "ro" | "rw"] => !src.is_empty() && dst.starts_with('/'),
            _ => false,
        };
        if !ok {
            let idx = i.to_string();
            ctx.err(
                From::Service,
                &["volumes", &idx],
                format!("invalid volume {v:?}: use source:/absolute/target or source:/target:ro"),
            );
        }
    }
}

fn check_network(ctx: &mut Ctx<'_>, net: &str, from: From) {
    let ok =
        !net.is_empty() && net.len() <= 64 && net.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        ctx.err(
            from,
            &["network"],
            format!("invalid network name {net:?}: use letters, digits, '_', '.', '-'"),
        );
    }
}

/// A path prefix safe to put in proxy configs.
pub fn is_url_path(p: &str) -> bool {
    p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic() && !b"\"';{}#?\\`$".contains(&b))
}

fn resolve_preview(ctx: &mut Ctx<'_>, f: &ServiceFile, route: Option<&Route>) -> Option<Preview> {
    let p = f.preview.as_ref()?;
    let host = match p.host.as_deref() {
        None => {
            ctx.err(
                From::Service,
                &["preview"],
                "preview needs a host, e.g. host: preview.shop.example.com",
            );
            return None;
        }
        Some(h) if !is_hostname(h) => {
            ctx.err(
                From::Service,
                &["preview", "host"],
                format!("invalid preview host {h:?}: use a DNS name"),
            );
            return None;
        }
        Some(h) => h.to_ascii_lowercase(),
    };
    if route.is_some_and(|r| r.hosts().any(|h| h == host)) {
        ctx.err(
            From::Service,
            &["preview", "host"],
            format!("preview host {host:?} is the route host: the preview needs its own host name"),
        );
    }
    let mut allow = Vec::new();
    for (i, cidr) in p.allow.iter().enumerate() {
        match cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(n) => allow.push(n),
            Err(_) => {
                let idx = i.to_string();
                ctx.err(
                    From::Service,
                    &["preview", "allow", &idx],
                    format!("invalid CIDR {cidr:?}: use e.g. 10.0.0.0/8 or 192.168.1.7/32"),
                );
            }
        }
    }
    Some(Preview { host, allow })
}

/// A value taken from the service file, else teal.yaml, with its origin.
pub(super) fn pick<'v, T>(svc: Option<&'v T>, repo: Option<&'v T>) -> Option<(&'v T, From)> {
    svc.map(|v| (v, From::Service)).or(repo.map(|v| (v, From::Repo)))
}

pub(super) fn duration_field(
    ctx: &mut Ctx<'_>,
    svc: Option<&super::file::DurationStr>,
    repo: Option<&super::file::DurationStr>,
    path: &[&str],
    default: Duration,
) -> Option<(Duration, From)> {
    match pick(svc, repo) {
        None => Some((default, From::Service)),
        Some((d, from)) => match duration::parse(&d.0) {
            Ok(v) => Some((v, from)),
            Err(e) => {
                ctx.err(from, path, format!("{e}; write e.g. 500ms, 2s or 1m"));
                None
            }
        },
    }
}
