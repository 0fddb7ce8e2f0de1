//! `proxy:` in the host config: which proxy teal drives, where it serves
//! HTTP and HTTPS, and the Debian layout of an operator's HAProxy or nginx.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    Haproxy,
    Nginx,
}

impl std::fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyKind::Haproxy => "haproxy",
            ProxyKind::Nginx => "nginx",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub kind: ProxyKind,
    /// Address the proxy serves traffic on.
    #[serde(default = "default_proxy_listen")]
    pub listen: String,
    /// Address the proxy serves HTTPS on, for routes with `tls`. Default
    /// `0.0.0.0:443` once a route asks for TLS.
    #[serde(default)]
    pub https_listen: Option<String>,
    #[serde(default)]
    pub haproxy: HaproxySettings,
    #[serde(default)]
    pub nginx: NginxSettings,
    /// True: teal starts and owns the proxy process itself (demo, tests).
    #[serde(default)]
    pub managed: bool,
    /// With `managed`: the user the proxy's workers run as; default the
    /// distribution's (`www-data` for nginx, `haproxy`), else `nobody`.
    #[serde(default)]
    pub user: Option<String>,
}

/// An operator's HAProxy; each field defaults to Debian's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaproxySettings {
    pub config: PathBuf,
    pub socket: PathBuf,
    pub reload: Vec<String>,
}

impl Default for HaproxySettings {
    fn default() -> Self {
        HaproxySettings {
            config: "/etc/haproxy/teal.cfg".into(),
            socket: "/run/haproxy/admin.sock".into(),
            reload: vec!["systemctl".into(), "reload".into(), "haproxy".into()],
        }
    }
}

/// An operator's nginx; each field defaults to Debian's layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NginxSettings {
    pub conf_dir: PathBuf,
    pub test: Vec<String>,
    pub reload: Vec<String>,
    /// Keep client connections alive (default true). false: every response
    /// closes its connection, so a reload can cut no keep-alive request: no
    /// failed requests during a switch, at the cost of a connection per
    /// request (see BENCHMARKS.md).
    #[serde(default = "default_true")]
    pub client_keepalive: bool,
    /// How traffic moves: `balancer` (default) through teal's Lua balancer,
    /// one call on a unix socket and no reload; `reload` rewrites the
    /// upstreams and reloads nginx (for an nginx without the Lua module).
    #[serde(default)]
    pub switch: NginxSwitch,
}

/// How the nginx driver moves traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NginxSwitch {
    /// teal's Lua balancer (Debian: libnginx-mod-http-lua, lua-resty-core).
    #[default]
    Balancer,
    /// Rewrite the upstreams and reload nginx.
    Reload,
}

impl Default for NginxSettings {
    fn default() -> Self {
        NginxSettings {
            conf_dir: "/etc/nginx/conf.d".into(),
            test: vec!["nginx".into(), "-t".into()],
            // Debian's service command, as for HAProxy: systemd runs the
            // unit's own reload (nginx -s reload) and knows about it.
            reload: vec!["systemctl".into(), "reload".into(), "nginx".into()],
            client_keepalive: true,
            switch: NginxSwitch::Balancer,
        }
    }
}

impl ProxyConfig {
    /// Where HTTPS is served when some route asks for it.
    pub fn https_listen(&self) -> String {
        self.https_listen.clone().unwrap_or_else(|| "0.0.0.0:443".into())
    }
}

fn default_true() -> bool {
    true
}

pub(super) fn default_proxy_listen() -> String {
    "0.0.0.0:80".into()
}
