//! The HAProxy config teal owns and the runtime commands that move traffic
//! within it. Each service has a backend with a fixed number of server
//! slots per color; traffic moves by setting addresses, weights and states
//! of those slots, so only a change of structure needs a reload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::names::backend;
use super::tls::TlsFiles;
use crate::drivers::reload::{sha256, CONFIG_HOST};
use crate::drivers::route::{Backend, RouteSpec};
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
    /// Extra `global` lines (managed mode adds a pidfile and `noreuseport`).
    pub global: Vec<String>,
    /// HTTPS bind address, used once a route has `tls`.
    pub https: String,
    /// Where the TLS bind's certificates and maps live.
    pub tls: TlsFiles,
}

/// Line prefix recording a route in the config file.
pub(super) const ROUTE: &str = "# teal-route ";
/// Address of an empty slot: nothing listens there.
pub(super) const PLACEHOLDER: &str = "127.0.0.1:1";
const MIN_SLOTS: usize = 4;
/// HAProxy's largest server weight.
const MAX_WEIGHT: u32 = 256;

/// Slots per color: enough for every address, at least MIN_SLOTS, a power of two.
pub(super) fn slots(route: &RouteSpec) -> usize {
    let most = route.backends.blue.addrs.len().max(route.backends.green.addrs.len());
    most.max(MIN_SLOTS).next_power_of_two()
}

/// Whether two configs have the same skeleton, what only a reload changes:
/// the config without the route records, the reload token and what the
/// runtime API sets (server addresses, weights and states). It differs
/// between the file and a new rendering for a new
/// service, host, path, preview or slot count, and after an upgrade of
/// teal that renders differently (renamed backends, new settings).
pub(super) fn same_skeleton(a: &str, b: &str) -> bool {
    skeleton(a).eq(skeleton(b))
}

/// The skeleton's lines, borrowed from the text (at 500 routes the file
/// is 4 MiB: no line is copied).
fn skeleton(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .skip(1)
        .filter(|l| !l.starts_with(ROUTE) && !l.contains(CONFIG_HOST))
        .map(|l| match l.strip_prefix(SERVER) {
            Some(rest) => &l[..SERVER.len() + rest.find(char::is_whitespace).unwrap_or(rest.len())],
            None => l,
        })
}

const SERVER: &str = "    server ";

/// The weight of each server of a color, so that the color's servers
/// together get `percent` of the backend's requests: HAProxy shares by
/// the sum of server weights.
pub(super) fn server_weight(percent: u32, servers: usize) -> u32 {
    if percent == 0 || servers == 0 {
        return 0;
    }
    let w = (percent * MAX_WEIGHT) as f64 / (100.0 * servers as f64);
    (w.round() as u32).clamp(1, MAX_WEIGHT)
}

/// What one slot should serve: an address and weight, or nothing.
fn slot(b: &Backend, i: usize) -> Option<(SocketAddr, u32)> {
    let w = server_weight(b.weight, b.addrs.len());
    b.addrs.get(i).filter(|_| w > 0).map(|a| (*a, w))
}

/// The backends of a route: the main one by weight, and the preview one
/// with all of its requests on the preview color.
fn backends(route: &RouteSpec) -> Vec<(String, [Backend; 2])> {
    let be = backend(&route.service);
    let mut out = vec![(be.clone(), [route.backends.blue.clone(), route.backends.green.clone()])];
    if let Some(p) = &route.preview {
        let serve = |c: Color| Backend {
            weight: if c == p.color { 100 } else { 0 },
            addrs: route.backends.get(c).addrs.clone(),
        };
        out.push((format!("{be}_preview"), [serve(Color::Blue), serve(Color::Green)]));
    }
    out.extend(super::traffic::color_backends(route));
    out
}

/// Which address each of `slots` slots serves: an address that a slot
/// already serves keeps it (moving a live address to another slot, or
/// giving a busy slot another address, would disturb its connections);
/// new addresses take free slots in order.
pub(super) fn assign(addrs: &[SocketAddr], current: &[Option<SocketAddr>], slots: usize) -> Vec<Option<SocketAddr>> {
    let mut out: Vec<Option<SocketAddr>> = vec![None; slots];
    for (i, cur) in current.iter().enumerate().take(slots) {
        if let Some(a) = cur.filter(|a| addrs.contains(a) && !out.contains(&Some(*a))) {
            out[i] = Some(a);
        }
    }
    let mut fresh = addrs
        .iter()
        .filter(|a| !out.contains(&Some(**a)))
        .copied()
        .collect::<Vec<_>>()
        .into_iter();
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        *slot = fresh.next();
    }
    out
}

/// Runtime commands that make the slots serve the route, given the
/// address each running server (`backend/server`) has now: servers that
/// take requests are set and enabled before the others are put in
/// maintenance, so a request always has a ready server; the route's maps
/// (sticky share, testers' color, maintenance) are set in between.
pub(super) fn switch_commands(
    route: &RouteSpec,
    current: &BTreeMap<String, SocketAddr>,
    files: &TlsFiles,
) -> Vec<String> {
    let n = slots(route);
    let mut enable = vec![];
    let mut disable = vec![];
    for (be, colors) in backends(route) {
        for (c, b) in Color::ALL.iter().zip(&colors) {
            let w = server_weight(b.weight, b.addrs.len());
            let serving: &[SocketAddr] = if w > 0 { &b.addrs } else { &[] };
            let now: Vec<Option<SocketAddr>> = (0..n).map(|i| current.get(&format!("{be}/{c}_{i}")).copied()).collect();
            for (i, slot) in assign(serving, &now, n).into_iter().enumerate() {
                let srv = format!("{be}/{c}_{i}");
                match slot {
                    Some(a) => {
                        if now[i] != Some(a) {
                            enable.push(format!("set server {srv} addr {} port {}", a.ip(), a.port()));
                        }
                        enable.push(format!("set server {srv} weight {w}"));
                        enable.push(format!("set server {srv} state ready"));
                    }
                    None => disable.push(format!("set server {srv} state maint")),
                }
            }
        }
    }
    enable.extend(super::traffic::map_commands(route, files));
    enable.extend(disable);
    enable
}

/// The backends of a route, for `show servers state`.
pub(super) fn backend_names(route: &RouteSpec) -> Vec<String> {
    backends(route).into_iter().map(|(be, _)| be).collect()
}

fn server_lines(out: &mut String, colors: &[Backend; 2], slots: usize) {
    for (c, b) in Color::ALL.iter().zip(colors) {
        for i in 0..slots {
            match slot(b, i) {
                Some((a, w)) => {
                    let _ = writeln!(out, "    server {c}_{i} {a} weight {w}");
                }
                None => {
                    let _ = writeln!(out, "    server {c}_{i} {PLACEHOLDER} disabled");
                }
            }
        }
    }
}

/// The line recording `r` in the file (its service comes first).
pub(super) fn record_line(r: &RouteSpec) -> String {
    format!("{ROUTE}{}", serde_json::to_string(r).expect("route serialises"))
}

/// The backend sections of `r`, one after the other; returns how many.
pub(super) fn backend_blocks(b: &mut String, r: &RouteSpec) -> usize {
    let n = slots(r);
    let all = backends(r);
    for (be, colors) in &all {
        let _ = writeln!(b, "backend {be}");
        // Only a refused connection is retried for a request that may
        // change something: it never reached the server.
        b.push_str("    http-request disable-l7-retry if !METH_GET !METH_OPTIONS\n");
        server_lines(b, colors, n);
    }
    all.len()
}

/// The whole managed config. It records every route and holds the current
/// addresses and weights too, so a restarted HAProxy serves as before.
/// `token` is served on the reserved config host so a reload can be awaited.
pub fn render(routes: &BTreeMap<String, RouteSpec>, cfg: &HaproxyConfig, token: &str) -> String {
    let mut b = String::new();
    for r in routes.values() {
        let _ = writeln!(b, "{}", record_line(r));
    }
    let _ = writeln!(
        b,
        "global\n    stats socket {} mode 600 level admin expose-fd listeners",
        cfg.socket.display()
    );
    for g in &cfg.global {
        let _ = writeln!(b, "    {g}");
    }
    b.push_str(&super::pause::global(routes, &cfg.tls));
    // A replica that died (a killed container, a Swarm task on a lost
    // node) may stay routed until teal's next look: a request that cannot
    // connect to it within 1 s, or whose connection it closed without an
    // answer, goes to another server of the backend instead of failing.
    b.push_str("defaults\n    mode http\n    option http-keep-alive\n    option redispatch 1\n    retries 2\n    retry-on conn-failure empty-response\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n    timeout http-keep-alive 60s\n");
    let _ = writeln!(b, "frontend teal\n    bind {}", cfg.listen);
    b.push_str("    http-request set-var(txn.host) req.hdr(host),field(1,:),lower\n");
    b.push_str(&super::tls::frontend(
        &routes.values().collect::<Vec<_>>(),
        &cfg.https,
        &cfg.tls,
    ));
    let _ = writeln!(b, "    http-request return status 200 content-type text/plain string {token} if {{ var(txn.host) -m str {CONFIG_HOST} }}");
    // Longest path first, so /api wins over / on a shared host.
    let mut by_path: Vec<&RouteSpec> = routes.values().collect();
    by_path.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
    b.push_str(&super::traffic::frontend(&by_path, &cfg.tls));
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
            r.hosts().collect::<Vec<_>>().join(" "),
            r.path
        );
    }
    b.push_str("    default_backend teal_no_route\nbackend teal_no_route\n    http-request return status 404 content-type text/plain string \"no teal route for this host\"\n");
    for r in routes.values() {
        backend_blocks(&mut b, r);
    }
    format!("# teal: managed by teal; do not edit. sha256={}\n{b}", sha256(&b))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A config for tests that render without a proxy.
    pub(in crate::drivers::haproxy) fn config() -> HaproxyConfig {
        HaproxyConfig {
            config: "/x/teal.cfg".into(),
            socket: "/x/admin.sock".into(),
            reload: vec![],
            listen: "127.0.0.1:80".into(),
            binary: "haproxy".into(),
            global: vec![],
            https: "127.0.0.1:443".into(),
            tls: TlsFiles { dir: "/x/tls".into() },
        }
    }

    #[test]
    fn addresses_keep_their_slots_and_new_ones_take_free_slots() {
        let a = |p: u16| -> SocketAddr { format!("10.0.0.1:{p}").parse().unwrap() };
        // A rolling batch: 1 and 2 stay where they are, 4 takes a free slot.
        let now = [Some(a(1)), Some(a(2)), Some(a(3)), None];
        assert_eq!(
            assign(&[a(2), a(4), a(1)], &now, 4),
            [Some(a(1)), Some(a(2)), Some(a(4)), None]
        );
        // Nothing serving yet: in order.
        assert_eq!(assign(&[a(5), a(6)], &[None, None], 2), [Some(a(5)), Some(a(6))]);
        assert_eq!(assign(&[], &now, 4), [None; 4]);
    }

    #[test]
    fn only_what_the_runtime_api_cannot_set_forces_a_reload() {
        let cfg = config();
        let route = |svc: &str, addr: &str, weight: u32| {
            let backends = crate::spec::PerColor::<Backend> {
                blue: Backend {
                    weight,
                    addrs: vec![addr.parse().unwrap()],
                },
                green: Backend::default(),
            };
            let r = RouteSpec {
                service: svc.into(),
                host: "shop.test".into(),
                aliases: vec![],
                tls: None,
                path: "/".into(),
                backends,
                preview: None,
                commit: "c".into(),
                traffic: Default::default(),
                next: None,
                route_hash: "h".into(),
            };
            BTreeMap::from([(svc.to_string(), r)])
        };
        let a = render(&route("my-app", "10.0.0.1:80", 100), &cfg, "t1");
        let b = render(&route("my-app", "10.0.0.2:81", 0), &cfg, "t2");
        assert!(same_skeleton(&a, &b), "addresses, weights and the token");
        assert!(!same_skeleton(&a, &a.replace("server blue_0", "server blue_9")));
        assert!(a.contains("backend teal_my-app\n"), "{a}");
        // The file an older teal wrote (`-` turned into `_`) needs a reload.
        assert!(!same_skeleton(&a.replace("teal_my-app", "teal_my_app"), &a));
        let more = BTreeMap::from_iter(route("my-app", "10.0.0.1:80", 100).into_iter().chain(route(
            "api",
            "10.0.0.1:80",
            100,
        )));
        assert!(!same_skeleton(&render(&more, &cfg, "t1"), &a));
    }

    #[test]
    fn server_weights_share_requests_by_color_percent() {
        // One replica at 100 %: the largest weight HAProxy takes.
        assert_eq!(server_weight(100, 1), 256);
        assert_eq!(server_weight(0, 3), 0);
        // 10 % on 1 server against 90 % on 2: 26 / (26 + 2 * 115) = 10.2 %.
        let (a, b) = (server_weight(10, 1), server_weight(90, 2));
        let share = a as f64 / (a + 2 * b) as f64;
        assert!((share - 0.10).abs() < 0.01, "{a} {b} {share}");
        // Tiny shares over many servers keep at least weight 1.
        assert_eq!(server_weight(1, 64), 1);
    }
}
