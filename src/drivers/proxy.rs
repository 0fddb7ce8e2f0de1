//! The proxy boundary: one type over the two real drivers (nginx,
//! HAProxy). The engine upserts one service's route at a time; observation
//! reports the weights and peers of each color as the proxy itself
//! records them, and the response counters per color feed analysis.

use std::collections::BTreeMap;

use super::haproxy::Haproxy;
use super::nginx::{needs_balancer, needs_balancer_for, Nginx};
pub use super::route::{Backend, Counters, Counts, ObservedRoute, PreviewRoute, ProxyError, RouteSpec};
use super::tls::Material;

/// The configured proxy.
#[derive(Debug)]
pub enum ProxyDriver {
    Nginx(Nginx),
    Haproxy(Haproxy),
}

impl ProxyDriver {
    /// Routes of every service teal manages.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.observe().await,
            ProxyDriver::Haproxy(p) => p.observe().await,
        }
    }

    /// Creates or updates one service's route. The new config is validated
    /// before it reaches the serving proxy; on rejection nothing changes.
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) if route.tls.is_some() && p.balancer().is_none() => Err(needs_balancer()),
            ProxyDriver::Nginx(p) if !route.traffic.is_plain() && p.balancer().is_none() => Err(needs_balancer_for(
                "canary.sticky (on by default for a canary), match, maintenance and switch.pause: nginx applies them",
                "set canary.sticky: none and remove match, maintenance and switch.pause",
            )),
            ProxyDriver::Nginx(p) => p.apply(route).await,
            ProxyDriver::Haproxy(p) => p.apply(route).await,
        }
    }

    /// `switch.pause`: holds the new requests of `service`'s route until
    /// `until`, or (`None`) lets the held ones go on at once. False when
    /// the proxy serves no route of it that holds requests.
    pub async fn pause(&self, service: &str, until: Option<std::time::SystemTime>) -> Result<bool, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.pause(service, until).await,
            ProxyDriver::Haproxy(p) => p.pause(service, until).await,
        }
    }

    /// Removes one service's route.
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.remove(service).await,
            ProxyDriver::Haproxy(p) => p.remove(service).await,
        }
    }

    /// Rewrites every teal file from the routes it records with the
    /// current settings (e.g. a new listen address) and reloads.
    pub async fn resync(&self) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.resync().await,
            ProxyDriver::Haproxy(p) => p.resync().await,
        }
    }

    /// Installed route certificates by service: the sha256 of each leaf.
    pub async fn certificates(&self) -> Result<BTreeMap<String, String>, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.certificates().await,
            ProxyDriver::Haproxy(p) => p.certificates().await,
        }
    }

    /// Installs or replaces the certificate of `service` for its route's
    /// hosts, with no reload; its hosts then redirect to HTTPS.
    pub async fn put_certificate(&self, service: &str, hosts: &[String], m: &Material) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.put_certificate(service, hosts, m).await,
            ProxyDriver::Haproxy(p) => p.put_certificate(service, hosts, m).await,
        }
    }

    /// Removes the certificate of `service`.
    pub async fn remove_certificate(&self, service: &str) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.remove_certificate(service).await,
            ProxyDriver::Haproxy(p) => p.remove_certificate(service).await,
        }
    }

    /// Publishes (`Some`) or withdraws an ACME HTTP-01 answer.
    pub async fn acme_challenge(&self, token: &str, key_authorization: Option<&str>) -> Result<(), ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.acme_challenge(token, key_authorization).await,
            ProxyDriver::Haproxy(p) => p.acme_challenge(token, key_authorization).await,
        }
    }

    /// Responses per service and color, counted by the proxy.
    pub async fn counters(&self) -> Result<Counters, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.counters().await,
            ProxyDriver::Haproxy(p) => p.counters().await,
        }
    }
}
