//! HAProxy driver. teal owns one config file: a frontend routing by host and
//! path prefix, and per service a backend (and a preview backend) with
//! server slots for both colors. Moving traffic between colors, weights and
//! addresses go through the runtime API on the stats socket, with no
//! reload, so no connection is dropped. A reload happens only when the
//! structure changes (services, routes, slot counts), after `haproxy -c`
//! accepted the new file. The file always holds the current addresses and
//! weights too, so a restarted HAProxy comes back serving the same colors.

mod certs;
mod names;
mod pause;
mod render;
mod routes;
mod runtime;
mod splice;
mod tls;
mod traffic;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::batch::Batch;
use super::reload::{config_token, persist, run, wait_for_config};
use super::route::{Counters, Counts, ObservedRoute, ProxyError, RouteSpec};
use crate::spec::{Color, PerColor};
use names::backend;
use render::{backend_names, switch_commands, PLACEHOLDER};

pub use render::{render, HaproxyConfig};
pub use runtime::Runtime;
pub use tls::TlsFiles;

#[derive(Debug)]
pub struct Haproxy {
    config: HaproxyConfig,
    runtime: Runtime,
    batch: Batch,
    parsed: routes::Parsed,
}

impl Haproxy {
    pub fn new(config: HaproxyConfig) -> Haproxy {
        Haproxy {
            runtime: Runtime::new(&config.socket),
            config,
            batch: Batch::default(),
            parsed: routes::Parsed::default(),
        }
    }

    /// The runtime API of this HAProxy.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The routes recorded in the file, and whether its body was edited.
    pub(crate) fn read_routes(&self) -> Result<routes::Routes, ProxyError> {
        self.parsed.read(&self.config.config)
    }

    /// Weights and peers from `show servers state`; hashes from the file.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        let (routes, drifted) = self.read_routes()?;
        if routes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let state = self.runtime.call(&["show servers state".to_string()]).await?;
        // By backend, so 500 routes do not each go over every server.
        let mut running: BTreeMap<String, Vec<Running>> = BTreeMap::new();
        for s in running_servers(&state) {
            running.entry(s.backend.clone()).or_default().push(s);
        }
        let mut out = BTreeMap::new();
        for (service, route) in routes {
            let be = backend(&service);
            let mut obs = ObservedRoute {
                route_hash: Some(route.route_hash),
                drifted,
                ..Default::default()
            };
            let mut weight = PerColor::<u32>::default();
            for s in running.get(&be).into_iter().flatten() {
                let Some(c) = color_of(&s.server) else { continue };
                obs.addrs.get_mut(c).push(s.addr);
                *weight.get_mut(c) += s.weight;
            }
            obs.weights = percent(&weight);
            out.insert(service, obs);
        }
        Ok(out)
    }

    /// Responses per service and color, from the servers' `hrsp_*` stats.
    pub async fn counters(&self) -> Result<Counters, ProxyError> {
        let (routes, _) = self.read_routes()?;
        // A route with color rules serves from its per-color backends.
        let by_backend: BTreeMap<String, String> = routes
            .keys()
            .flat_map(|s| {
                let be = backend(s);
                [be.clone(), format!("{be}_blue"), format!("{be}_green")].map(|b| (b, s.clone()))
            })
            .collect();
        let stat = self.runtime.call(&["show stat".to_string()]).await?;
        Ok(parse_stat(&stat, &by_backend))
    }

    /// Upserts one service: runtime API when only addresses, weights or
    /// colors change, checked rewrite + reload when the structure changes.
    /// Routes arriving together share one change (`Batch`).
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        self.batch.submit(route, |routes| self.apply_all(routes)).await
    }

    async fn apply_all(&self, batch: Vec<RouteSpec>) -> Result<(), ProxyError> {
        let started = std::time::Instant::now();
        let file = self.parsed.take_text(&self.config.config)?;
        let mut routes = file.routes;
        let previous: Vec<RouteSpec> = batch.iter().filter_map(|r| routes.get(&r.service).cloned()).collect();
        let maps_kept =
            batch.len() == previous.len() && batch.iter().zip(&previous).all(|(r, p)| traffic::same_maps(p, r));
        // A switch that keeps the structure of the file this teal wrote
        // moves traffic first and splices its routes into the file after:
        // what it costs to record grows with the file, moving traffic must
        // not. Otherwise the whole file is rendered and compared.
        let fits = file.own && splice::fits(&routes, &batch, &self.config);
        for r in &batch {
            routes.insert(r.service.clone(), r.clone());
        }
        let names = || batch.iter().map(|r| r.service.as_str()).collect::<Vec<_>>().join(", ");
        let mut after = None;
        if !fits {
            match splice::rendered_alike(&file.text, &routes, &self.config) {
                Some(full) => after = Some(full),
                None => return self.write(&names(), &routes).await,
            }
        }
        // Traffic moves through the runtime API first; then the file that a
        // restarted HAProxy would load records it. A rename can stall on
        // the filesystem's journal for seconds (seen on ext4 under load:
        // the cause of the rare multi-second switch), a switch must not.
        let prepared = started.elapsed();
        self.set_servers(&batch).await?;
        let switched = started.elapsed();
        // A route not found in a file this teal wrote (a bug, or the file
        // changed under it) takes the full render, reloaded if need be.
        let after = after
            .or_else(|| splice::splice(&file.text, &batch))
            .or_else(|| splice::rendered_alike(&file.text, &routes, &self.config));
        let Some(after) = after else {
            return self.write(&names(), &routes).await;
        };
        let after: Arc<str> = Arc::from(after);
        let mut recorded = match maps_kept {
            true => Ok(()),
            false => self.record_maps(&routes).await,
        };
        if recorded.is_ok() {
            recorded = persist(&self.config.config, after.clone()).await;
        }
        if let Err(e) = recorded {
            // Unrecorded (a full disk), the switch would be undone by the
            // next start of HAProxy, and a failed switch must leave traffic
            // where it was, as it says: it goes back now.
            return Err(match self.set_servers(&previous).await {
                Ok(()) => e,
                Err(back) => ProxyError::Other(format!("{e}; putting traffic back failed too: {back}")),
            });
        }
        self.parsed.wrote(&self.config.config, after, routes);
        tracing::debug!(
            routes = batch.len(),
            prepare_ms = prepared.as_secs_f64() * 1e3,
            runtime_ms = (switched - prepared).as_secs_f64() * 1e3,
            record_ms = (started.elapsed() - switched).as_secs_f64() * 1e3,
            "switched through the runtime API"
        );
        Ok(())
    }

    /// Sets the servers of `routes` through the runtime API: addresses,
    /// weights and states, from what `show servers state` says now.
    async fn set_servers(&self, routes: &[RouteSpec]) -> Result<(), ProxyError> {
        if routes.is_empty() {
            return Ok(());
        }
        let cmds: Vec<String> = routes
            .iter()
            .flat_map(backend_names)
            .map(|be| format!("show servers state {be}"))
            .collect();
        let state = self.runtime.call(&cmds).await?;
        let current = running_servers(&state)
            .into_iter()
            .map(|s| (format!("{}/{}", s.backend, s.server), s.addr))
            .collect();
        let switch: Vec<String> = routes
            .iter()
            .flat_map(|r| switch_commands(r, &current, &self.config.tls))
            .collect();
        self.runtime.call(&switch).await.map(|_| ())
    }

    /// Removes one service's backends and routes (a reload).
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        let _one = self.batch.exclusive().await;
        let (mut routes, _) = self.read_routes()?;
        if routes.remove(service).is_none() {
            return Ok(());
        }
        self.write(service, &routes).await
    }

    /// Renders the whole file again with the current settings and reloads.
    pub async fn resync(&self) -> Result<(), ProxyError> {
        let _one = self.batch.exclusive().await;
        let (routes, _) = self.read_routes()?;
        self.write("(all services)", &routes).await
    }

    /// Writes the whole file, checked by `haproxy -c` first, reloads, and
    /// waits until the new config serves.
    async fn write(&self, service: &str, routes: &BTreeMap<String, RouteSpec>) -> Result<(), ProxyError> {
        let token = config_token();
        if routes.values().any(|r| r.tls.is_some()) {
            self.prepare_tls()?;
        }
        // The maps the frontend's traffic rules read, before the check.
        self.write_maps(routes)?;
        self.write_pause(routes)?;
        let started = std::time::Instant::now();
        let text: Arc<str> = Arc::from(render(routes, &self.config, &token));
        self.check(service, &text).await?;
        let checked = started.elapsed();
        persist(&self.config.config, text.clone()).await?;
        self.parsed.wrote(&self.config.config, text, routes.clone());
        run(&self.config.reload)
            .await
            .map_err(|(command, output)| ProxyError::Command { command, output })?;
        let reloaded = started.elapsed();
        wait_for_config(&self.config.listen, &token).await?;
        self.runtime.wait_ready().await?;
        tracing::debug!(
            routes = routes.len(),
            check_ms = checked.as_secs_f64() * 1e3,
            reload_ms = (reloaded - checked).as_secs_f64() * 1e3,
            serving_ms = (started.elapsed() - reloaded).as_secs_f64() * 1e3,
            "reloaded"
        );
        Ok(())
    }

    /// `haproxy -c` on a copy of the new file.
    async fn check(&self, service: &str, text: &str) -> Result<(), ProxyError> {
        let tmp = self.config.config.with_extension("check.cfg");
        persist(&tmp, text.to_string()).await?;
        let check = [
            self.config.binary.clone(),
            "-c".into(),
            "-q".into(),
            "-f".into(),
            tmp.display().to_string(),
        ];
        let checked = run(&check).await;
        let _ = std::fs::remove_file(&tmp);
        checked.map(|_| ()).map_err(|(command, output)| ProxyError::Rejected {
            service: service.to_string(),
            command,
            output,
        })
    }
}

/// A server that takes requests.
struct Running {
    backend: String,
    server: String,
    addr: SocketAddr,
    weight: u32,
}

/// Servers that are running, with their weight. Judged by the operational
/// state (2 = running): a server declared `disabled` keeps its
/// config-maintenance flag in the admin state after `state ready`.
fn running_servers(state: &str) -> Vec<Running> {
    state
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 19 || f[5] != "2" {
                return None;
            }
            let addr: SocketAddr = format!("{}:{}", f[4], f[18]).parse().ok()?;
            let weight: u32 = f[7].parse().ok()?;
            (addr.to_string() != PLACEHOLDER && weight > 0).then(|| Running {
                backend: f[1].to_string(),
                server: f[3].to_string(),
                addr,
                weight,
            })
        })
        .collect()
}

/// `blue_3` -> blue.
fn color_of(server: &str) -> Option<Color> {
    server.split('_').next()?.parse().ok()
}

/// Server weight sums as percent of the backend (summing to 100).
fn percent(w: &PerColor<u32>) -> PerColor<u32> {
    let total = w.blue + w.green;
    if total == 0 {
        return PerColor::default();
    }
    let blue = ((w.blue as f64 * 100.0) / total as f64).round() as u32;
    PerColor {
        blue,
        green: 100 - blue,
    }
}

/// Per-color response counters from `show stat` CSV, summing the servers
/// of each color of each known backend.
fn parse_stat(csv: &str, by_backend: &BTreeMap<String, String>) -> Counters {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let classes = [
        (2, "hrsp_2xx"),
        (3, "hrsp_3xx"),
        (4, "hrsp_4xx"),
        (5, "hrsp_5xx"),
        (2, "hrsp_1xx"),
    ];
    let mut out = Counters::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(be), Some(srv)) = (f.first(), f.get(1)) else {
            continue;
        };
        let (Some(service), Some(color)) = (by_backend.get(*be), color_of(srv)) else {
            continue;
        };
        let counts: &mut Counts = out.entry(service.clone()).or_default().get_mut(color);
        for (class, name) in classes {
            let n = col(name)
                .and_then(|i| f.get(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            counts.add(class, n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_counters_sum_servers_per_color() {
        let csv = "# pxname,svname,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,\n\
                   teal_web,blue_0,0,10,1,2,3,\n\
                   teal_web,blue_1,0,5,0,0,1,\n\
                   teal_web,green_0,0,7,0,0,0,\n\
                   teal_web,BACKEND,0,22,1,2,4,\n\
                   teal_other,blue_0,0,99,0,0,0,\n";
        let map = BTreeMap::from([("teal_web".to_string(), "web".to_string())]);
        let c = parse_stat(csv, &map);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c["web"].blue,
            Counts {
                xx2: 15,
                xx3: 1,
                xx4: 2,
                xx5: 4
            }
        );
        assert_eq!(c["web"].green.total(), 7);
    }

    #[test]
    fn weights_read_back_as_percent() {
        assert_eq!(
            percent(&PerColor { blue: 256, green: 0 }),
            PerColor { blue: 100, green: 0 }
        );
        assert_eq!(
            percent(&PerColor { blue: 26, green: 230 }),
            PerColor { blue: 10, green: 90 }
        );
        assert_eq!(percent(&PerColor::default()), PerColor::default());
    }
}
