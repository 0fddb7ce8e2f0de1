//! The status API's own limits (`api:`) and the names it answers to
//! (`host.names`): what keeps a flood of connections or a page in an
//! operator's browser (DNS rebinding) from reaching the daemon.

use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// `api:` in the host config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Connections held open at once. Past it, a new connection closes the
    /// one idle (or slow) the longest, or is closed at once when all are
    /// answering. Never more than a quarter of the open-file limit, so a
    /// flood cannot starve Docker, git and the proxy of file descriptors.
    pub max_connections: usize,
    /// Live `/events` streams (dashboards) at once; more get 503.
    pub max_streams: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_connections: 256,
            max_streams: 32,
        }
    }
}

/// Located mistakes in `host.names` and `api`: a name that is not a DNS
/// name (a port or a scheme), a limit of zero.
pub fn check(path: &str, text: &str, names: &[String], api: &ApiConfig) -> Vec<Diagnostic> {
    let loc = Locator::new(text);
    let mut out = vec![];
    for (i, n) in names.iter().enumerate() {
        if !crate::spec::names::is_hostname(n.trim_end_matches('.')) {
            let (line, col) = loc.pos(&["host", "names", &i.to_string()]);
            let msg =
                format!("host.names[{i}]: {n:?} is not a host name: write the name alone, without scheme or port");
            out.push(Diagnostic::new(path, line, col, msg));
        }
    }
    for (field, v) in [
        ("max_connections", api.max_connections),
        ("max_streams", api.max_streams),
    ] {
        if v == 0 {
            let (line, col) = loc.pos(&["api", field]);
            out.push(Diagnostic::new(
                path,
                line,
                col,
                format!("api.{field} must be at least 1"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::HostConfig;

    #[test]
    fn names_and_limits_parse_and_mistakes_are_located() {
        let base = "repo: {url: /r}\nproxy: {kind: haproxy}\n";
        let c = HostConfig::parse(
            "d.yaml",
            &format!("{base}host: {{names: [teal.example.com]}}\napi: {{max_connections: 64}}\n"),
        )
        .unwrap();
        assert_eq!(c.host.names, ["teal.example.com"]);
        assert_eq!((c.api.max_connections, c.api.max_streams), (64, 32));
        let e = HostConfig::parse(
            "d.yaml",
            &format!("{base}host:\n  names: [ok.example, 'https://x.example:9470']\napi: {{max_streams: 0}}\n"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "d.yaml:4:23: host.names[1]: \"https://x.example:9470\" is not a host name: write the name alone, without scheme or port\n\
             d.yaml:5:20: api.max_streams must be at least 1"
        );
    }
}
