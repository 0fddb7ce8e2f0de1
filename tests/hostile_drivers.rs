//! Attacks on and through the drivers (issue 22), each against the real
//! thing: service names that take over teal's own proxy files and backends
//! (`names`), proxy workers running as root (`workers`), env values in
//! container labels (`env_labels`), Swarm task ports open past the proxy
//! (`swarm_ports`). Shared here: a managed proxy of each kind and a route.

mod common;
#[path = "hostile_drivers/env_labels.rs"]
mod env_labels;
#[path = "hostile_drivers/names.rs"]
mod names;
#[path = "hostile_drivers/swarm_ports.rs"]
mod swarm_ports;
#[path = "hostile_drivers/workers.rs"]
mod workers;

use common::{free_port, proxy_or_fail};
use teal::config::NginxSwitch;
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::proxy::{Backend, ProxyDriver, RouteSpec};
use teal::spec::PerColor;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Nginx,
    NginxReload,
    Haproxy,
}

pub(crate) struct Proxy {
    pub managed: Managed,
    pub driver: ProxyDriver,
    pub listen: String,
    _dir: tempfile::TempDir,
}

fn spec(kind: Kind, dir: &std::path::Path, listen: &str) -> ManagedSpec {
    match kind {
        Kind::Nginx => ManagedSpec::nginx(dir, listen),
        Kind::NginxReload => ManagedSpec {
            switch: NginxSwitch::Reload,
            ..ManagedSpec::nginx(dir, listen)
        },
        Kind::Haproxy => ManagedSpec::haproxy(dir, listen),
    }
}

pub(crate) async fn start(kind: Kind) -> Proxy {
    proxy_or_fail(match kind {
        Kind::Haproxy => "haproxy",
        _ => "nginx",
    });
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let (managed, driver) = managed::start(&spec(kind, dir.path(), &listen)).await.unwrap();
    Proxy {
        managed,
        driver,
        listen,
        _dir: dir,
    }
}

/// All traffic of `service` on `host` to blue at `addr`.
pub(crate) fn route(service: &str, host: &str, addr: std::net::SocketAddr) -> RouteSpec {
    let backends = PerColor::<Backend> {
        blue: Backend {
            weight: 100,
            addrs: vec![addr],
        },
        green: Backend::default(),
    };
    RouteSpec {
        service: service.into(),
        host: host.into(),
        aliases: vec![],
        tls: None,
        path: "/".into(),
        backends,
        preview: None,
        commit: "c0ffee".into(),
        traffic: Default::default(),
        next: None,
        route_hash: format!("hash-{service}"),
    }
}
