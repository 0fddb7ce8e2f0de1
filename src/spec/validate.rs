//! Semantic rules over one parsed service file, resolving repo-wide defaults
//! from `teal.yaml`. Every problem is collected, each pointing into the file
//! the offending value came from (a bad default points at `teal.yaml`).

use std::time::Duration;

use super::file::{HealthFile, RepoFile, ServiceFile, SwitchFile};
use super::locate::Locator;
use super::{defaults, duration, Diagnostic, Health, PerColor, Preview, Probe, Route, Service, Switch};

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
pub fn resolve_service(ctx: &mut Ctx<'_>, name: &str, f: &ServiceFile, repo: &RepoFile) -> Option<Service> {
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
    let route = resolve_route(ctx, f);
    let preview = resolve_preview(ctx, f, route.as_ref());
    let health = resolve_health(ctx, f.health.as_ref(), repo.health.as_ref());
    let switch = resolve_switch(ctx, f.switch.as_ref(), repo.switch.as_ref());
    let strategy = super::strategy::resolve_strategy(ctx, f, active);
    let analysis = super::strategy::resolve_analysis(ctx, f);
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
        network,
        route: route?,
        preview,
        health: health?,
        switch: switch?,
        strategy: strategy?,
        analysis,
        placement: f.placement.clone().unwrap_or_default(),
        by_wave: f.rollout.as_ref().and_then(|r| r.by).is_some(),
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

/// Checks a Docker image reference: `[host[:port]/]path[:tag][@sha256:hex]`.
pub fn check_image(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").ok_or("the digest must start with sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err("a sha256 digest has 64 lowercase hex digits".into());
        }
    }
    // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let first_ok = t.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !first_ok || t.len() > 128 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
            return Err(format!(
                "tag {t:?} must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, ""));
        if !is_hostname(h) || (!port.is_empty() && port.parse::<u16>().is_err()) {
            return Err(format!("registry {host:?} is not a valid host[:port]"));
        }
    }
    for p in parts {
        if !is_path_component(p) {
            return Err(format!(
                "path component {p:?} must be lowercase a-z 0-9 separated by . _ __ or -"
            ));
        }
    }
    Ok(())
}

fn is_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// A DNS host name: dot-separated labels of a-z 0-9 '-', 1-63 each.
pub fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
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

fn resolve_route(ctx: &mut Ctx<'_>, f: &ServiceFile) -> Option<Route> {
    let Some(r) = &f.route else {
        ctx.err(
            From::Service,
            &[],
            "missing required field \"route\": the host (and optional path) the proxy sends to this service",
        );
        return None;
    };
    let host = match r.host.as_deref() {
        None => {
            ctx.err(
                From::Service,
                &["route"],
                "route needs a host, e.g. host: shop.example.com",
            );
            None
        }
        Some(h) if !is_hostname(h) => {
            ctx.err(
                From::Service,
                &["route", "host"],
                format!("invalid host {h:?}: use a DNS name such as shop.example.com"),
            );
            None
        }
        Some(h) => Some(h.to_ascii_lowercase()),
    };
    let path = r.path.clone().unwrap_or_else(|| defaults::ROUTE_PATH.into());
    if !is_url_path(&path) {
        ctx.err(
            From::Service,
            &["route", "path"],
            format!(
                "invalid path {path:?}: it must start with '/' and have no spaces, quotes, ';', '{{', '}}', '#' or '?'"
            ),
        );
        return None;
    }
    Some(Route { host: host?, path })
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
    if route.is_some_and(|r| r.host == host) {
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
fn pick<'v, T>(svc: Option<&'v T>, repo: Option<&'v T>) -> Option<(&'v T, From)> {
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

fn resolve_health(ctx: &mut Ctx<'_>, svc: Option<&HealthFile>, repo: Option<&HealthFile>) -> Option<Health> {
    let declares = |h: &HealthFile| h.http.is_some() as u8 + h.tcp.is_some() as u8 + h.exec.is_some() as u8;
    let (probe_src, from) = match (svc, repo) {
        (Some(s), _) if declares(s) > 0 => (Some(s), From::Service),
        (_, Some(r)) if declares(r) > 0 => (Some(r), From::Repo),
        _ => (None, From::Service),
    };
    let probe = match probe_src {
        None => {
            let path: &[&str] = if svc.is_some() { &["health"] } else { &[] };
            ctx.err(From::Service, path, "no health check declared: add health.http (e.g. {path: /healthz}), health.tcp: {} or health.exec: [cmd, args] here or in teal.yaml");
            None
        }
        Some(h) if declares(h) > 1 => {
            ctx.err(
                from,
                &["health"],
                "health declares more than one probe: keep exactly one of http, tcp, exec",
            );
            None
        }
        Some(h) => probe_of(ctx, h, from),
    };
    let g = |f: fn(&HealthFile) -> Option<&super::file::DurationStr>| (svc.and_then(f), repo.and_then(f));
    let (s, r) = g(|h| h.interval.as_ref());
    let interval = duration_field(ctx, s, r, &["health", "interval"], defaults::INTERVAL);
    let (s, r) = g(|h| h.timeout.as_ref());
    let timeout = duration_field(ctx, s, r, &["health", "timeout"], defaults::TIMEOUT);
    let (s, r) = g(|h| h.deadline.as_ref());
    let deadline = duration_field(ctx, s, r, &["health", "deadline"], defaults::DEADLINE);
    let successes = match pick(
        svc.and_then(|h| h.successes.as_ref()),
        repo.and_then(|h| h.successes.as_ref()),
    ) {
        None => Some(defaults::SUCCESSES),
        Some((&n, _)) if (1..=1000).contains(&n) => Some(n as u32),
        Some((n, from)) => {
            ctx.err(
                from,
                &["health", "successes"],
                format!("successes {n} is out of range: use 1-1000 consecutive passes"),
            );
            None
        }
    };
    let ((interval, fi), (timeout, ft), (deadline, fd)) = (interval?, timeout?, deadline?);
    let mut ok = true;
    if interval.is_zero() {
        ctx.err(fi, &["health", "interval"], "interval must be greater than 0");
        ok = false;
    }
    if timeout.is_zero() {
        ctx.err(ft, &["health", "timeout"], "timeout must be greater than 0");
        ok = false;
    }
    if ok && timeout >= deadline {
        let at = if fd == From::Service || ft == From::Repo {
            fd
        } else {
            ft
        };
        let path: &[&str] = if at == fd {
            &["health", "deadline"]
        } else {
            &["health", "timeout"]
        };
        ctx.err(
            at,
            path,
            format!(
                "timeout ({}) must be shorter than deadline ({})",
                duration::format(timeout),
                duration::format(deadline)
            ),
        );
        ok = false;
    }
    if ok && interval >= deadline {
        ctx.err(
            fi,
            &["health", "interval"],
            format!(
                "interval ({}) must be shorter than deadline ({})",
                duration::format(interval),
                duration::format(deadline)
            ),
        );
        ok = false;
    }
    let successes = successes?;
    if !ok {
        return None;
    }
    Some(Health {
        probe: probe?,
        interval,
        timeout,
        successes,
        deadline,
    })
}

fn probe_of(ctx: &mut Ctx<'_>, h: &HealthFile, from: From) -> Option<Probe> {
    if h.tcp.is_some() {
        return Some(Probe::Tcp);
    }
    if let Some(cmd) = &h.exec {
        if cmd.is_empty() || cmd[0].is_empty() {
            ctx.err(
                from,
                &["health", "exec"],
                "exec needs a command, e.g. exec: [/app, check]",
            );
            return None;
        }
        return Some(Probe::Exec(cmd.clone()));
    }
    let http = h.http.as_ref()?;
    let path = match http.path.as_deref() {
        None => {
            ctx.err(
                from,
                &["health", "http"],
                "http probe needs a path, e.g. http: {path: /healthz}",
            );
            return None;
        }
        Some(p) if !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic() && !b"\"'\\`".contains(&b)) => {
            ctx.err(
                from,
                &["health", "http", "path"],
                format!("invalid probe path {p:?}: it must start with '/' and have no spaces or quotes"),
            );
            return None;
        }
        Some(p) => p.to_string(),
    };
    let status = match http.status {
        None => defaults::HTTP_STATUS,
        Some(s) if (100..=599).contains(&s) => s as u16,
        Some(s) => {
            ctx.err(
                from,
                &["health", "http", "status"],
                format!("status {s} is not an HTTP status code: use 100-599"),
            );
            return None;
        }
    };
    Some(Probe::Http {
        path,
        status,
        body: http.body.clone(),
    })
}

fn resolve_switch(ctx: &mut Ctx<'_>, svc: Option<&SwitchFile>, repo: Option<&SwitchFile>) -> Option<Switch> {
    let drain = duration_field(
        ctx,
        svc.and_then(|s| s.drain.as_ref()),
        repo.and_then(|s| s.drain.as_ref()),
        &["switch", "drain"],
        defaults::DRAIN,
    );
    let (drain, from) = drain?;
    if drain > Duration::from_secs(3600) {
        ctx.err(
            from,
            &["switch", "drain"],
            format!(
                "drain {} is longer than 1h: in-flight requests should finish well within that",
                duration::format(drain)
            ),
        );
        return None;
    }
    let keep_idle = pick(
        svc.and_then(|s| s.keep_idle.as_ref()),
        repo.and_then(|s| s.keep_idle.as_ref()),
    )
    .map_or(defaults::KEEP_IDLE, |(v, _)| *v);
    Some(Switch { drain, keep_idle })
}
