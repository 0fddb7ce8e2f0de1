//! The only code that touches the outside: Docker (bollard), nginx, HAProxy.
//! `route` holds what the proxy drivers share, `reload` the mechanics of a
//! checked config change; `proxy` dispatches over the two drivers and
//! `managed` runs a proxy process teal owns.

mod batch;
pub mod docker;
pub mod haproxy;
pub mod managed;
pub mod nginx;
pub mod proxy;
pub mod reload;
pub mod route;
