//! Helpers of the route-TLS tests on both proxies (`tls_proxy` on
//! HAProxy, `tls_nginx` on nginx): a managed proxy on free HTTP and HTTPS
//! ports, a TLS route, and curl with SNI (`--resolve`) to see what a
//! client is served.

use std::path::Path;
use std::process::Command;

use super::free_port;
use teal::drivers::managed::{self, Managed, ManagedSpec};
use teal::drivers::proxy::{Backend, ProxyDriver, RouteSpec};
use teal::spec::{PerColor, RouteTls, TlsSource};

/// Fails (never skips) when a tool the test needs is missing.
pub fn need(tool: &str) {
    let ok = Command::new(tool).arg("--version").output().is_ok() || Command::new(tool).arg("version").output().is_ok();
    assert!(ok, "{tool} is needed: apt-get install -y {tool}");
}

/// curl's status and headers, and its verbose output (with the served
/// certificate's subject line). `ca: None` accepts any certificate.
pub fn curl(url: &str, resolve: &str, ca: Option<&Path>) -> (String, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "-v",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--max-time",
        "5",
        "--resolve",
        resolve,
        url,
    ]);
    match ca {
        Some(ca) => c.arg("--cacert").arg(ca),
        None => c.arg("-k"),
    };
    let out = c.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The body curl gets (plain HTTP, or HTTPS accepting any certificate).
pub fn curl_body(url: &str, resolve: &str) -> String {
    let out = Command::new("curl")
        .args(["-sSk", "--max-time", "5", "--resolve", resolve, url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `web` on shop.test (alias www.shop.test) with TLS from `cert` and
/// `key`, redirect and a one-hour HSTS, all on blue at `addr`.
pub fn route(addr: std::net::SocketAddr, cert: &Path, key: &Path) -> RouteSpec {
    RouteSpec {
        service: "web".into(),
        host: "shop.test".into(),
        aliases: vec!["www.shop.test".into()],
        path: "/".into(),
        tls: Some(RouteTls {
            source: TlsSource::Files {
                cert: cert.display().to_string(),
                key: key.display().to_string(),
            },
            redirect: true,
            hsts: Some(std::time::Duration::from_secs(3600)),
        }),
        backends: PerColor {
            blue: Backend {
                weight: 100,
                addrs: vec![addr],
            },
            green: Backend::default(),
        },
        preview: None,
        commit: "c1".into(),
        traffic: Default::default(),
        next: None,
        route_hash: "h".into(),
    }
}

/// A managed proxy (`spec` of `dir/proxy` and a listen address) on free
/// HTTP and HTTPS ports: the proxy, its driver and the two ports.
pub async fn start(dir: &Path, spec: fn(&Path, &str) -> ManagedSpec) -> (Managed, ProxyDriver, u16, u16) {
    let (http, https) = (free_port(), free_port());
    let spec = ManagedSpec {
        https: format!("127.0.0.1:{https}"),
        ..spec(&dir.join("proxy"), &format!("127.0.0.1:{http}"))
    };
    let (m, driver) = managed::start(&spec).await.unwrap();
    (m, driver, http, https)
}
