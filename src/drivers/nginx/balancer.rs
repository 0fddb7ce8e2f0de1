//! The client of teal's Lua balancer inside nginx (`balancer.lua`): pools
//! of peers with a weight per color, set and read over HTTP on a unix
//! socket in the state dir (never TCP), and the per-color response
//! counters. What teal sets is also written to a peers file first, which
//! nginx loads when it starts with an empty dict (after a restart).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::drivers::reload::{persist, read_opt};
use crate::drivers::route::{Backend, Counters, ProxyError, RouteSpec};
use crate::spec::{Color, Maintenance, Match, PerColor};

/// The Lua module, embedded in the generated `teal_balancer.conf`.
pub const LUA: &str = include_str!("balancer.lua");

/// Pools by name: a service's main route is its name, its preview
/// `<name>@preview`.
pub type Pools = BTreeMap<String, Pool>;

/// One pool: the peers and weight of each color, and the rules that
/// pick a color before the weights do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub colors: PerColor<Backend>,
    /// The cookie that keeps a client on one color (a bucket 0-99).
    pub sticky: Option<String>,
    /// Testers' requests, and the color they reach.
    pub testers: Option<(Match, Color)>,
    /// Answer every request with a 503 page.
    pub maintenance: Option<Maintenance>,
    /// New requests wait until then (ms since the epoch): the service's
    /// release command runs (`switch.pause`).
    pub pause_until: Option<u64>,
}

/// The pool name of a service's preview route.
pub fn preview_pool(service: &str) -> String {
    format!("{service}@preview")
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// The most teal reads of one answer on the socket: a peer that sends
/// more is cut off with an error, never read into memory.
pub const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Where the balancer listens and where its peers file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balancer {
    pub socket: PathBuf,
    pub peers_file: PathBuf,
}

impl Balancer {
    /// The balancer files in `dir` (created 0700: the socket nginx makes
    /// there is world-writable until teal narrows it).
    pub fn in_dir(dir: &Path) -> Balancer {
        Balancer {
            socket: dir.join("balancer.sock"),
            peers_file: dir.join("balancer.peers"),
        }
    }

    fn err(&self, message: impl Into<String>) -> ProxyError {
        ProxyError::Balancer {
            socket: self.socket.display().to_string(),
            message: message.into(),
        }
    }

    /// The directory of the socket: teal's files for this nginx.
    pub fn dir(&self) -> &Path {
        self.socket.parent().unwrap_or(Path::new("."))
    }

    /// Creates the directory of the socket and the peers file, mode 0700.
    pub fn prepare(&self) -> Result<(), ProxyError> {
        let dir = self.dir();
        let io = |source| ProxyError::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)
    }

    /// The pools nginx serves now.
    pub async fn pools(&self) -> Result<Pools, ProxyError> {
        let text = self.request("GET", "/pools", "").await?;
        parse_pools(&text).map_err(|e| self.err(format!("unreadable answer to GET /pools: {e}")))
    }

    /// Replaces the whole set of pools in nginx, then records them in the
    /// peers file (what a restarted nginx loads). nginx first: the file is
    /// only a restart record, and a rename may stall on the filesystem.
    /// Only checked peers are ever set, so a crash between the two leaves
    /// the file on an earlier set of checked peers.
    pub async fn set_pools(&self, pools: &Pools) -> Result<(), ProxyError> {
        let text = render_pools(pools);
        self.request("PUT", "/pools", &text).await?;
        persist(&self.peers_file, text).await
    }

    /// Puts `pools` back after a change that could not be recorded (a full
    /// disk): in nginx, then in the peers file if it holds the change.
    pub async fn put_back(&self, pools: &Pools) -> Result<(), ProxyError> {
        let text = render_pools(pools);
        self.request("PUT", "/pools", &text).await?;
        if read_opt(&self.peers_file)?.as_deref() != Some(text.as_str()) {
            persist(&self.peers_file, text).await?;
        }
        Ok(())
    }

    /// Responses counted per pool and color since the counters were created.
    pub async fn counters(&self) -> Result<Counters, ProxyError> {
        let text = self.request("GET", "/counters", "").await?;
        let mut out = Counters::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [pool, color, class, n] = f[..] else { continue };
            let (Ok(color), Ok(n)) = (color.parse::<Color>(), n.parse::<u64>()) else {
                continue;
            };
            let class = class.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(2) as u16;
            out.entry(pool.to_string()).or_default().get_mut(color).add(class, n);
        }
        Ok(out)
    }

    /// One HTTP/1.0 exchange on the socket (nginx answers and closes, with
    /// no chunking), bounded in time and in size ([`MAX_ANSWER`]).
    pub(super) async fn request(&self, method: &str, path: &str, body: &str) -> Result<String, ProxyError> {
        self.narrow_socket();
        let talk = async {
            let mut s = UnixStream::connect(&self.socket).await?;
            let req = format!(
                "{method} {path} HTTP/1.0\r\nHost: teal\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(req.as_bytes()).await?;
            let mut out = Vec::new();
            (&mut s).take(MAX_ANSWER + 1).read_to_end(&mut out).await?;
            if out.len() as u64 > MAX_ANSWER {
                return Err(std::io::Error::other(format!("answer longer than {MAX_ANSWER} bytes")));
            }
            String::from_utf8(out).map_err(|_| std::io::Error::other("answer is not UTF-8"))
        };
        let out = tokio::time::timeout(TIMEOUT, talk)
            .await
            .map_err(|_| self.err(format!("no answer within {}s to {method} {path}", TIMEOUT.as_secs())))?
            .map_err(|e| {
                self.err(format!(
                    "{method} {path}: {e} (is nginx running with teal's teal_balancer.conf included?)"
                ))
            })?;
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(self.err(format!("{method} {path} -> {status}: {}", body.trim())));
        }
        Ok(body.to_string())
    }

    /// nginx creates its unix sockets world-writable; only teal's user
    /// may talk to the balancer.
    fn narrow_socket(&self) {
        if let Ok(m) = std::fs::metadata(&self.socket) {
            if m.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(&self.socket, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
}

/// Sets (or, with `None`, removes) the pools of one service: its main
/// route by weight and its rules, and its preview with all requests on
/// the preview color.
pub(super) fn set_pools_of(pools: &mut Pools, service: &str, route: Option<&RouteSpec>) {
    pools.remove(service);
    pools.remove(&preview_pool(service));
    let Some(r) = route else { return };
    let t = &r.traffic;
    let main = Pool {
        colors: r.backends.clone(),
        sticky: t.sticky.then(|| crate::spec::Traffic::cookie(service)),
        testers: t.testers.clone().zip(r.next),
        maintenance: t.maintenance.clone(),
        pause_until: None,
    };
    pools.insert(service.to_string(), main);
    if let Some(p) = &r.preview {
        let mut pv = r.backends.clone();
        for c in crate::spec::Color::ALL {
            pv.get_mut(c).weight = if c == p.color { 100 } else { 0 };
        }
        pools.insert(
            preview_pool(service),
            Pool {
                colors: pv,
                ..Default::default()
            },
        );
    }
}

/// The text form the Lua side reads (see `balancer.lua`).
pub fn render_pools(pools: &Pools) -> String {
    let mut out = String::new();
    for (name, pool) in pools {
        out.push_str(&format!("pool {name}\n"));
        for c in Color::ALL {
            let b = pool.colors.get(c);
            out.push_str(&format!("{c} {}", b.weight));
            for a in &b.addrs {
                out.push_str(&format!(" {a}"));
            }
            out.push('\n');
        }
        if let Some(cookie) = &pool.sticky {
            out.push_str(&format!("sticky {cookie}\n"));
        }
        if let Some((m, c)) = &pool.testers {
            let (kind, name, value) = match m {
                Match::Header { name, value } => ("header", name, value),
                Match::Cookie { name, value } => ("cookie", name, value),
            };
            out.push_str(&format!("testers {kind} {name} {value} {c}\n"));
        }
        if let Some(m) = &pool.maintenance {
            out.push_str(&format!("maint {} {}\n", m.retry_after, m.message));
        }
        if let Some(t) = pool.pause_until {
            out.push_str(&format!("pause {t}\n"));
        }
    }
    out
}

/// A rule line of `render_pools`, into `pool`; false when it is none.
fn parse_rule(pool: &mut Pool, line: &str) -> Result<bool, String> {
    let bad = || format!("bad line: {line}");
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "sticky" => pool.sticky = Some(rest.to_string()),
        "testers" => {
            let [kind, name, value, color] = rest.split(' ').collect::<Vec<_>>()[..] else {
                return Err(bad());
            };
            let (name, value) = (name.to_string(), value.to_string());
            let m = match kind {
                "header" => Match::Header { name, value },
                "cookie" => Match::Cookie { name, value },
                _ => return Err(bad()),
            };
            pool.testers = Some((m, color.parse()?));
        }
        "pause" => pool.pause_until = Some(rest.parse().map_err(|_| bad())?),
        "maint" => {
            let (secs, message) = rest.split_once(' ').ok_or_else(bad)?;
            pool.maintenance = Some(Maintenance {
                message: message.to_string(),
                retry_after: secs.parse().map_err(|_| bad())?,
            });
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Parses `render_pools` text back.
pub fn parse_pools(text: &str) -> Result<Pools, String> {
    let mut pools = Pools::new();
    let mut cur: Option<String> = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(name) = line.strip_prefix("pool ") {
            cur = Some(name.trim().to_string());
            pools.entry(name.trim().to_string()).or_default();
            continue;
        }
        let Some(name) = &cur else {
            return Err(format!("a line before the first pool: {line}"));
        };
        let pool = pools.get_mut(name).expect("inserted");
        if parse_rule(pool, line)? {
            continue;
        }
        let mut f = line.split_whitespace();
        let color: Color = f.next().unwrap_or("").parse()?;
        let weight: u32 = f
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("no weight: {line}"))?;
        let addrs = f
            .map(|a| a.parse::<SocketAddr>().map_err(|e| format!("{a}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        *pool.colors.get_mut(color) = Backend { weight, addrs };
    }
    Ok(pools)
}

#[cfg(test)]
#[path = "balancer_tests.rs"]
mod tests;
