//! The nginx files teal writes: per service its upstreams
//! (`teal-<service>.conf`), the servers of every host
//! (`teal_servers.conf`) and, with the balancer, the Lua module and its
//! control server (`teal_balancer.conf`). Each starts with a header that
//! records what it was made from and the sha256 of the rest, so a
//! hand-edited file is seen as drift.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::balancer::{preview_pool, Balancer, LUA};
use super::tls::{self, Tls};
use crate::drivers::reload::{sha256, CONFIG_HOST};
use crate::drivers::route::RouteSpec;
use crate::spec::Color;

pub(super) const HEADER: &str = "# teal ";

/// What the header of a service file records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    pub route: RouteSpec,
    pub sha256: String,
}

/// Quotes a value for nginx: `"..."` with `"` and `\` escaped.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A Lua string literal.
pub(super) fn lua(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
    )
}

/// A service's upstream: its name as it is. Service names cannot contain
/// `_`, which the preview upstream's suffix carries, so `x-preview` and
/// the preview of `x` stay apart.
pub(super) fn upstream_name(service: &str) -> String {
    format!("teal_{service}")
}

/// An upstream listing its peers: the reload way.
fn static_upstream(out: &mut String, name: &str, peers: &[(SocketAddr, Option<u32>)]) {
    let _ = writeln!(out, "upstream {name} {{");
    if peers.is_empty() {
        // nginx needs a server; nothing runs, so answer 502.
        out.push_str("    server 127.0.0.1:1 down;\n");
    }
    for (a, w) in peers {
        match w {
            Some(w) => _ = writeln!(out, "    server {a} weight={w} max_fails=0;"),
            None => _ = writeln!(out, "    server {a} max_fails=0;"),
        }
    }
    out.push_str("    keepalive 32;\n}\n");
}

/// An upstream whose peer the Lua balancer picks for each request.
fn balanced_upstream(out: &mut String, name: &str) {
    let _ = writeln!(
        out,
        "upstream {name} {{\n    server 0.0.0.1;  # never used: the balancer sets every peer\n    balancer_by_lua_block {{ require(\"teal_balancer\").balance() }}\n    keepalive 32;\n}}"
    );
}

/// The peers of the main route in the reload way: every replica of each
/// color with weight, weighted only when both colors share the traffic.
fn weighted_peers(route: &RouteSpec) -> Vec<(SocketAddr, Option<u32>)> {
    let shared = route.backends.blue.weight > 0 && route.backends.green.weight > 0;
    Color::ALL
        .iter()
        .map(|c| route.backends.get(*c))
        .filter(|b| b.weight > 0)
        .flat_map(|b| {
            // nginx weighs servers, not groups: divide the color's share.
            let w = (b.weight as usize * 10 / b.addrs.len().max(1)).max(1) as u32;
            b.addrs.iter().map(move |a| (*a, shared.then_some(w)))
        })
        .collect()
}

/// `teal-<service>.conf`: header + upstreams.
pub(super) fn service(route: &RouteSpec, balanced: bool) -> String {
    let mut body = String::new();
    let name = upstream_name(&route.service);
    if balanced {
        balanced_upstream(&mut body, &name);
        if route.preview.is_some() {
            balanced_upstream(&mut body, &format!("{name}_preview"));
        }
    } else {
        static_upstream(&mut body, &name, &weighted_peers(route));
        if let Some(p) = &route.preview {
            let peers: Vec<_> = route.backends.get(p.color).addrs.iter().map(|a| (*a, None)).collect();
            static_upstream(&mut body, &format!("{name}_preview"), &peers);
        }
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

/// One location of a server: (path, upstream, balancer pool, allowed nets).
struct Loc<'a> {
    path: &'a str,
    upstream: String,
    pool: String,
    allow: Option<&'a [ipnet::IpNet]>,
}

/// `hsts`: the server's HSTS max-age, if any; a location's own
/// `header_filter_by_lua` replaces the server's, so it sets that too.
fn location(out: &mut String, l: &Loc<'_>, balanced: bool, hsts: Option<u64>) {
    let _ = writeln!(out, "    location {} {{", q(l.path));
    if let Some(nets) = l.allow.filter(|n| !n.is_empty()) {
        for n in nets {
            let _ = writeln!(out, "        allow {n};");
        }
        out.push_str("        deny all;\n");
    }
    if balanced {
        // access_by_lua runs after allow/deny.
        let _ = writeln!(
            out,
            "        access_by_lua_block {{ require(\"teal_balancer\").pick({}) }}\n        header_filter_by_lua_block {{ require(\"teal_balancer\").header(){} }}\n        log_by_lua_block {{ require(\"teal_balancer\").log() }}",
            lua(&l.pool),
            hsts.map(|age| format!(" require(\"teal_certs\").hsts({age})")).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "        proxy_pass http://{};", l.upstream);
    out.push_str(
        "        proxy_connect_timeout 1s;\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n        proxy_next_upstream error timeout http_502 http_503;\n    }\n",
    );
}

/// `teal_servers.conf`: one server per host (aliases included) with a
/// location per route; with `tls`, a TLS route's hosts serve HTTPS too.
/// A reserved server answers with `token`, so a reload can be awaited.
pub(super) fn servers(
    routes: &[RouteSpec],
    listen: &str,
    token: &str,
    client_keepalive: bool,
    balanced: bool,
    tls: Option<&Tls>,
) -> String {
    let mut hosts: BTreeMap<&str, Vec<Loc<'_>>> = BTreeMap::new();
    for r in routes {
        for host in r.hosts() {
            hosts.entry(host).or_default().push(Loc {
                path: &r.path,
                upstream: upstream_name(&r.service),
                pool: r.service.clone(),
                allow: None,
            });
        }
        if let Some(p) = &r.preview {
            hosts.entry(&p.host).or_default().push(Loc {
                path: "/",
                upstream: format!("{}_preview", upstream_name(&r.service)),
                pool: preview_pool(&r.service),
                allow: Some(&p.allow),
            });
        }
    }
    let mut body = format!(
        "server {{\n    listen {listen};\n    server_name {CONFIG_HOST};\n    return 200 {};\n}}\n",
        q(token)
    );
    for (host, locs) in hosts {
        let _ = writeln!(body, "server {{\n    listen {listen};");
        let https = tls.and_then(|t| Some((t, tls::of_host(routes, host)?)));
        if let Some((t, h)) = &https {
            tls::server_lines(&mut body, h, t, &lua(host));
        }
        let _ = writeln!(body, "    server_name {};", q(host));
        if !client_keepalive {
            body.push_str("    keepalive_timeout 0;\n");
        }
        let hsts = https.as_ref().and_then(|(_, h)| h.hsts);
        for l in &locs {
            location(&mut body, l, balanced, hsts);
        }
        // Else nginx would look for files under its prefix for the other
        // paths of this host (a 403 or 404 depending on the workers' user).
        if !locs.iter().any(|l| l.path == "/") {
            body.push_str(match https {
                Some(_) => tls::NO_ROUTE,
                None => "    location / { return 404 \"no teal route for this path\\n\"; }\n",
            });
        }
        body.push_str("}\n");
    }
    format!(
        "# teal: generated from the teal-<service>.conf headers; do not edit. sha256={}\n{body}",
        sha256(&body)
    )
}

/// `teal_balancer.conf`: the shared dict, the Lua module (loading the
/// peers file after a restart) and the control server on teal's socket.
pub(super) fn balancer(b: &Balancer) -> String {
    let (certs_dict, certs_init, certs_control) = tls::balancer_parts(b, lua);
    let body = format!(
        "lua_shared_dict teal_balancer 10m;\n{certs_dict}init_by_lua_block {{\n    package.loaded.teal_balancer = (function()\n{LUA}\n    end)()\n    require(\"teal_balancer\").load_file({})\n{certs_init}}}\nserver {{\n    listen unix:{};\n    access_log off;\n    client_body_buffer_size 1m;\n    client_max_body_size 1m;\n    location = /pools {{ content_by_lua_block {{ require(\"teal_balancer\").pools() }} }}\n    location = /counters {{ content_by_lua_block {{ require(\"teal_balancer\").counters() }} }}\n{certs_control}    location / {{ return 404; }}\n}}\n",
        lua(&b.peers_file.display().to_string()),
        b.socket.display()
    );
    format!(
        "# teal: the balancer teal switches through; do not edit. sha256={}\n{body}",
        sha256(&body)
    )
}
