//! Host policy: what the config repo may ask of this host, set by the
//! host's owner in the host config (`policy:`), never by the repo. Checked
//! on every commit before anything is pulled or created; each violation is
//! located at the file and line that asks for it.
//!
//! Whatever the policy says, the repo never gets the Docker socket (a bind
//! whose source is, or resolves to, the engine's socket) or the host's
//! network namespace. (Privileged mode and added capabilities cannot be
//! written in a service file at all: they are unknown fields.)
//!
//! Docker resolves a bind's source again at every start, so what was
//! admitted can change on disk: no bind may lie below another read-write
//! bind (`overlap`), and the Docker driver asks `bind_refusal` again about
//! what it mounts. Swarm tasks run on nodes whose paths the manager cannot
//! see: no bind mounts in swarm mode. A named volume may be another app's
//! data: a service mounts its own, or those `policy.named_volumes` allows.
//! The repo makes the host query only the Prometheus servers
//! `policy.prometheus` lists (`prometheus`).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::secret::SecretSource;
use crate::spec::TlsSource;
use crate::spec::{Color, Desired, Diagnostic, RepoFiles};

mod overlap;
pub mod prometheus;

/// `policy:` in the host config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Image prefixes, e.g. `registry.example.com/shop/`: an image outside
    /// all of them is refused. Absent: any image.
    #[serde(default)]
    pub images: Option<Vec<String>>,
    /// Host-path prefixes a service may bind-mount, e.g. `/srv/`. Absent:
    /// no bind mounts (named volumes stay allowed).
    #[serde(default)]
    pub volumes: Option<Vec<String>>,
    /// Name prefixes of Docker named volumes a service may mount, e.g.
    /// `shop-`. Absent: only its own, named after it (`<service>`,
    /// `<service>-...` or `<service>_...`). An empty list: none.
    #[serde(default)]
    pub named_volumes: Option<Vec<String>>,
    /// Path prefixes of files on this host a service may read secrets
    /// from (`env_from_files`, `secrets.<NAME>.file`), e.g.
    /// `/etc/teal/secrets/`. Absent: none.
    #[serde(default)]
    pub secret_files: Option<Vec<String>>,
    /// Path prefixes of certificate and key files a route may name
    /// (`route.tls: {cert, key}`), e.g. `/etc/teal/certs/`. Absent: none.
    #[serde(default)]
    pub cert_files: Option<Vec<String>>,
    /// URL prefixes of the Prometheus servers a service's
    /// `analysis.prometheus` may query, e.g. `http://127.0.0.1:9090/`:
    /// the URL asked (`<url>/api/v1/query`) must have a prefix's scheme,
    /// host and port, and a path at or below its path. Absent or empty:
    /// none.
    #[serde(default)]
    pub prometheus: Option<Vec<String>>,
}

/// Where the engine's socket is, how this host resolves symlinks (the
/// only IO the check needs, passed in so the check itself is pure), and
/// whether replicas are Swarm tasks (which run on nodes whose paths this
/// host cannot see).
pub struct Host<'a> {
    pub docker_sockets: &'a [PathBuf],
    pub resolve: &'a dyn Fn(&Path) -> PathBuf,
    pub swarm: bool,
}

/// Every violation of `policy` in `desired`, located in `files`.
pub fn check(desired: &Desired, files: &RepoFiles, policy: &Policy, host: &Host<'_>) -> Vec<Diagnostic> {
    let mut out = vec![];
    let mut binds = vec![];
    for svc in desired.services.values() {
        // Parsed for positions only when something is to be located: a
        // daemon checks every service of the commit at each poll.
        let parsed = std::cell::OnceCell::new();
        let loc = || parsed.get_or_init(|| Locator::new(files.files.get(&svc.file).map_or("", String::as_str)));
        let at = |path: &[&str], msg: String| {
            let (line, col) = loc().pos(path);
            Diagnostic::new(&svc.file, line, col, msg)
        };
        for c in Color::ALL {
            let Some(image) = svc.images.get(c) else { continue };
            if let Some(prefixes) = &policy.images {
                if !prefixes.iter().any(|p| image.starts_with(p.as_str())) {
                    out.push(at(
                        &[c.as_str(), "image"],
                        format!(
                            "image {image} is outside this host's policy (policy.images: {})",
                            prefixes.join(", ")
                        ),
                    ));
                }
            }
        }
        for (i, v) in svc.volumes.iter().enumerate() {
            let n = i.to_string();
            match volume(v, &svc.name, policy, host) {
                Some(why) => out.push(at(&["volumes", &n], why)),
                None => binds.extend(overlap::Bind::of(svc, i, loc, host)),
            }
        }
        for (name, secret) in &svc.secrets {
            if let SecretSource::File { path } = &secret.source {
                if let Some(why) = secret_file_refusal(path, policy, host) {
                    let field = if loc().node(&["env_from_files", name]).is_some() {
                        "env_from_files"
                    } else {
                        "secrets"
                    };
                    out.push(at(&[field, name], why));
                }
            }
        }
        if let Some(TlsSource::Files { cert, key }) = svc.route.tls.as_ref().map(|t| &t.source) {
            for (field, path) in [("cert", cert), ("key", key)] {
                if let Some(why) = cert_file_refusal(path, policy, host) {
                    out.push(at(&["route", "tls", field], why));
                }
            }
        }
        if let Some(prom) = svc.analysis.as_ref().and_then(|a| a.prometheus.as_ref()) {
            if let Some(why) = prometheus::refusal(&prom.url, policy.prometheus.as_deref()) {
                out.push(at(&["analysis", "prometheus", "url"], why));
            }
        }
        if let Some(net) = &svc.network {
            if net == "host" || net.starts_with("container:") {
                out.push(at(
                    &["network"],
                    format!("network {net:?} shares a namespace with the host or another container: never allowed from the repo"),
                ));
            }
        }
    }
    out.extend(overlap::check(&binds));
    out
}

/// Why a `source:target[:ro]` volume of `service` is refused, if it is.
fn volume(v: &str, service: &str, policy: &Policy, host: &Host<'_>) -> Option<String> {
    let source = v.split(':').next().unwrap_or("");
    if !source.starts_with('/') {
        return named_volume(source, service, policy);
    }
    if host.swarm {
        return Some(format!(
            "bind mount of {source}: in swarm mode a task may run on any node, where teal cannot check the path (or what its symlinks point at); use a named volume (name:/target)"
        ));
    }
    bind_refusal(source, policy, host)
}

/// Why the bind source `source` is refused on this host, if it is: the
/// Docker socket, or outside `policy.volumes` once normalised and resolved.
/// Drivers ask again with what Docker reports, since Docker resolves the
/// source afresh at each start.
pub fn bind_refusal(source: &str, policy: &Policy, host: &Host<'_>) -> Option<String> {
    let lexical = normalize(Path::new(source));
    let real = (host.resolve)(&lexical);
    let sockets: Vec<PathBuf> = host
        .docker_sockets
        .iter()
        .map(|s| (host.resolve)(&normalize(s)))
        .collect();
    if sockets
        .iter()
        .any(|s| real == *s || lexical == *s || s.starts_with(&real))
    {
        return Some(format!(
            "bind source {source} is (or holds) the Docker socket: never allowed from the repo, whatever the policy"
        ));
    }
    let Some(prefixes) = &policy.volumes else {
        return Some(format!(
            "bind mount of {source}: this host allows no bind mounts (policy.volumes lists none); use a named volume"
        ));
    };
    let inside = prefixes.iter().any(|p| {
        let p = (host.resolve)(&normalize(Path::new(p)));
        real.starts_with(&p) && lexical.starts_with(normalize(Path::new(&p)))
    });
    if !inside {
        let shown = if real.as_path() != Path::new(source) {
            format!("{source} (resolves to {})", real.display())
        } else {
            source.to_string()
        };
        return Some(format!(
            "bind source {shown} is outside this host's policy (policy.volumes: {})",
            prefixes.join(", ")
        ));
    }
    None
}

/// Why the host file `path` may not be read as a secret, if it may not:
/// outside `policy.secret_files` once normalised and resolved (a repo
/// must not read the host's other files, its keys above all).
pub fn secret_file_refusal(path: &str, policy: &Policy, host: &Host<'_>) -> Option<String> {
    let kind = HostFiles {
        what: "secret file",
        none: "files",
        field: "secret_files",
        otherwise: "use an age-encrypted secret",
    };
    kind.refusal(path, policy.secret_files.as_deref(), host)
}

/// Why the host file `path` may not be read as a route's certificate or
/// key, if it may not: outside `policy.cert_files` once normalised and
/// resolved. The proxy would serve what it reads to every client.
pub fn cert_file_refusal(path: &str, policy: &Policy, host: &Host<'_>) -> Option<String> {
    let kind = HostFiles {
        what: "certificate file",
        none: "certificate files",
        field: "cert_files",
        otherwise: "use tls: acme",
    };
    kind.refusal(path, policy.cert_files.as_deref(), host)
}

/// A kind of host file the repo may name, bounded by a policy list.
struct HostFiles {
    what: &'static str,
    none: &'static str,
    field: &'static str,
    otherwise: &'static str,
}

impl HostFiles {
    fn refusal(&self, path: &str, prefixes: Option<&[String]>, host: &Host<'_>) -> Option<String> {
        let HostFiles {
            what,
            none,
            field,
            otherwise,
        } = self;
        let Some(prefixes) = prefixes else {
            return Some(format!(
                "{what} {path}: this host lets the repo read no {none} (policy.{field} lists none); ask the host's owner to list a prefix of it there, or {otherwise}"
            ));
        };
        outside(path, prefixes, host).map(|shown| {
            format!(
                "{what} {shown} is outside this host's policy (policy.{field}: {})",
                prefixes.join(", ")
            )
        })
    }
}

/// `path` as shown in a refusal (with what it resolves to) when it lies
/// outside every prefix, lexically or once symlinks are resolved.
fn outside(path: &str, prefixes: &[String], host: &Host<'_>) -> Option<String> {
    let lexical = normalize(Path::new(path));
    let real = (host.resolve)(&lexical);
    let inside = prefixes.iter().any(|p| {
        let p = (host.resolve)(&normalize(Path::new(p)));
        real.starts_with(&p) && lexical.starts_with(normalize(Path::new(&p)))
    });
    (!inside).then(|| {
        if real.as_path() != Path::new(path) {
            format!("{path} (resolves to {})", real.display())
        } else {
            path.to_string()
        }
    })
}

/// Why `service` may not mount the named volume `name`, if it may not: a
/// volume made by another app (its database, say) is its data, not this
/// repo's.
fn named_volume(name: &str, service: &str, policy: &Policy) -> Option<String> {
    match &policy.named_volumes {
        None if named_after(name, service) => None,
        None => Some(format!(
            "named volume {name} is not named after service {service}, and this host lets a service mount only its own (another app's volume could be its database): rename it {service}-{name}, or ask the host's owner to list a prefix of it in policy.named_volumes"
        )),
        Some(prefixes) if prefixes.iter().any(|p| name.starts_with(p.as_str())) => None,
        Some(prefixes) if prefixes.is_empty() => Some(format!(
            "named volume {name}: this host allows no named volumes (policy.named_volumes is empty); ask the host's owner to list a prefix of it there"
        )),
        Some(prefixes) => Some(format!(
            "named volume {name} is outside this host's policy (policy.named_volumes: {}): rename it to start with one of those, or ask the host's owner to add a prefix of it",
            prefixes.join(", ")
        )),
    }
}

/// `web`, `web-data`, `web_data` for service `web`; not `webhooks-db`
/// (service names hold no `_`, so `web_...` is never another's).
fn named_after(name: &str, service: &str) -> bool {
    name.strip_prefix(service)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '_']))
}

/// `/srv/a/../../etc` -> `/etc`, without touching the disk.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
