//! What Linux says about processes and listening sockets, read from
//! `/proc`: whether a pid lives, its command line and parent, and which
//! process holds a TCP listen address. Plus signals. Used to adopt the
//! proxy an earlier teal started, and to name whoever else holds a port.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

/// A process holding a listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// True when `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// The command line, arguments joined by spaces (nginx rewrites its own
/// to e.g. `nginx: master process /usr/sbin/nginx -c ...`).
pub fn cmdline(pid: u32) -> Option<String> {
    Some(argv(pid)?.join(" "))
}

/// The arguments, from `/proc/<pid>/cmdline`.
pub fn argv(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`.
fn stat_field(pid: u32, n: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state).
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// The parent pid.
pub fn parent(pid: u32) -> Option<u32> {
    stat_field(pid, 4)
}

/// The live children of `pid` (a proxy master's workers).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|c| parent(*c) == Some(pid) && alive(*c))
        .collect()
}

/// The effective uid, from `/proc/<pid>/status`.
pub fn euid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process group id.
pub fn group(pid: u32) -> Option<u32> {
    stat_field(pid, 5)
}

/// The outermost process, starting at `pid` and walking up its parents,
/// whose command line contains `needle`: the master of a worker.
pub fn owner_naming(pid: u32, needle: &str) -> Option<u32> {
    let mut found = None;
    let mut cur = Some(pid);
    for _ in 0..16 {
        let Some(p) = cur.filter(|p| *p > 1) else { break };
        if cmdline(p).is_some_and(|c| c.contains(needle)) {
            found = Some(p);
        }
        cur = parent(p);
    }
    found
}

/// Who listens on `listen` (an `ip:port`; a wildcard on either side
/// counts as a clash), when it can be read.
pub fn holder(listen: &SocketAddr) -> Option<Holder> {
    let inodes = listening_inodes(listen);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| Path::new(w) == target) {
                let command = cmdline(pid).unwrap_or_else(|| "command unknown".into());
                return Some(Holder { pid, command });
            }
        }
    }
    None
}

/// Inodes of sockets in LISTEN state that clash with `listen`.
fn listening_inodes(listen: &SocketAddr) -> Vec<String> {
    let mut out = vec![];
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some(local) = parse_proc_addr(f[1]) else { continue };
            let clash = local.port() == listen.port()
                && (local.ip() == listen.ip() || local.ip().is_unspecified() || listen.ip().is_unspecified());
            if clash {
                out.push(f[9].to_string());
            }
        }
    }
    out
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6), as the kernel
/// prints them: each 32-bit word in host (little-endian) order.
fn parse_proc_addr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Sends `signal` to `pid` (negative: a process group).
pub fn signal(pid: i32, signal: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Stops a process tree teal started: SIGTERM to `pid`, then, if it has
/// not ended within `grace`, SIGKILL to its process group. `reaped`
/// reports whether the process ended (for a child, it must reap it).
pub fn terminate(pid: u32, grace: Duration, mut ended: impl FnMut() -> bool) {
    let own_group = group(pid) == Some(pid);
    signal(pid as i32, libc::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < grace {
        if ended() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Workers in its group that outlive the master (or a master that
    // ignored SIGTERM) end here.
    if own_group {
        signal(-(pid as i32), libc::SIGKILL);
    } else if !ended() {
        signal(pid as i32, libc::SIGKILL);
    }
    for _ in 0..100 {
        if ended() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_parse() {
        assert_eq!(
            parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(parse_proc_addr("00000000:0050"), Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(
            parse_proc_addr("00000000000000000000000000000000:0050"),
            Some("[::]:80".parse().unwrap())
        );
        assert_eq!(
            parse_proc_addr("0000000000000000FFFF00000100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
    }

    #[test]
    fn the_holder_of_a_port_is_named() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = holder(&addr).expect("this test process holds it");
        assert_eq!(h.pid, std::process::id());
        assert!(alive(h.pid));
        // A wildcard bind clashes with a specific address on the same port.
        let wild: SocketAddr = format!("0.0.0.0:{}", addr.port()).parse().unwrap();
        assert_eq!(holder(&wild).map(|h| h.pid), Some(std::process::id()));
        drop(l);
        assert_eq!(holder(&addr), None);
    }

    #[test]
    fn parents_and_command_lines_are_read() {
        let me = std::process::id();
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
        assert!(parent(me).is_some());
        assert!(!alive(u32::MAX / 2));
    }
}
