//! `fleet:` in the host config: which of the status URLs that teal.yaml
//! names this host may read. The repo says where its hosts are, but a
//! repo writer must not be able to point this daemon (and its bearer
//! token, `host.token_file`) at a server of their own, or at anything on
//! the host's network: only URLs the host's owner listed are contacted at
//! all, and plain http only on loopback unless the owner opts in. Pure:
//! the peer client asks `admit` before every request.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// `fleet:` in the host config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Status URLs of teal.yaml's hosts that this host reads, for waves
    /// and `teal status --fleet`, and sends `host.token_file` to. An
    /// entry covers the URLs of its scheme, host and port whose path
    /// starts with its path. Default: none (no peer is read).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Read peers over plain http that are not loopback (the token then
    /// crosses the network in clear). Default false: https, or loopback.
    #[serde(default)]
    pub allow_http_peers: bool,
}

impl FleetConfig {
    /// The URL to read for `url` (a status URL from teal.yaml), or why it
    /// is not read, saying what to change in the host config.
    pub fn admit(&self, url: &str) -> Result<Url, String> {
        let parsed = parse(url).map_err(|e| format!("status URL {url} is {e}: not read"))?;
        if parsed.scheme() == "http" && !is_loopback(&parsed) && !self.allow_http_peers {
            return Err(format!(
                "status URL {url} is plain http to a host that is not loopback: not read; use https://, or set fleet.allow_http_peers: true in the host config (host.token_file then crosses the network in clear)"
            ));
        }
        if !self
            .peers
            .iter()
            .filter_map(|p| parse(p).ok())
            .any(|p| covers(&p, &parsed))
        {
            return Err(format!(
                "status URL {url} is not in fleet.peers of the host config: not read; add it there if this host may read it (and send it host.token_file)"
            ));
        }
        Ok(parsed)
    }
}

/// `<url>/status`, without the user, query or fragment a URL may carry.
pub fn status_url(base: &Url) -> Url {
    let mut u = base.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    let path = format!("{}/status", base.path().trim_end_matches('/'));
    u.set_path(&path);
    u
}

fn parse(url: &str) -> Result<Url, &'static str> {
    let u = Url::parse(url).map_err(|_| "not an http(s) URL")?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err("not an http(s) URL");
    }
    Ok(u)
}

/// 127.0.0.0/8, ::1 or `localhost`: traffic that never leaves the host.
fn is_loopback(u: &Url) -> bool {
    let Some(host) = u.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Same scheme, host and port, and `url`'s path at or below `entry`'s
/// (segment by segment: `/teal` covers `/teal/web-1`, not `/teal-evil`).
fn covers(entry: &Url, url: &Url) -> bool {
    let (e, u) = (entry.path().trim_end_matches('/'), url.path().trim_end_matches('/'));
    entry.scheme() == url.scheme()
        && entry.host() == url.host()
        && entry.port_or_known_default() == url.port_or_known_default()
        && (u == e || u.strip_prefix(e).is_some_and(|rest| rest.starts_with('/')))
}

/// Mistakes in `fleet.peers`, each at its line: not an http(s) URL, or
/// plain http off loopback without `allow_http_peers`.
pub fn check(path: &str, text: &str, fleet: &FleetConfig) -> Vec<Diagnostic> {
    let loc = Locator::new(text);
    let mut out = vec![];
    for (i, peer) in fleet.peers.iter().enumerate() {
        let n = i.to_string();
        let at = |message: String| {
            let (line, col) = loc.pos(&["fleet", "peers", &n]);
            Diagnostic::new(path, line, col, format!("fleet.peers[{i}]: {message}"))
        };
        match parse(peer) {
            Err(e) => out.push(at(format!("{peer} is {e}: write e.g. https://10.0.0.11:9470"))),
            Ok(u) if u.scheme() == "http" && !is_loopback(&u) && !fleet.allow_http_peers => out.push(at(format!(
                "{peer} is plain http to a host that is not loopback: use https://, or set fleet.allow_http_peers: true (host.token_file then crosses the network in clear)"
            ))),
            Ok(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(peers: &[&str], http: bool) -> FleetConfig {
        FleetConfig {
            peers: peers.iter().map(|p| p.to_string()).collect(),
            allow_http_peers: http,
        }
    }

    #[test]
    fn only_listed_urls_are_read_and_plain_http_only_on_loopback() {
        let f = fleet(
            &[
                "https://10.0.0.11:9470",
                "https://ops.example.com/teal/",
                "http://127.0.0.1:9470",
            ],
            false,
        );
        for ok in [
            "https://10.0.0.11:9470",
            "https://10.0.0.11:9470/",
            "https://OPS.example.com:443/teal/web-1",
            "http://127.0.0.1:9470",
        ] {
            assert!(f.admit(ok).is_ok(), "{ok}: {:?}", f.admit(ok));
        }
        for (url, why) in [
            ("https://10.0.0.12:9470", "is not in fleet.peers"),
            ("https://10.0.0.11:9471", "is not in fleet.peers"),
            ("https://10.0.0.11:9470@evil.example.com", "is not in fleet.peers"),
            ("https://ops.example.com/teal-evil", "is not in fleet.peers"),
            ("https://ops.example.com.evil.example/teal", "is not in fleet.peers"),
            ("http://127.0.0.1:9471", "is not in fleet.peers"),
            ("http://10.0.0.11:9470", "is plain http to a host that is not loopback"),
            ("ftp://10.0.0.11", "is not an http(s) URL"),
        ] {
            let err = f.admit(url).unwrap_err();
            assert!(err.starts_with(&format!("status URL {url} {why}")), "{url}: {err}");
        }
        let opted_in = fleet(&["http://10.0.0.11:9470"], true);
        assert!(opted_in.admit("http://10.0.0.11:9470").is_ok());
        assert!(
            fleet(&[], true).admit("http://10.0.0.11:9470").is_err(),
            "still listed only"
        );
    }

    #[test]
    fn the_request_goes_to_the_status_path_without_userinfo_or_query() {
        let u = Url::parse("https://u:p@ops.example.com/teal/web-1/?x=1#f").unwrap();
        assert_eq!(status_url(&u).as_str(), "https://ops.example.com/teal/web-1/status");
        let u = Url::parse("http://127.0.0.1:9470").unwrap();
        assert_eq!(status_url(&u).as_str(), "http://127.0.0.1:9470/status");
    }

    #[test]
    fn mistakes_in_the_peer_list_are_located() {
        let text =
            "fleet:\n  peers:\n    - https://10.0.0.11:9470\n    - http://10.0.0.12:9470\n    - 10.0.0.13:9470\n";
        let f: FleetConfig = serde_yaml::from_str::<serde_yaml::Value>(text)
            .map(|v| serde_yaml::from_value(v["fleet"].clone()).unwrap())
            .unwrap();
        let got: Vec<String> = check("d.yaml", text, &f).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            got,
            [
                "d.yaml:4:7: fleet.peers[1]: http://10.0.0.12:9470 is plain http to a host that is not loopback: use https://, or set fleet.allow_http_peers: true (host.token_file then crosses the network in clear)",
                "d.yaml:5:7: fleet.peers[2]: 10.0.0.13:9470 is not an http(s) URL: write e.g. https://10.0.0.11:9470",
            ]
        );
    }
}
