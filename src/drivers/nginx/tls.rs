//! HTTPS on teal's nginx servers, through the Lua balancer's module
//! (`certs.lua`): a host of a TLS route also listens on `https_listen`
//! with `ssl`, presents a fallback self-signed certificate until
//! `ssl_certificate_by_lua` finds the one teal put in the shared dict for
//! the client's SNI name, answers ACME HTTP-01 tokens from the dict, and
//! redirects plain HTTP with a 308 once its certificate is installed.
//! Certificates change through the control socket, never by a reload.
//! Rendered only for hosts of TLS routes: a plain route's server is as
//! before.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::balancer::Balancer;
use crate::drivers::route::RouteSpec;

/// The Lua module, embedded in the generated `teal_balancer.conf`.
pub const LUA: &str = include_str!("certs.lua");

/// Where HTTPS is served and the files it needs, beside the balancer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// `proxy.https_listen`, e.g. `0.0.0.0:443`.
    pub https: String,
    /// The balancer's directory (0700, teal's).
    pub dir: PathBuf,
}

impl Tls {
    /// HTTPS on `https` with the files in the balancer's directory.
    pub fn new(https: &str, b: &Balancer) -> Tls {
        Tls {
            https: https.to_string(),
            dir: b.dir().to_path_buf(),
        }
    }

    /// The store of the fallback certificate (`default.pem`, chain then
    /// key: nginx reads both from the one file).
    pub fn fallback_dir(&self) -> PathBuf {
        self.dir.join("fallback")
    }

    pub fn fallback(&self) -> PathBuf {
        self.fallback_dir().join("default.pem")
    }

    /// The store of installed certificates, `<service>.pem`: what a
    /// restarted nginx loads into its empty dict.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs")
    }

    /// One line per installed certificate: `<service> <sha256> <hosts>`.
    pub fn certs_list(&self) -> PathBuf {
        self.dir.join("balancer.certs")
    }
}

/// What a host's server does for HTTPS, from the TLS routes on it.
pub(super) struct HostTls {
    redirect: bool,
    pub(super) hsts: Option<u64>,
}

/// The TLS of `host`: None when no route on it has `tls`. Several routes
/// share a host under different paths: any one asking for the redirect
/// gets it, the first HSTS age wins (as HAProxy's rules do).
pub(super) fn of_host(routes: &[RouteSpec], host: &str) -> Option<HostTls> {
    let tls: Vec<_> = routes
        .iter()
        .filter(|r| r.hosts().any(|h| h == host))
        .filter_map(|r| r.tls.as_ref())
        .collect();
    (!tls.is_empty()).then(|| HostTls {
        redirect: tls.iter().any(|t| t.redirect),
        hsts: tls.iter().find_map(|t| t.hsts).map(|d| d.as_secs()),
    })
}

/// The lines of a TLS host's server after its plain `listen`.
pub(super) fn server_lines(out: &mut String, h: &HostTls, tls: &Tls, host_lua: &str) {
    let fallback = tls.fallback().display().to_string();
    let _ = writeln!(
        out,
        "    listen {} ssl;\n    ssl_certificate {fallback};\n    ssl_certificate_key {fallback};\n    ssl_certificate_by_lua_block {{ require(\"teal_certs\").cert() }}\n    rewrite_by_lua_block {{ require(\"teal_certs\").plain({host_lua}, {}) }}",
        tls.https, h.redirect
    );
    if let Some(age) = h.hsts {
        let _ = writeln!(
            out,
            "    header_filter_by_lua_block {{ require(\"teal_certs\").hsts({age}) }}"
        );
    }
}

/// The 404 of a TLS host's paths no route serves: from Lua, so the
/// server's ACME answers and redirect (rewrite phase) still run, which
/// `return` (run before them) would skip.
pub(super) const NO_ROUTE: &str =
    "    location / { content_by_lua_block { ngx.status = 404; ngx.print(\"no teal route for this path\\n\") } }\n";

/// The `teal_balancer.conf` parts of the certificates: the dict, the
/// module, its restore after a restart (Lua lines in `init_by_lua`) and
/// its control locations.
pub(super) fn balancer_parts(b: &Balancer, lua: impl Fn(&str) -> String) -> (String, String, String) {
    let tls = Tls::new("", b);
    let dict = "lua_shared_dict teal_certs 16m;\n".to_string();
    let init = format!(
        "    package.loaded.teal_certs = (function()\n{LUA}\n    end)()\n    require(\"teal_certs\").load_file({}, {})\n",
        lua(&tls.certs_list().display().to_string()),
        lua(&tls.certs_dir().display().to_string())
    );
    let control = "    location /certs { content_by_lua_block { require(\"teal_certs\").control() } }\n    location /acme/ { content_by_lua_block { require(\"teal_certs\").control() } }\n".to_string();
    (dict, init, control)
}
