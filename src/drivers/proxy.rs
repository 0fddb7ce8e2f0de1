//! The proxy boundary: one type over the two real drivers (nginx,
//! HAProxy). The engine upserts one service's route at a time; observation
//! reports the weights and peers of each color as the proxy itself
//! records them, and the response counters per color feed analysis.

use std::collections::BTreeMap;

use super::haproxy::Haproxy;
use super::nginx::Nginx;
pub use super::route::{Backend, Counters, Counts, ObservedRoute, PreviewRoute, ProxyError, RouteSpec};

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
            ProxyDriver::Nginx(p) => p.apply(route).await,
            ProxyDriver::Haproxy(p) => p.apply(route).await,
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

    /// Responses per service and color, counted by the proxy.
    pub async fn counters(&self) -> Result<Counters, ProxyError> {
        match self {
            ProxyDriver::Nginx(p) => p.counters().await,
            ProxyDriver::Haproxy(p) => p.counters().await,
        }
    }
}
