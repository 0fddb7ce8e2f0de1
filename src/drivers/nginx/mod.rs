//! nginx driver. Each service gets `teal-<service>.conf` in the configured
//! directory, the servers of every host live in `teal_servers.conf`
//! (several services may share a host under different paths). Teal's own
//! files and names carry `_`, which service names cannot contain, so no
//! service can take their place. A change of
//! structure (a service, host, path or preview) is written atomically,
//! checked with the configured test command (`nginx -t`) and only then
//! reloaded; a rejected config is rolled back so the serving nginx never
//! sees it.
//!
//! Traffic moves one of two ways (`proxy.nginx.switch`): through teal's Lua
//! balancer (`balancer`, the default), one call on a unix socket with no
//! reload, so keep-alive clients lose nothing; or by rewriting the
//! upstreams and reloading (`reload`), for an nginx without the Lua module.

pub mod balancer;
mod certs;
mod files;
mod pause;
mod render;
#[cfg(test)]
mod render_tests;
pub mod tls;

pub(crate) use certs::{needs_balancer, needs_balancer_for};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::batch::Batch;
use super::reload::{config_token, persist, read_opt, run, sha256, wait_for_config};
use super::route::{Counters, ObservedRoute, ProxyError, RouteSpec};
use balancer::{preview_pool, set_pools_of, Balancer};
use files::{body_of, is_legacy_shared, parse_header, put, verified, without_token};

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
    /// Some: traffic moves through the Lua balancer; None: by reloads.
    pub balancer: Option<Balancer>,
    /// `proxy.https_listen`: where the hosts of TLS routes serve HTTPS
    /// (through the balancer only).
    pub https: String,
}

#[derive(Debug)]
pub struct Nginx {
    config: NginxConfig,
    /// One change at a time: services converge concurrently.
    batch: Batch,
    /// One certificate change at a time (their restore list is one file).
    certs_lock: tokio::sync::Mutex<()>,
}

const SERVERS: &str = "teal_servers.conf";
const BALANCER: &str = "teal_balancer.conf";
/// Where earlier versions of teal kept the shared files (where services
/// named `servers` and `balancer` keep theirs now): the first change
/// removes them.
const LEGACY_SHARED: [&str; 2] = ["teal-servers.conf", "teal-balancer.conf"];

impl Nginx {
    pub fn new(config: NginxConfig) -> Nginx {
        Nginx {
            config,
            batch: Batch::default(),
            certs_lock: Default::default(),
        }
    }

    /// The balancer, when traffic moves through it.
    pub fn balancer(&self) -> Option<&Balancer> {
        self.config.balancer.as_ref()
    }

    fn service_path(&self, service: &str) -> PathBuf {
        self.config.conf_dir.join(format!("teal-{service}.conf"))
    }

    /// Every managed service file's route; a file whose body no longer
    /// matches its recorded hash (or a drifted servers file) is reported as
    /// drifted. Weights and peers come from the balancer when there is one.
    pub async fn observe(&self) -> Result<BTreeMap<String, ObservedRoute>, ProxyError> {
        let dir = &self.config.conf_dir;
        let mut shared_drift = !verified(&read_opt(&dir.join(SERVERS))?);
        if self.config.balancer.is_some() {
            shared_drift |= !verified(&read_opt(&dir.join(BALANCER))?);
        }
        let files = self.service_files()?;
        let pools = match &self.config.balancer {
            Some(b) if !files.is_empty() => Some(b.pools().await?),
            _ => None,
        };
        let mut out = BTreeMap::new();
        for (service, text) in files {
            let meta = parse_header(&text);
            let drifted = shared_drift
                || meta
                    .as_ref()
                    .is_none_or(|m| body_of(&text).map(sha256) != Some(m.sha256.clone()));
            let mut obs = ObservedRoute {
                route_hash: meta.as_ref().map(|m| m.route.route_hash.clone()),
                drifted,
                ..Default::default()
            };
            let backends = match (&pools, &meta) {
                (Some(p), _) => p.get(&service).map(|p| p.colors.clone()),
                (None, Some(m)) => Some(m.route.backends.clone()),
                (None, None) => None,
            };
            if let Some(b) = backends {
                obs.weights = crate::spec::PerColor {
                    blue: b.blue.weight,
                    green: b.green.weight,
                };
                obs.addrs = crate::spec::PerColor {
                    blue: b.blue.addrs,
                    green: b.green.addrs,
                };
            }
            out.insert(service, obs);
        }
        Ok(out)
    }

    /// Responses per service and color, from the balancer's counters.
    pub async fn counters(&self) -> Result<Counters, ProxyError> {
        match &self.config.balancer {
            Some(b) => Ok(b
                .counters()
                .await?
                .into_iter()
                .filter(|(pool, _)| !pool.ends_with("@preview"))
                .collect()),
            None => Err(ProxyError::Other(
                "nginx with switch: reload counts no responses per color; set proxy.nginx.switch: balancer".into(),
            )),
        }
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
            match read_opt(&dir.join(&name))? {
                Some(text) if is_legacy_shared(&name, &text) => {}
                Some(text) => out.push((service.to_string(), text)),
                None => {}
            }
        }
        Ok(out)
    }

    /// Writes the service's files (a checked reload only when their
    /// structure changed), then, with the balancer, sets its peers.
    pub async fn apply(&self, route: &RouteSpec) -> Result<(), ProxyError> {
        self.batch.submit(route, |routes| self.apply_all(routes)).await
    }

    async fn apply_all(&self, batch: Vec<RouteSpec>) -> Result<(), ProxyError> {
        let balanced = self.config.balancer.is_some();
        let files = batch
            .iter()
            .map(|r| (self.service_path(&r.service), Some(render::service(r, balanced))))
            .collect();
        let names: Vec<&str> = batch.iter().map(|r| r.service.as_str()).collect();
        let unwritten = self.change(&names.join(", "), files).await?;
        let mut previous = None;
        let mut recorded = Ok(());
        if let Some(b) = &self.config.balancer {
            let mut pools = b.pools().await?;
            previous = Some(pools.clone());
            for r in &batch {
                set_pools_of(&mut pools, &r.service, Some(r));
            }
            recorded = b.set_pools(&pools).await;
        }
        // The record of the route, after traffic moved: a rename can stall
        // on the filesystem's journal for seconds, a switch must not.
        for (path, text) in unwritten {
            if recorded.is_ok() {
                recorded = persist(&path, text).await;
            }
        }
        // Unrecorded (a full disk), the switch would be undone by the next
        // start of nginx, and a failed switch must leave traffic where it
        // was, as it says: it goes back now.
        match (recorded, &self.config.balancer, previous) {
            (Err(e), Some(b), Some(previous)) => Err(match b.put_back(&previous).await {
                Ok(()) => e,
                Err(back) => ProxyError::Other(format!("{e}; then putting traffic back: {back}")),
            }),
            (recorded, ..) => recorded,
        }
    }

    /// Removes the service's file and its servers, then its peers.
    pub async fn remove(&self, service: &str) -> Result<(), ProxyError> {
        let _one = self.batch.exclusive().await;
        let path = self.service_path(service);
        if path.exists() {
            self.change(service, vec![(path, None)]).await?;
        }
        if let Some(b) = &self.config.balancer {
            let mut pools = b.pools().await?;
            if pools.contains_key(service) || pools.contains_key(&preview_pool(service)) {
                set_pools_of(&mut pools, service, None);
                b.set_pools(&pools).await?;
            }
        }
        Ok(())
    }

    /// Renders the shared files again with the current settings and
    /// reloads when they changed.
    pub async fn resync(&self) -> Result<(), ProxyError> {
        let _one = self.batch.exclusive().await;
        self.change("(all services)", vec![]).await.map(|_| ())
    }

    /// `nginx -t`, then a reload, of the files as they are (a managed
    /// nginx whose nginx.conf changed).
    pub async fn reload_checked(&self) -> Result<(), ProxyError> {
        let _one = self.batch.exclusive().await;
        run(&self.config.test)
            .await
            .map_err(|(command, output)| ProxyError::Rejected {
                service: "(all services)".into(),
                command,
                output,
            })?;
        run(&self.config.reload)
            .await
            .map(|_| ())
            .map_err(|(command, output)| ProxyError::Command { command, output })
    }

    /// Applies a change of service files plus the regenerated shared
    /// files. A change of structure is written, checked by `nginx -t` (all
    /// rolled back when it is rejected), reloaded and awaited. When only
    /// headers differ (a switch through the balancer), nothing is written:
    /// the files are returned, to be recorded once traffic has moved.
    async fn change(
        &self,
        service: &str,
        files: Vec<(PathBuf, Option<String>)>,
    ) -> Result<Vec<(PathBuf, String)>, ProxyError> {
        let dir = &self.config.conf_dir;
        let mut files = files;
        files.extend(self.rerendered(&files)?);
        let mut structural = false;
        let mut olds = vec![];
        for (path, text) in &files {
            let old = read_opt(path)?;
            structural |= old.as_deref().and_then(body_of) != text.as_deref().and_then(body_of);
            olds.push(old);
        }
        // Routes from every header, drifted bodies included (a hand-edited
        // upstream must not make its server disappear), with the change.
        let changed = |p: &Path| files.iter().any(|(f, _)| f == p);
        let mut routes: Vec<RouteSpec> = self
            .service_files()?
            .iter()
            .filter(|(svc, _)| !changed(&self.service_path(svc)))
            .filter_map(|(_, t)| parse_header(t).map(|m| m.route))
            .collect();
        routes.extend(
            files
                .iter()
                .filter_map(|(_, t)| parse_header(t.as_deref()?).map(|m| m.route)),
        );
        routes.sort_by(|a, b| a.service.cmp(&b.service));
        let token = config_token();
        let balanced = self.config.balancer.is_some();
        let tls = match &self.config.balancer {
            Some(b) if routes.iter().any(|r| r.tls.is_some()) => {
                self.prepare_tls()?;
                Some(tls::Tls::new(&self.config.https, b))
            }
            _ => None,
        };
        let servers = render::servers(
            &routes,
            &self.config.listen,
            &token,
            self.config.client_keepalive,
            balanced,
            tls.as_ref(),
        );
        let mut shared = vec![(dir.join(SERVERS), Some(servers))];
        if let Some(b) = &self.config.balancer {
            b.prepare()?;
            shared.push((dir.join(BALANCER), Some(render::balancer(b))));
        }
        for name in LEGACY_SHARED {
            if read_opt(&dir.join(name))?.is_some_and(|t| is_legacy_shared(name, &t)) {
                shared.push((dir.join(name), None));
            }
        }
        for (path, text) in &shared {
            let old = read_opt(path)?;
            // The servers file carries a fresh token: compare without it.
            structural |= old.as_deref().map(without_token) != text.as_deref().map(without_token);
            structural |= !verified(&old);
        }
        if !structural {
            return Ok(files.into_iter().filter_map(|(p, t)| Some((p, t?))).collect());
        }
        let mut backup: Vec<(PathBuf, Option<String>)> = files.iter().map(|(p, _)| p.clone()).zip(olds).collect();
        for (path, text) in &files {
            put(path, text.as_deref())?;
        }
        for (path, text) in shared {
            backup.push((path.clone(), read_opt(&path)?));
            put(&path, text.as_deref())?;
        }
        if let Err((command, output)) = run(&self.config.test).await {
            for (path, text) in backup.iter().rev() {
                put(path, text.as_deref())?;
            }
            if is_missing_lua(&output) {
                return Err(ProxyError::NoLua {
                    detail: first_error_line(&output),
                });
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
        wait_for_config(&self.config.listen, &token).await?;
        Ok(vec![])
    }
}

impl Nginx {
    /// Service files outside `files` whose body is not what this teal
    /// renders from their header (written by an older teal, or edited by
    /// hand): rendered again, so every file of a reload agrees on names.
    fn rerendered(&self, files: &[(PathBuf, Option<String>)]) -> Result<Vec<(PathBuf, Option<String>)>, ProxyError> {
        let balanced = self.config.balancer.is_some();
        let mut out = vec![];
        for (service, text) in self.service_files()? {
            let path = self.service_path(&service);
            let Some(meta) = parse_header(&text).filter(|_| !files.iter().any(|(f, _)| *f == path)) else {
                continue;
            };
            let fresh = render::service(&meta.route, balanced);
            if body_of(&fresh) != body_of(&text) {
                out.push((path, Some(fresh)));
            }
        }
        Ok(out)
    }
}

/// `nginx -t` output of an nginx that lacks the Lua module or resty.core.
fn is_missing_lua(output: &str) -> bool {
    output.contains("unknown directive \"lua_shared_dict\"")
        || output.contains("unknown directive \"init_by_lua_block\"")
        || output.contains("unknown directive \"access_by_lua_block\"")
        || output.contains("unknown directive \"balancer_by_lua_block\"")
        || output.contains("resty.core")
}

fn first_error_line(output: &str) -> String {
    output
        .lines()
        .find(|l| l.contains("[emerg]") || l.contains("[error]"))
        .unwrap_or(output.lines().next().unwrap_or(""))
        .trim()
        .to_string()
}
