//! The only code that touches the outside: Docker (bollard), nginx, HAProxy.

pub mod docker;
pub mod haproxy;
pub mod managed;
pub mod nginx;
pub mod proxy;
