//! What the proxy drivers share: the route of one service as teal asks for
//! it, what a proxy reports back (weights, peers and response counters per
//! color), and the driver error. Both drivers import this module; the
//! dispatch over them (`proxy`) sits above.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::spec::{Color, PerColor, RouteTls, Traffic};

/// Everything the proxy needs for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    pub service: String,
    pub host: String,
    /// More host names served the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Path prefix, starting with `/`.
    pub path: String,
    /// HTTPS for the route's hosts; the certificate itself goes to the
    /// proxy on its own (`ProxyDriver::put_certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
    /// Share of requests and running replicas per color. A color with
    /// weight 0 gets no request on the main route.
    pub backends: PerColor<Backend>,
    pub preview: Option<PreviewRoute>,
    /// Stickiness, testers and maintenance (changed at runtime where the
    /// proxy allows, like weights).
    #[serde(default, skip_serializing_if = "Traffic::is_plain")]
    pub traffic: Traffic,
    /// The color testers' requests go to (`traffic.testers`): the new
    /// color while a rollout is under way, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Color>,
    pub commit: String,
    /// `plan::route_hash` of the service, recorded for observation.
    pub route_hash: String,
}

/// One color of a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backend {
    /// Percent of the route's requests, 0..=100; the two colors sum to 100
    /// (or both are 0: nothing serves).
    pub weight: u32,
    /// Replicas (`ip:port`) whose checks passed.
    pub addrs: Vec<SocketAddr>,
}

impl RouteSpec {
    /// The color taking most of the traffic, if any takes some.
    pub fn primary(&self) -> Option<Color> {
        primary(&self.weights())
    }

    /// The host and its aliases.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.host.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The weight of each color.
    pub fn weights(&self) -> PerColor<u32> {
        PerColor {
            blue: self.backends.blue.weight,
            green: self.backends.green.weight,
        }
    }
}

/// The color with the larger weight; `None` when neither has any or on a
/// tie (a canary half way: no single color is live).
pub fn primary(weights: &PerColor<u32>) -> Option<Color> {
    match weights.blue.cmp(&weights.green) {
        std::cmp::Ordering::Greater => Some(Color::Blue),
        std::cmp::Ordering::Less => Some(Color::Green),
        std::cmp::Ordering::Equal => None,
    }
}

/// Milliseconds since the epoch (0 before it): the deadline of a
/// `switch.pause` as both proxies read it.
pub fn ms_since_epoch(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why an ACME HTTP-01 token or key authorization may not go into the
/// proxy (both drivers put them in runtime commands or paths), if so.
pub fn acme_answer_refusal(token: &str, key_authorization: Option<&str>) -> Result<(), ProxyError> {
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !ok(token) || key_authorization.is_some_and(|k| !ok(k)) {
        return Err(ProxyError::Other(
            "an ACME token or key authorization outside [A-Za-z0-9-_.]".into(),
        ));
    }
    Ok(())
}

/// The idle color, reachable on its own host from allowed networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRoute {
    pub host: String,
    /// Empty: everyone may reach it.
    pub allow: Vec<ipnet::IpNet>,
    /// The color the preview host serves (its replicas are the route's
    /// backend of that color).
    pub color: Color,
}

/// What the proxy serves for one service, as the proxy itself reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedRoute {
    /// Share of requests per color.
    pub weights: PerColor<u32>,
    /// Peers that may receive requests, per color.
    pub addrs: PerColor<Vec<SocketAddr>>,
    /// The route hash recorded with the entry.
    pub route_hash: Option<String>,
    /// The managed config was edited by hand (its body no longer matches
    /// its recorded hash): the planner rewrites it.
    pub drifted: bool,
}

impl ObservedRoute {
    /// The color traffic goes to (most of it, during a canary).
    pub fn live(&self) -> Option<Color> {
        primary(&self.weights)
    }
}

pub use crate::strategy::analysis::Counts;

/// Counters per service and color.
pub type Counters = BTreeMap<String, PerColor<Counts>>;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the new config for {service} was rejected by `{command}`, so the serving config was left as it was:\n{output}"
    )]
    Rejected {
        service: String,
        command: String,
        output: String,
    },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("HAProxy runtime API at {socket}: {message}")]
    Runtime { socket: String, message: String },
    #[error("nginx balancer at {socket}: {message}")]
    Balancer { socket: String, message: String },
    #[error(
        "nginx has no Lua module for `switch: balancer` ({detail}): install Debian's libnginx-mod-http-lua and lua-resty-core (`apt-get install -y libnginx-mod-http-lua lua-resty-core`), or set proxy.nginx.switch: reload in the host config"
    )]
    NoLua { detail: String },
    #[error(
        "proxy.listen {listen} is held by {holder}, which is not teal's proxy: stop it, or set another proxy.listen"
    )]
    PortHeld { listen: String, holder: String },
    #[error("{0}")]
    Other(String),
}
