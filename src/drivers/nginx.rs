//! nginx driver. Each service gets `teal-<service>.conf` in the configured
//! directory: a header line recording service, color, commit and route (as
//! JSON) with the sha256 of the rest, then its upstreams. The server blocks
//! live in `teal-servers.conf`, generated from all service headers and
//! grouped by host, since several services may share a host under
//! different paths. Every change is written atomically, checked with the
//! configured test command (`nginx -t`), and only then reloaded; a rejected
//! config is rolled back so the serving nginx never sees it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::proxy::{
    config_token, run, sha256, wait_for_config, write_atomic, ObservedRoute, ProxyError, RouteSpec, CONFIG_HOST,
    DRIFTED,
};

/// Where the managed files go and how nginx is checked and reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxConfig {
    pub conf_dir: PathBuf,
    /// e.g. `[nginx, -t]`
    pub test: Vec<String>,
    /// e.g. `[nginx, -s, reload]`
    pub reload: Vec<String>,
    /// `listen` address of the generated servers, e.g. `0.0.0.0:80`.
    pub listen: String,
    /// false: `keepalive_timeout 0` on teal's servers, so reloads never cut
    /// a keep-alive request.
    pub client_keepalive: bool,
}

#[derive(Debug)]
pub struct Nginx {
    config: NginxConfig,
    /// One change at a time: services converge concurrently.
    lock: Mutex<()>,
}

const SERVERS: &str = "teal-servers.conf";
const HEADER: &str = "# teal ";

/// What the header of a service file records.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    route: RouteSpec,
    sha256: String,
}

impl Nginx {
    pub fn new(config: NginxConfig) -> Nginx {
        Nginx {
            config,
            lock: Mutex::new(()),
        }
    }

    fn service_path(&self, service: &str) -> PathBuf {
        self.config.conf_dir.join(format!("teal-{service}.conf"))
    }

    /// Reads every managed service file; a file whose body no longer matches
    /// its recorded hash is reported as drifted.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        let mut out = BTreeMap::new();
        let servers_drifted = match read_opt(&self.config.conf_dir.join(SERVERS))? {
            Some(text) => verify(&text).is_none(),
            None => false,
        };
        for (service, text) in self.service_files()? {
            let obs = match parse_meta(&text) {
                Some(meta) if !servers_drifted => ObservedRoute {
                    live: Some(meta.route.active),
                    route_hash: Some(meta.route.route_hash.clone()),
                    addrs: meta.route.active_addrs.clone(),
                },
                Some(meta) => ObservedRoute {
                    live: Some(meta.route.active),
                    route_hash: Some(DRIFTED.into()),
                    addrs: meta.route.active_addrs,
                },
                None => ObservedRoute {
                    live: header_color(&text),
                    route_hash: Some(DRIFTED.into()),
                    addrs: vec![],
                },
            };
            out.insert(service, obs);
        }
        Ok(out)
    }

    fn service_files(&self) -> Result<Vec<(String, String)>, ProxyError> {
        let dir = &self.config.conf_dir;
        let io = |source| ProxyError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut out = vec![];
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let name = entry.map_err(io)?.file_name().to_string_lossy().into_owned();
            let Some(service) = name.strip_prefix("teal-").and_then(|n| n.strip_suffix(".conf")) else {
                continue;
            };
            if name == SERVERS {
                continue;
            }
            if let Some(text) = read_opt(&dir.join(&name))? {
                out.push((service.to_string(), text));
            }
        }
        Ok(out)
    }

    /// Writes the service's file and the servers file, tests, reloads.
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        let _one = self.lock.lock().await;
        let path = self.service_path(&route.service);
        let text = render_service(route);
        self.change(&route.service, vec![(path, Some(text))]).await
    }

    /// Removes the service's file and its servers.
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        let _one = self.lock.lock().await;
        let path = self.service_path(service);
        if !path.exists() {
            return Ok(());
        }
        self.change(service, vec![(path, None)]).await
    }

    /// Applies file changes plus a regenerated servers file; rolls all of
    /// them back when the test command rejects the result.
    async fn change(&self, service: &str, files: Vec<(PathBuf, Option<String>)>) -> Result<(), ProxyError> {
        let servers_path = self.config.conf_dir.join(SERVERS);
        let mut backup = vec![(servers_path.clone(), read_opt(&servers_path)?)];
        for (path, text) in &files {
            backup.push((path.clone(), read_opt(path)?));
            put(path, text.as_deref())?;
        }
        // Routes from every header, drifted bodies included: a hand-edited
        // upstream must not make its server disappear.
        let routes: Vec<RouteSpec> = self
            .service_files()?
            .iter()
            .filter_map(|(_, t)| parse_header(t).map(|m| m.route))
            .collect();
        let token = config_token();
        put(
            &servers_path,
            Some(&render_servers(
                &routes,
                &self.config.listen,
                &token,
                self.config.client_keepalive,
            )),
        )?;
        if let Err((command, output)) = run(&self.config.test).await {
            for (path, text) in backup.iter().rev() {
                put(path, text.as_deref())?;
            }
            return Err(ProxyError::Rejected {
                service: service.to_string(),
                command,
                output,
            });
        }
        run(&self.config.reload)
            .await
            .map_err(|(command, output)| ProxyError::Command { command, output })?;
        wait_for_config(&self.config.listen, &token).await
    }
}

fn read_opt(path: &Path) -> Result<Option<String>, ProxyError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProxyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn put(path: &Path, text: Option<&str>) -> Result<(), ProxyError> {
    match text {
        Some(t) => write_atomic(path, t),
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProxyError::Io {
                path: path.display().to_string(),
                source,
            }),
        },
    }
}

/// The body after the header line, if its hash matches the header's.
fn verify(text: &str) -> Option<&str> {
    let (header, body) = text.split_once('\n')?;
    let recorded = header.rsplit("sha256=").next()?;
    (sha256(body) == recorded.trim()).then_some(body)
}

/// The header's record, whether or not the body still matches it.
fn parse_header(text: &str) -> Option<Meta> {
    let header = text.lines().next()?;
    serde_json::from_str(header.strip_prefix(HEADER)?).ok()
}

/// The header's record, only when the body matches its recorded hash.
fn parse_meta(text: &str) -> Option<Meta> {
    let meta = parse_header(text)?;
    let body = text.split_once('\n')?.1;
    (sha256(body) == meta.sha256).then_some(meta)
}

/// The color named in a header that no longer parses or verifies.
fn header_color(text: &str) -> Option<crate::spec::Color> {
    let header = text.lines().next()?;
    let at = header.find("\"active\":\"")? + 10;
    header[at..].split('"').next()?.parse().ok()
}

/// Quotes a value for nginx: `"..."` with `"` and `\` escaped.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn upstream(out: &mut String, name: &str, addrs: &[SocketAddr]) {
    let _ = writeln!(out, "upstream {name} {{");
    if addrs.is_empty() {
        // nginx needs a server; nothing runs, so answer 502.
        out.push_str("    server 127.0.0.1:1 down;\n");
    }
    for a in addrs {
        let _ = writeln!(out, "    server {a} max_fails=0;");
    }
    out.push_str("    keepalive 32;\n}\n");
}

/// `teal-<service>.conf`: header + upstreams.
pub fn render_service(route: &RouteSpec) -> String {
    let mut body = String::new();
    let name = upstream_name(&route.service);
    upstream(&mut body, &name, &route.active_addrs);
    if let Some(p) = &route.preview {
        upstream(&mut body, &format!("{name}_preview"), &p.addrs);
    }
    let meta = Meta {
        route: route.clone(),
        sha256: sha256(&body),
    };
    format!(
        "{HEADER}{}\n{body}",
        serde_json::to_string(&meta).expect("meta serialises")
    )
}

fn upstream_name(service: &str) -> String {
    format!("teal_{}", service.replace('-', "_"))
}

fn location(out: &mut String, path: &str, upstream: &str, allow: Option<&[ipnet::IpNet]>) {
    let _ = writeln!(out, "    location {} {{", q(path));
    if let Some(nets) = allow.filter(|n| !n.is_empty()) {
        for n in nets {
            let _ = writeln!(out, "        allow {n};");
        }
        out.push_str("        deny all;\n");
    }
    let _ = writeln!(out, "        proxy_pass http://{upstream};");
    out.push_str(
        "        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_next_upstream error timeout http_502 http_503;\n    }\n",
    );
}

/// `teal-servers.conf`: one server per host with a location per route.
/// A reserved server answers with `token`, so a reload can be awaited.
pub fn render_servers(routes: &[RouteSpec], listen: &str, token: &str, client_keepalive: bool) -> String {
    // host -> [(path, upstream, allow)]
    type Loc<'a> = (&'a str, String, Option<&'a [ipnet::IpNet]>);
    let mut hosts: BTreeMap<&str, Vec<Loc<'_>>> = BTreeMap::new();
    for r in routes {
        hosts
            .entry(&r.host)
            .or_default()
            .push((&r.path, upstream_name(&r.service), None));
        if let Some(p) = &r.preview {
            let up = format!("{}_preview", upstream_name(&r.service));
            hosts.entry(&p.host).or_default().push(("/", up, Some(&p.allow)));
        }
    }
    let mut body = format!(
        "server {{\n    listen {listen};\n    server_name {CONFIG_HOST};\n    return 200 {};\n}}\n",
        q(token)
    );
    for (host, locs) in hosts {
        let _ = writeln!(body, "server {{\n    listen {listen};\n    server_name {};", q(host));
        if !client_keepalive {
            body.push_str("    keepalive_timeout 0;\n");
        }
        for (path, up, allow) in locs {
            location(&mut body, path, &up, allow);
        }
        body.push_str("}\n");
    }
    format!(
        "# teal: generated from the teal-<service>.conf headers; do not edit. sha256={}\n{body}",
        sha256(&body)
    )
}
