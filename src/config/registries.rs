//! `registries:` and `images:` in the host config: the credentials of the
//! registries this host pulls from (the password in a file, never inline),
//! how long a pull may take, and how many deployed images are kept.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// One `registries:` item: who this host is at a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// The registry as image references name it: `registry.example.com`,
    /// `127.0.0.1:5000`, or `docker.io` for Docker Hub.
    pub host: String,
    pub username: String,
    /// A file holding the password (or access token), mode 0600. Read at
    /// each pull, so a rotated password needs no restart.
    pub password_file: PathBuf,
}

/// `images:` in the host config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// The longest one image's pull may take before the deploy fails.
    #[serde(default = "default_pull_timeout", with = "crate::spec::duration::serde_human")]
    pub pull_timeout: Duration,
    /// After a converged pass, the images a service deployed are removed
    /// but for its last `keep` (and any a color declares or a container
    /// uses). 0 keeps only those.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            pull_timeout: default_pull_timeout(),
            keep: default_keep(),
        }
    }
}

pub(super) fn default_pull_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_keep() -> u32 {
    3
}

/// A registry's name in the form credentials are matched by: no scheme,
/// no trailing slash or API path, Docker Hub's aliases as `docker.io`.
pub fn normalise(registry: &str) -> String {
    let r = registry.trim();
    let r = r
        .strip_prefix("https://")
        .or_else(|| r.strip_prefix("http://"))
        .unwrap_or(r);
    let r = r.split('/').next().unwrap_or("").to_ascii_lowercase();
    match r.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".into(),
        _ => r,
    }
}

/// Located mistakes of `registries:`: a host that is no registry name,
/// one named twice, an empty username.
pub(super) fn check(path: &str, text: &str, registries: &[Registry]) -> Vec<Diagnostic> {
    let loc = Locator::new(text);
    let mut out = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in registries.iter().enumerate() {
        let n = i.to_string();
        let at = |field: &str, msg: String| {
            let (line, col) = loc.pos(&["registries", &n, field]);
            Diagnostic::new(path, line, col, format!("registries[{i}]: {msg}"))
        };
        let h = &r.host;
        let bad_char = |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if h.is_empty() || h.chars().any(bad_char) {
            out.push(at(
                "host",
                format!("host {h:?} must be a registry's host[:port] as images name it (registry.example.com, 127.0.0.1:5000, docker.io), without a scheme or path"),
            ));
        } else if !seen.insert(normalise(h)) {
            out.push(at(
                "host",
                format!("host {h:?} is named twice: keep one item per registry"),
            ));
        }
        if r.username.trim().is_empty() {
            out.push(at("username", "username must not be empty".into()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;

    const BASE: &str = "repo: {url: /r}\nproxy: {kind: haproxy}\n";

    #[test]
    fn registries_and_the_pull_timeout_parse() {
        let c = HostConfig::parse(
            "d.yaml",
            &format!("{BASE}registries:\n  - {{host: 127.0.0.1:5000, username: ci, password_file: /etc/teal/reg}}\nimages: {{pull_timeout: 90s}}\n"),
        )
        .unwrap();
        assert_eq!(c.registries[0].host, "127.0.0.1:5000");
        assert_eq!(c.registries[0].password_file, PathBuf::from("/etc/teal/reg"));
        assert_eq!(c.images.pull_timeout, Duration::from_secs(90));
        let d = HostConfig::parse("d.yaml", BASE).unwrap();
        assert_eq!(d.images.pull_timeout, Duration::from_secs(600));
        assert!(d.registries.is_empty());
    }

    #[test]
    fn mistakes_are_located_all_at_once() {
        let err = HostConfig::parse(
            "d.yaml",
            &format!(
                "{BASE}registries:\n  - {{host: 'https://r.example.com/v2', username: a, password_file: /p}}\n  - {{host: docker.io, username: '', password_file: /p}}\n  - {{host: index.docker.io, username: b, password_file: /p}}\n"
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "d.yaml:4:12: registries[0]: host \"https://r.example.com/v2\" must be a registry's host[:port]"
            ),
            "{err}"
        );
        assert!(
            err.contains("d.yaml:5:33: registries[1]: username must not be empty"),
            "{err}"
        );
        assert!(
            err.contains("d.yaml:6:12: registries[2]: host \"index.docker.io\" is named twice"),
            "{err}"
        );
        let unknown = HostConfig::parse(
            "d.yaml",
            &format!("{BASE}registries:\n  - {{host: r.example.com, username: a, password: hunter2}}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            unknown.contains("unknown field") && unknown.contains("password"),
            "{unknown}"
        );
        assert!(
            !unknown.contains("hunter2"),
            "a mistyped password never appears in the error: {unknown}"
        );
    }

    #[test]
    fn names_normalise_as_docker_keys_them() {
        assert_eq!(normalise("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise("docker.io"), "docker.io");
        assert_eq!(normalise("http://127.0.0.1:5000/"), "127.0.0.1:5000");
        assert_eq!(normalise("Registry.Example.com"), "registry.example.com");
    }
}
