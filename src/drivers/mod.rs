//! The only code that touches the outside: Docker (bollard), nginx, HAProxy.

pub mod docker;
