//! The container port, the volumes, and every key teal has no place for,
//! each with why.

use super::model::{Port, Scalar, Service, Volume};
use super::Note;

/// The port the app listens on: the container side of the first `ports`
/// entry, else the first `expose`. Published host ports and further
/// ports are noted.
pub fn port_of(s: &Service, n: &mut Note) -> Option<u16> {
    let mut found: Vec<u16> = vec![];
    for p in &s.ports {
        let (target, published) = match p {
            Port::Short(v) => short_port(&v.text()),
            Port::Long { target, published, .. } => (
                target.int().and_then(|t| u16::try_from(t).ok()),
                published.as_ref().map(Scalar::text),
            ),
        };
        if let Some(host) = published {
            n.left_out(
                "ports",
                format!("{host} published on the host: teal's proxy serves the route instead"),
            );
        }
        match target {
            Some(t) if t > 0 && !found.contains(&t) => found.push(t),
            Some(_) => {}
            None => n.left_out("ports", format!("{p:?} names no single container port")),
        }
    }
    for e in &s.expose {
        let t = e.text();
        match short_port(&t).0 {
            Some(p) if p > 0 && !found.contains(&p) => found.push(p),
            Some(_) => {}
            None => n.left_out("expose", format!("{t:?} names no single container port")),
        }
    }
    if found.len() > 1 {
        let rest: Vec<String> = found[1..].iter().map(u16::to_string).collect();
        n.left_out(
            "ports",
            format!(
                "teal routes one port per service ({}); not {}",
                found[0],
                rest.join(", ")
            ),
        );
    }
    found.first().copied()
}

/// `[ip:][host:]container[/proto]`: the container port (`None` for a
/// range) and the published part, if any.
fn short_port(s: &str) -> (Option<u16>, Option<String>) {
    let s = s.split('/').next().unwrap_or(s);
    let (published, target) = match s.rsplit_once(':') {
        Some((p, t)) => (Some(p.to_string()), t),
        None => (None, s),
    };
    (target.trim().parse().ok(), published)
}

/// Volumes as teal writes them: `source:/target[:ro]`. A relative bind
/// source starts from `base_dir` (the first compose file's directory),
/// as compose does.
pub fn volumes_of(s: &Service, base_dir: &str, n: &mut Note) -> Vec<String> {
    let mut out = vec![];
    for v in &s.volumes {
        let (kind, source, target, ro) = match v {
            Volume::Short(text) => {
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [src, dst] => (kind_of(src), src.to_string(), dst.to_string(), false),
                    [src, dst, mode] => (
                        kind_of(src),
                        src.to_string(),
                        dst.to_string(),
                        mode.split(',').any(|m| m == "ro"),
                    ),
                    _ => {
                        n.left_out(
                            "volumes",
                            format!("{text:?}: an anonymous volume, gone with the container; name it to keep it"),
                        );
                        continue;
                    }
                }
            }
            Volume::Long {
                kind,
                source,
                target,
                read_only,
                ..
            } => {
                let (Some(src), Some(dst)) = (source, target) else {
                    n.left_out("volumes", format!("a {kind} volume without source or target"));
                    continue;
                };
                let ro = read_only.as_ref().and_then(Scalar::bool).unwrap_or(false);
                (kind.clone(), src.clone(), dst.clone(), ro)
            }
        };
        let source = match kind.as_str() {
            "bind" if source.ends_with("docker.sock") => {
                n.left_out(
                    "volumes",
                    format!("{source}: the Docker socket is never mounted from the repo (it is root on the host)"),
                );
                continue;
            }
            "bind" => absolute(&source, base_dir),
            "volume" => {
                n.info(
                    "volumes",
                    format!("named volume {source}: compose names it <project>_{source}; teal uses {source} as written, so copy the data or rename it"),
                );
                source
            }
            other => {
                n.left_out("volumes", format!("{target}: a {other} mount has no teal equivalent"));
                continue;
            }
        };
        if !target.starts_with('/') {
            n.left_out(
                "volumes",
                format!("{target:?} is not an absolute path in the container"),
            );
            continue;
        }
        out.push(if ro {
            format!("{source}:{target}:ro")
        } else {
            format!("{source}:{target}")
        });
    }
    out
}

fn kind_of(src: &str) -> String {
    if src.starts_with(['/', '.', '~']) {
        "bind".into()
    } else {
        "volume".into()
    }
}

/// `./data` under `/srv/app` is `/srv/app/data`.
fn absolute(src: &str, base: &str) -> String {
    if src.starts_with('/') || src.starts_with('~') {
        return src.to_string();
    }
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for p in src.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Every other key of the service, noted with why it is not carried over.
pub fn left_out_keys(s: &Service, n: &mut Note) {
    for key in s.other.keys() {
        if key.starts_with("x-") {
            continue;
        }
        n.left_out(key, why(key));
    }
    if let Some(d) = &s.deploy {
        for key in d.other.keys() {
            n.left_out(
                &format!("deploy.{key}"),
                "Swarm deploy settings: teal's `placement` and strategies cover what applies",
            );
        }
    }
}

fn why(key: &str) -> &'static str {
    match key {
        "build" => "teal deploys images: build and push in CI, then `teal bump` the new tag",
        "depends_on" | "links" | "external_links" => {
            "not needed: each service starts on its own and takes traffic once its health checks pass"
        }
        "container_name" => "teal names containers teal-<service>-<color>-<n>",
        "networks" => "teal's containers join the host's managed network (or the one `network:` names)",
        "network_mode" => {
            "refused: teal runs containers on its network; host networking is never allowed from the repo"
        }
        "privileged"
        | "cap_add"
        | "devices"
        | "pid"
        | "ipc"
        | "userns_mode"
        | "security_opt"
        | "use_api_socket"
        | "cgroup_parent"
        | "device_cgroup_rules"
        | "uts"
        | "cgroup" => "never allowed from the repo: it would give a commit power over the host",
        "secrets" | "configs" => {
            "use teal's secrets: `teal secret set SERVICE NAME` (age in git) or a file on the host"
        }
        "pull_policy" => "teal pulls a missing image; `pull: always` follows a moved tag",
        "profiles" => "honoured at import",
        _ => "no teal equivalent: set it in the image, or leave the service in compose",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_relative_binds() {
        assert_eq!(short_port("8080"), (Some(8080), None));
        assert_eq!(
            short_port("127.0.0.1:8000:80/tcp"),
            (Some(80), Some("127.0.0.1:8000".into()))
        );
        assert_eq!(short_port("3000-3005"), (None, None));
        assert_eq!(absolute("./data", "/srv/app"), "/srv/app/data");
        assert_eq!(absolute("../shared/x", "/srv/app"), "/srv/shared/x");
        assert_eq!(absolute(".", "/srv/app"), "/srv/app");
        assert_eq!(absolute("/abs", "/srv/app"), "/abs");
    }
}
