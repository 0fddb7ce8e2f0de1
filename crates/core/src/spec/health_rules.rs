//! Health checks and the switch of a service, resolved from its file and
//! the repo defaults of `teal.yaml`, every problem located.

use std::time::Duration;

use super::file::{HealthFile, SwitchFile};
use super::validate::{duration_field, pick, Ctx, From};
use super::{defaults, duration, Health, Probe, Switch};

pub(super) fn resolve_health(ctx: &mut Ctx<'_>, svc: Option<&HealthFile>, repo: Option<&HealthFile>) -> Option<Health> {
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

pub(super) fn resolve_switch(ctx: &mut Ctx<'_>, svc: Option<&SwitchFile>, repo: Option<&SwitchFile>) -> Option<Switch> {
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
