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
mod state;
mod tls;
mod traffic;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::batch::Batch;
use super::reload::{config_token, persist, run, wait_for_config};
use super::route::{Counters, ObservedRoute, ProxyError, RouteSpec};
use crate::spec::PerColor;
use names::backend;
use render::{backend_names, switch_commands};
use state::{color_of, parse_stat, percent, running_servers, Running};

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
