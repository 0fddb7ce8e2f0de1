//! The only code that touches the outside: Docker (bollard), nginx, HAProxy,
//! and the fleet's peers (`peer`).
//! `route` holds what the proxy drivers share, `reload` the mechanics of a
//! checked config change; `proxy` dispatches over the two drivers and
//! `managed` runs a proxy process teal owns. `runtime` dispatches over who
//! runs the replicas: `docker` (containers) or `swarm` (Swarm services);
//! `paths` resolves host paths for the policy's bind checks; `tls` reads,
//! checks and stores certificates; `acme` orders them from an ACME CA;
//! `registry` lists a repository's tags (`teal bump --latest`);
//! `prometheus` reads a query's value for analysis.

pub mod acme;
pub mod age;
mod batch;
pub mod docker;
pub mod haproxy;
pub mod managed;
pub mod nginx;
pub mod paths;
pub mod peer;
pub mod prometheus;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod route;
pub mod runtime;
pub mod swarm;
pub mod tls;
