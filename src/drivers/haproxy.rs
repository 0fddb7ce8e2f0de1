//! HAProxy driver. teal owns one config file: a frontend routing by host and
//! path prefix, and per service a backend (and a preview backend) with
//! server slots for both colors. Moving traffic between colors and changing
//! addresses go through the runtime API on the stats socket, with no
//! reload, so no connection is dropped. A reload happens only when the
//! structure changes (services, routes, slot counts), after `haproxy -c`
//! accepted the new file. The file always holds the current addresses and
//! states too, so a restarted HAProxy comes back serving the same colors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use super::proxy::{
    config_token, run, sha256, wait_for_config, write_atomic, ObservedRoute, ProxyError, RouteSpec, CONFIG_HOST,
    DRIFTED,
};
use crate::spec::Color;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyConfig {
    /// The file teal owns, e.g. `/etc/haproxy/teal.cfg`.
    pub config: PathBuf,
    /// The admin stats socket, e.g. `/run/haproxy/admin.sock`.
    pub socket: PathBuf,
    /// Reload command, e.g. `[systemctl, reload, haproxy]`.
    pub reload: Vec<String>,
    /// Frontend bind address, e.g. `0.0.0.0:80`.
    pub listen: String,
    /// The haproxy binary, for `-c` checks.
    pub binary: String,
    /// Extra `global` lines (managed mode adds a pidfile).
    pub global: Vec<String>,
}

#[derive(Debug)]
pub struct Haproxy {
    config: HaproxyConfig,
    lock: Mutex<()>,
}

const ROUTE: &str = "# teal-route ";
/// Address of an empty slot: nothing listens there.
const PLACEHOLDER: &str = "127.0.0.1:1";
const MIN_SLOTS: usize = 4;

impl Haproxy {
    pub fn new(config: HaproxyConfig) -> Haproxy {
        Haproxy {
            config,
            lock: Mutex::new(()),
        }
    }

    fn read_routes(&self) -> Result<(BTreeMap<String, RouteSpec>, bool), ProxyError> {
        let text = match std::fs::read_to_string(&self.config.config) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((BTreeMap::new(), false)),
            Err(source) => {
                return Err(ProxyError::Io {
                    path: self.config.config.display().to_string(),
                    source,
                })
            }
        };
        let (header, body) = text.split_once('\n').unwrap_or(("", ""));
        let drifted = header.rsplit("sha256=").next().map(str::trim) != Some(sha256(body).as_str());
        let routes = text
            .lines()
            .filter_map(|l| l.strip_prefix(ROUTE))
            .filter_map(|j| serde_json::from_str::<RouteSpec>(j).ok())
            .map(|r| (r.service.clone(), r))
            .collect();
        Ok((routes, drifted))
    }

    /// Live colors from `show servers state`; hashes from the config file.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        let (routes, drifted) = self.read_routes()?;
        if routes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let state = self.runtime(&["show servers state".to_string()]).await?;
        let enabled = enabled_servers(&state);
        let mut out = BTreeMap::new();
        for (service, route) in routes {
            let be = backend(&service);
            let mut live = None;
            let mut addrs = vec![];
            for c in Color::ALL {
                let on: Vec<SocketAddr> = enabled
                    .iter()
                    .filter(|(b, s, _)| *b == be && s.starts_with(c.as_str()))
                    .map(|(_, _, a)| *a)
                    .collect();
                if !on.is_empty() {
                    live = Some(c);
                    addrs = on;
                }
            }
            let hash = if drifted {
                DRIFTED.to_string()
            } else {
                route.route_hash.clone()
            };
            out.insert(
                service,
                ObservedRoute {
                    live,
                    route_hash: Some(hash),
                    addrs,
                },
            );
        }
        Ok(out)
    }

    /// Upserts one service: runtime API when only addresses or colors
    /// change, checked rewrite + reload when the structure changes.
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        let _one = self.lock.lock().await;
        let (mut routes, _) = self.read_routes()?;
        let before = structure(&routes);
        routes.insert(route.service.clone(), route.clone());
        self.write(&route.service, &routes, before != structure(&routes))
            .await?;
        if before == structure(&routes) {
            self.runtime(&switch_commands(route, slots(route))).await?;
        }
        Ok(())
    }

    /// Removes one service's backends and routes (a reload).
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        let _one = self.lock.lock().await;
        let (mut routes, _) = self.read_routes()?;
        if routes.remove(service).is_none() {
            return Ok(());
        }
        self.write(service, &routes, true).await
    }

    /// Writes the whole file (checked by `haproxy -c` first when it will be
    /// reloaded), then reloads if asked.
    async fn write(&self, service: &str, routes: &BTreeMap<String, RouteSpec>, reload: bool) -> Result<(), ProxyError> {
        let token = config_token();
        let text = render(routes, &self.config, &token);
        if reload {
            let tmp = self.config.config.with_extension("check.cfg");
            write_atomic(&tmp, &text)?;
            let check = [
                self.config.binary.clone(),
                "-c".into(),
                "-q".into(),
                "-f".into(),
                tmp.display().to_string(),
            ];
            let checked = run(&check).await;
            let _ = std::fs::remove_file(&tmp);
            if let Err((command, output)) = checked {
                return Err(ProxyError::Rejected {
                    service: service.to_string(),
                    command,
                    output,
                });
            }
        }
        write_atomic(&self.config.config, &text)?;
        if reload {
            run(&self.config.reload)
                .await
                .map_err(|(command, output)| ProxyError::Command { command, output })?;
            wait_for_config(&self.config.listen, &token).await?;
            self.wait_for_socket().await?;
        }
        Ok(())
    }

    async fn wait_for_socket(&self) -> Result<(), ProxyError> {
        for _ in 0..100 {
            if self.runtime(&["show info".to_string()]).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.runtime(&["show info".to_string()]).await.map(|_| ())
    }

    /// The pid of the worker serving traffic (changes on every reload).
    pub async fn worker_pid(&self) -> Result<u32, ProxyError> {
        let info = self.runtime(&["show info".to_string()]).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| ProxyError::Other(format!("no Pid in `show info`: {info}")))
    }

    /// Sends commands on the stats socket (one connection, `;`-separated)
    /// and returns the answer; any error line fails the call.
    async fn runtime(&self, cmds: &[String]) -> Result<String, ProxyError> {
        let socket = self.config.socket.display().to_string();
        let err = |message: String| ProxyError::Runtime {
            socket: socket.clone(),
            message,
        };
        let talk = async {
            let mut s = UnixStream::connect(&self.config.socket).await?;
            s.write_all(format!("{}\n", cmds.join(";")).as_bytes()).await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        let out = tokio::time::timeout(Duration::from_secs(10), talk)
            .await
            .map_err(|_| err("no answer within 10s".into()))?
            .map_err(|e| err(e.to_string()))?;
        let bad = out.lines().find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("unknown")
                || l.contains("no such")
                || l.contains("invalid")
                || l.contains("require")
                || l.contains("denied")
        });
        match bad {
            Some(line) => Err(err(format!("{} -> {line}", cmds.join("; ")))),
            None => Ok(out),
        }
    }
}

/// (backend, server, addr) of servers that are running. Judged by the
/// operational state (2 = running): a server declared `disabled` keeps its
/// config-maintenance flag in the admin state after `state ready`.
fn enabled_servers(state: &str) -> Vec<(String, String, SocketAddr)> {
    state
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 19 || f[5] != "2" {
                return None;
            }
            let addr: SocketAddr = format!("{}:{}", f[4], f[18]).parse().ok()?;
            (addr.to_string() != PLACEHOLDER).then(|| (f[1].to_string(), f[3].to_string(), addr))
        })
        .collect()
}

fn backend(service: &str) -> String {
    format!("teal_{}", service.replace('-', "_"))
}

/// Slots per color: enough for every address, at least MIN_SLOTS, a power of two.
fn slots(route: &RouteSpec) -> usize {
    let most = route
        .active_addrs
        .len()
        .max(route.preview.as_ref().map_or(0, |p| p.addrs.len()));
    most.max(MIN_SLOTS).next_power_of_two()
}

/// What forces a reload when it changes: services, routes, slot counts.
fn structure(routes: &BTreeMap<String, RouteSpec>) -> String {
    let parts: Vec<String> = routes
        .values()
        .map(|r| {
            let pv = r.preview.as_ref().map(|p| format!("{}|{:?}", p.host, p.allow));
            format!("{}|{}|{}|{:?}|{}", r.service, r.host, r.path, pv, slots(r))
        })
        .collect();
    parts.join("\n")
}

/// Runtime commands that make `route.active` serve and the other color
/// idle (and the reverse on the preview backend): the new color's servers
/// are enabled before the old ones are disabled, so a request always has a
/// ready server.
fn switch_commands(route: &RouteSpec, slots: usize) -> Vec<String> {
    let mut enable = vec![];
    let mut disable = vec![];
    let mut set = |be: &str, color: Color, addrs: &[SocketAddr], serving: bool| {
        for i in 0..slots {
            let srv = format!("{be}/{color}_{i}");
            match addrs.get(i).filter(|_| serving) {
                Some(a) => {
                    enable.push(format!("set server {srv} addr {} port {}", a.ip(), a.port()));
                    enable.push(format!("set server {srv} state ready"));
                }
                None => disable.push(format!("set server {srv} state maint")),
            }
        }
    };
    let be = backend(&route.service);
    set(&be, route.active, &route.active_addrs, true);
    set(&be, route.active.other(), &[], false);
    if let Some(p) = &route.preview {
        let pbe = format!("{be}_preview");
        set(&pbe, p.idle, &p.addrs, true);
        set(&pbe, p.idle.other(), &[], false);
    }
    enable.extend(disable);
    enable
}

fn server_lines(out: &mut String, serving: Color, addrs: &[SocketAddr], slots: usize) {
    for c in Color::ALL {
        for i in 0..slots {
            match addrs.get(i).filter(|_| c == serving) {
                Some(a) => {
                    let _ = writeln!(out, "    server {c}_{i} {a}");
                }
                None => {
                    let _ = writeln!(out, "    server {c}_{i} {PLACEHOLDER} disabled");
                }
            }
        }
    }
}

/// The whole managed config.
/// `token` is served on the reserved config host so a reload can be awaited.
pub fn render(routes: &BTreeMap<String, RouteSpec>, cfg: &HaproxyConfig, token: &str) -> String {
    let mut b = String::new();
    for r in routes.values() {
        let _ = writeln!(b, "{ROUTE}{}", serde_json::to_string(r).expect("route serialises"));
    }
    let _ = writeln!(
        b,
        "global\n    stats socket {} mode 600 level admin expose-fd listeners",
        cfg.socket.display()
    );
    for g in &cfg.global {
        let _ = writeln!(b, "    {g}");
    }
    b.push_str("defaults\n    mode http\n    option http-keep-alive\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n    timeout http-keep-alive 60s\n");
    let _ = writeln!(b, "frontend teal\n    bind {}", cfg.listen);
    b.push_str("    http-request set-var(txn.host) req.hdr(host),field(1,:),lower\n");
    let _ = writeln!(b, "    http-request return status 200 content-type text/plain string {token} if {{ var(txn.host) -m str {CONFIG_HOST} }}");
    // Longest path first, so /api wins over / on a shared host.
    let mut by_path: Vec<&RouteSpec> = routes.values().collect();
    by_path.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
    for r in &by_path {
        let be = backend(&r.service);
        if let Some(p) = &r.preview {
            let _ = writeln!(b, "    acl {be}_pv var(txn.host) -m str {}", p.host);
            if !p.allow.is_empty() {
                let nets: Vec<String> = p.allow.iter().map(|n| n.to_string()).collect();
                let _ = writeln!(b, "    http-request deny if {be}_pv !{{ src {} }}", nets.join(" "));
            }
            let _ = writeln!(b, "    use_backend {be}_preview if {be}_pv");
        }
        let _ = writeln!(
            b,
            "    use_backend {be} if {{ var(txn.host) -m str {} }} {{ path_beg {} }}",
            r.host, r.path
        );
    }
    b.push_str("    default_backend teal_no_route\nbackend teal_no_route\n    http-request return status 404 content-type text/plain string \"no teal route for this host\"\n");
    for r in routes.values() {
        let be = backend(&r.service);
        let n = slots(r);
        let _ = writeln!(b, "backend {be}");
        server_lines(&mut b, r.active, &r.active_addrs, n);
        if let Some(p) = &r.preview {
            let _ = writeln!(b, "backend {be}_preview");
            server_lines(&mut b, p.idle, &p.addrs, n);
        }
    }
    format!("# teal: managed by teal; do not edit. sha256={}\n{b}", sha256(&b))
}
