//! Host policy: what the config repo may ask of this host, set by the
//! host's owner in the host config (`policy:`), never by the repo. Checked
//! on every commit before anything is pulled or created; each violation is
//! located at the file and line that asks for it.
//!
//! Whatever the policy says, the repo never gets the Docker socket (a bind
//! whose source is, or resolves to, the engine's socket) or the host's
//! network namespace. (Privileged mode and added capabilities cannot be
//! written in a service file at all: they are unknown fields.)

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::{Color, Desired, Diagnostic, RepoFiles};

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
}

/// Where the engine's socket is, and how this host resolves symlinks (the
/// only IO the check needs, passed in so the check itself is pure).
pub struct Host<'a> {
    pub docker_sockets: &'a [PathBuf],
    pub resolve: &'a dyn Fn(&Path) -> PathBuf,
}

impl Host<'_> {
    /// `std::fs::canonicalize` on the longest existing ancestor, so a path
    /// whose last parts do not exist yet still has its symlinks resolved.
    pub fn resolve_on_disk(p: &Path) -> PathBuf {
        let mut head = p.to_path_buf();
        let mut tail = vec![];
        loop {
            if let Ok(c) = std::fs::canonicalize(&head) {
                return tail.iter().rev().fold(c, |acc, t: &std::ffi::OsString| acc.join(t));
            }
            match (head.file_name().map(|f| f.to_os_string()), head.parent()) {
                (Some(f), Some(parent)) => {
                    tail.push(f);
                    head = parent.to_path_buf();
                }
                _ => return p.to_path_buf(),
            }
        }
    }
}

/// Every violation of `policy` in `desired`, located in `files`.
pub fn check(desired: &Desired, files: &RepoFiles, policy: &Policy, host: &Host<'_>) -> Vec<Diagnostic> {
    let mut out = vec![];
    for svc in desired.services.values() {
        let loc = Locator::new(files.files.get(&svc.file).map_or("", String::as_str));
        let at = |path: &[&str], msg: String| {
            let (line, col) = loc.pos(path);
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
            if let Some(why) = volume(v, policy, host) {
                out.push(at(&["volumes", &n], why));
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
    out
}

/// Why a `source:target[:ro]` volume is refused, if it is.
fn volume(v: &str, policy: &Policy, host: &Host<'_>) -> Option<String> {
    let source = v.split(':').next().unwrap_or("");
    if !source.starts_with('/') {
        return None; // a named volume
    }
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

/// `/srv/a/../../etc` -> `/etc`, without touching the disk.
fn normalize(p: &Path) -> PathBuf {
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
mod tests {
    use super::*;
    use crate::spec::load::{load, RepoFiles};

    const SVC: &str = "active: blue\nblue:\n  image: registry.example.com/shop/web:1\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\n";

    fn violations(extra: &str, policy: &Policy) -> Vec<String> {
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), format!("{SVC}{extra}"));
        let d = load(&f).unwrap();
        // A host where /srv/link points at /etc.
        let resolve = |p: &Path| -> PathBuf {
            let s = p.to_string_lossy();
            match s.strip_prefix("/srv/link") {
                Some(rest) => PathBuf::from(format!("/etc{rest}")),
                None => p
                    .strip_prefix("/var/run")
                    .map_or(p.to_path_buf(), |r| Path::new("/run").join(r)),
            }
        };
        let host = Host {
            docker_sockets: &[PathBuf::from("/var/run/docker.sock")],
            resolve: &resolve,
        };
        check(&d, &f, policy, &host).iter().map(|d| d.to_string()).collect()
    }

    fn shop() -> Policy {
        Policy {
            images: Some(vec!["registry.example.com/shop/".into()]),
            volumes: Some(vec!["/srv/".into()]),
        }
    }

    #[test]
    fn images_outside_the_prefixes_are_refused_where_they_are_written() {
        assert!(violations("", &shop()).is_empty());
        let text = SVC.replace("registry.example.com/shop/web:1", "evil.example.com/miner:1");
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), text);
        let d = load(&f).unwrap();
        let host = Host {
            docker_sockets: &[],
            resolve: &|p: &Path| p.to_path_buf(),
        };
        let got: Vec<String> = check(&d, &f, &shop(), &host).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            ["services/web.yaml:3:10: image evil.example.com/miner:1 is outside this host's policy (policy.images: registry.example.com/shop/)"]
        );
    }

    #[test]
    fn bind_mounts_are_checked_after_normalising_and_resolving() {
        let rows = [
            ("volumes: [/srv/web/data:/data]", None),
            ("volumes: [data:/data]", None),
            ("volumes: [/etc:/etc:ro]", Some("services/web.yaml:8:11: bind source /etc is outside this host's policy (policy.volumes: /srv/)")),
            ("volumes: ['/srv/../etc:/x']", Some("services/web.yaml:8:11: bind source /srv/../etc (resolves to /etc) is outside this host's policy (policy.volumes: /srv/)")),
            ("volumes: [/srv/link/shadow:/x]", Some("services/web.yaml:8:11: bind source /srv/link/shadow (resolves to /etc/shadow) is outside this host's policy (policy.volumes: /srv/)")),
            ("volumes: [/var/run/docker.sock:/s]", Some("services/web.yaml:8:11: bind source /var/run/docker.sock is (or holds) the Docker socket: never allowed from the repo, whatever the policy")),
            ("volumes: [/run:/r]", Some("services/web.yaml:8:11: bind source /run is (or holds) the Docker socket: never allowed from the repo, whatever the policy")),
            ("network: host", Some("services/web.yaml:8:10: network \"host\" shares a namespace with the host or another container: never allowed from the repo")),
        ];
        for (extra, want) in rows {
            let got = violations(&format!("{extra}\n"), &shop());
            assert_eq!(got, want.map(String::from).into_iter().collect::<Vec<_>>(), "{extra}");
        }
        // A socket inside an allowed prefix is still refused.
        let open = Policy {
            images: None,
            volumes: Some(vec!["/".into()]),
        };
        assert_eq!(violations("volumes: [/var/run/docker.sock:/s]\n", &open).len(), 1);
        // No list: no bind mounts at all.
        let none = Policy::default();
        assert_eq!(
            violations("volumes: [/srv/web:/w]\n", &none),
            ["services/web.yaml:8:11: bind mount of /srv/web: this host allows no bind mounts (policy.volumes lists none); use a named volume"]
        );
    }
}
