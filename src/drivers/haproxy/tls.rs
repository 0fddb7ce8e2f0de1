//! HTTPS in teal's HAProxy frontend: the TLS bind (a default certificate
//! and a crt-list teal changes through the runtime API), ACME HTTP-01
//! answers from a map, the 308 redirect of hosts whose certificate is
//! installed (a map too, so installing one needs no reload), and HSTS.
//! Rendered only when some route has `tls`, so a plain config is as before.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::drivers::route::RouteSpec;

/// The files of the TLS bind, in teal's directory for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub dir: PathBuf,
}

impl TlsFiles {
    /// Presented when no route's certificate matches the client's SNI.
    /// Its name holds a dot, which no service name may (a-z, 0-9, '-'),
    /// so a service called `default` never overwrites or removes it.
    pub fn default_cert(&self) -> PathBuf {
        self.dir.join(format!("{FALLBACK}.pem"))
    }
    /// One line per installed certificate: its file and host names.
    pub fn crt_list(&self) -> PathBuf {
        self.dir.join("teal.crtlist")
    }
    /// token -> key authorization of pending ACME HTTP-01 challenges.
    pub fn acme_map(&self) -> PathBuf {
        self.dir.join("acme.map")
    }
    /// host -> service, for hosts whose certificate is installed.
    pub fn hosts_map(&self) -> PathBuf {
        self.dir.join("hosts.map")
    }
    /// A service's certificate (chain then key).
    pub fn cert(&self, service: &str) -> PathBuf {
        self.dir.join(format!("{service}.pem"))
    }
}

/// The store name of the fallback certificate.
pub(super) const FALLBACK: &str = "teal.default";

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// The frontend lines for HTTPS, after its plain `bind`; empty when no
/// route has TLS.
pub(super) fn frontend(routes: &[&RouteSpec], https: &str, files: &TlsFiles) -> String {
    let tls: Vec<&&RouteSpec> = routes.iter().filter(|r| r.tls.is_some()).collect();
    if tls.is_empty() {
        return String::new();
    }
    let mut b = String::new();
    let _ = writeln!(
        b,
        "    bind {https} ssl crt {} crt-list {}",
        p(&files.default_cert()),
        p(&files.crt_list())
    );
    let token = format!("path,field(4,/),map({})", p(&files.acme_map()));
    let _ = writeln!(
        b,
        "    http-request return status 200 content-type text/plain lf-string \"%[{token}]\" if {{ path_beg /.well-known/acme-challenge/ }} {{ {token} -m found }}"
    );
    // Always referenced, so HAProxy loads the map that `add map` changes
    // (a map no rule names is unknown to the runtime API).
    let _ = writeln!(
        b,
        "    http-request set-var(txn.teal_cert) var(txn.host),map({}) if !{{ ssl_fc }}",
        p(&files.hosts_map())
    );
    let redirect: Vec<&str> = tls
        .iter()
        .filter(|r| r.tls.as_ref().is_some_and(|t| t.redirect))
        .flat_map(|r| r.hosts())
        .collect();
    if !redirect.is_empty() {
        let _ = writeln!(
            b,
            "    http-request redirect scheme https code 308 if !{{ ssl_fc }} {{ var(txn.host) -m str {} }} {{ var(txn.teal_cert) -m found }}",
            redirect.join(" ")
        );
    }
    for r in &tls {
        if let Some(age) = r.tls.as_ref().and_then(|t| t.hsts) {
            let _ = writeln!(
                b,
                "    http-response set-header Strict-Transport-Security \"max-age={}\" if {{ ssl_fc }} {{ var(txn.host) -m str {} }}",
                age.as_secs(),
                r.hosts().collect::<Vec<_>>().join(" ")
            );
        }
    }
    b
}

/// The crt-list line of a service's certificate: its file, served for
/// the route's host names only.
pub(super) fn crt_list_line(files: &TlsFiles, service: &str, hosts: &[String]) -> String {
    format!("{} {}", p(&files.cert(service)), hosts.join(" "))
}

/// Runtime commands that install or replace a certificate held in
/// memory as `path` (payload commands: one per connection).
pub(super) fn install_commands(path: &str, pem: &str, loaded: bool) -> Vec<(String, Option<String>)> {
    let mut out = vec![];
    if !loaded {
        out.push((format!("new ssl cert {path}"), None));
    }
    out.push((format!("set ssl cert {path} <<"), Some(pem.to_string())));
    out.push((format!("commit ssl cert {path}"), None));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{RouteTls, TlsSource};

    fn route(service: &str, host: &str, tls: Option<RouteTls>) -> RouteSpec {
        RouteSpec {
            service: service.into(),
            host: host.into(),
            aliases: vec![format!("www.{host}")],
            path: "/".into(),
            tls,
            backends: Default::default(),
            preview: None,
            commit: "c".into(),
            traffic: Default::default(),
            next: None,
            route_hash: "h".into(),
        }
    }

    #[test]
    fn no_service_name_is_the_fallback_certificates_file() {
        let files = TlsFiles { dir: "/s/tls".into() };
        for name in ["default", "teal-default", "teal", "fallback"] {
            assert_ne!(files.cert(name), files.default_cert(), "{name}");
        }
        let service_like = FALLBACK
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        assert!(
            !service_like,
            "the fallback's name must hold a byte no service name may"
        );
    }

    #[test]
    fn plain_routes_render_no_tls_and_tls_routes_redirect_once_installed() {
        let files = TlsFiles { dir: "/s/tls".into() };
        let plain = route("web", "shop.test", None);
        assert_eq!(frontend(&[&plain], "127.0.0.1:443", &files), "");
        let tls = route(
            "web",
            "shop.test",
            Some(RouteTls {
                source: TlsSource::Acme,
                redirect: true,
                hsts: Some(std::time::Duration::from_secs(31_536_000)),
            }),
        );
        let text = frontend(&[&plain, &tls], "127.0.0.1:443", &files);
        assert_eq!(
            text,
            "    bind 127.0.0.1:443 ssl crt /s/tls/teal.default.pem crt-list /s/tls/teal.crtlist\n    http-request return status 200 content-type text/plain lf-string \"%[path,field(4,/),map(/s/tls/acme.map)]\" if { path_beg /.well-known/acme-challenge/ } { path,field(4,/),map(/s/tls/acme.map) -m found }\n    http-request set-var(txn.teal_cert) var(txn.host),map(/s/tls/hosts.map) if !{ ssl_fc }\n    http-request redirect scheme https code 308 if !{ ssl_fc } { var(txn.host) -m str shop.test www.shop.test } { var(txn.teal_cert) -m found }\n    http-response set-header Strict-Transport-Security \"max-age=31536000\" if { ssl_fc } { var(txn.host) -m str shop.test www.shop.test }\n"
        );
        assert_eq!(
            crt_list_line(&files, "web", &["shop.test".into(), "www.shop.test".into()]),
            "/s/tls/web.pem shop.test www.shop.test"
        );
    }
}
