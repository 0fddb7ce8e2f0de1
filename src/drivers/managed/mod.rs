//! Proxies that teal starts and owns (`proxy.managed: true`). The proxy is
//! the data plane and teal the control plane: the proxy keeps serving
//! while teal is down, and a restarted teal adopts it (a pid record in the
//! managed dir, checked against `/proc/<pid>/cmdline` naming this dir's
//! config) instead of starting a second one. Never two proxies on one
//! address: a port held by anything else is an error naming the holder.
//! A clean stop of teal stops the proxy (`Managed::stop`).

mod account;
mod launch;
pub mod process;
mod supervise;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::proxy::ProxyDriver;
use super::route::ProxyError;
use crate::config::{NginxSwitch, ProxyKind};
pub use account::{worker_account, Account};
pub use launch::{find, lua_modules};
pub use supervise::Supervised;

/// What to run, and where its files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedSpec {
    pub kind: ProxyKind,
    /// The proxy's own dir: config, logs, sockets, pid record.
    pub dir: PathBuf,
    /// Where it serves traffic, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Where it serves HTTPS once a route has `tls`.
    pub https: String,
    pub switch: NginxSwitch,
    pub client_keepalive: bool,
    /// `proxy.user`: who the workers run as; `None`: the distribution's
    /// user for the proxy, else `nobody` (see `account`).
    pub user: Option<String>,
}

impl ManagedSpec {
    /// A managed HAProxy in `dir`.
    pub fn haproxy(dir: &Path, listen: &str) -> ManagedSpec {
        ManagedSpec {
            kind: ProxyKind::Haproxy,
            dir: dir.to_path_buf(),
            listen: listen.to_string(),
            https: "0.0.0.0:443".into(),
            switch: NginxSwitch::Balancer,
            client_keepalive: true,
            user: None,
        }
    }

    /// A managed nginx in `dir`, switching through the balancer.
    pub fn nginx(dir: &Path, listen: &str) -> ManagedSpec {
        ManagedSpec {
            kind: ProxyKind::Nginx,
            ..ManagedSpec::haproxy(dir, listen)
        }
    }

    /// The config file; its path in a process's command line marks the
    /// process as the proxy of this dir.
    pub fn config_path(&self) -> PathBuf {
        config_path(&self.dir, self.kind)
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("managed.json")
    }
}

fn config_path(dir: &Path, kind: ProxyKind) -> PathBuf {
    dir.join(match kind {
        ProxyKind::Haproxy => "teal.cfg",
        ProxyKind::Nginx => "nginx.conf",
    })
}

/// The pid record: which proxy teal started here.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    kind: ProxyKind,
    pid: u32,
    listen: String,
}

/// How the proxy came to be teal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Started by this teal.
    Started,
    /// Started by an earlier teal and taken over, still serving.
    Adopted,
}

/// A running proxy teal owns.
pub struct Managed {
    pid: u32,
    /// Set when this process started it (and so must reap it).
    child: Option<Child>,
    /// Tests and benches stop their proxy on drop; the daemon only on a
    /// clean stop, so a crash leaves traffic flowing.
    stop_on_drop: bool,
    spec: ManagedSpec,
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("pid", &self.pid)
            .field("spec", &self.spec)
            .finish()
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if self.stop_on_drop {
            self.halt();
        }
    }
}

impl Managed {
    /// The pid of the proxy's master process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn spec(&self) -> &ManagedSpec {
        &self.spec
    }

    /// True while the proxy runs.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => is_ours(self.pid, &self.spec),
        }
    }

    /// Stops the proxy and its workers and forgets the record.
    pub fn stop(mut self) {
        self.halt();
        self.stop_on_drop = false;
    }

    fn halt(&mut self) {
        let pid = self.pid;
        let mut child = self.child.take();
        process::terminate(pid, Duration::from_secs(5), || match &mut child {
            Some(c) => !matches!(c.try_wait(), Ok(None)),
            None => !process::alive(pid),
        });
        let _ = std::fs::remove_file(self.spec.record_path());
    }

    /// Starts the proxy again from its files when it died (it then serves
    /// the routes they record); true when it did. The driver stays valid.
    pub fn revive(&mut self) -> Result<bool, ProxyError> {
        if self.running() {
            return Ok(false);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        // Workers of the dead master may still hold the port.
        if process::group(self.pid).is_none() {
            process::signal(-(self.pid as i32), libc::SIGKILL);
        }
        refuse_held(&self.spec)?;
        let child = launch::spawn(&self.spec)?;
        self.pid = child.id();
        self.child = Some(child);
        write_record(&self.spec, self.pid)?;
        Ok(true)
    }
}

/// A fresh proxy for tests and benches, stopped on drop. A held port is
/// an error naming the holder.
pub async fn start(spec: &ManagedSpec) -> Result<(Managed, ProxyDriver), ProxyError> {
    refuse_held(spec)?;
    let (mut m, driver) = start_new(spec)?;
    m.stop_on_drop = true;
    Ok((m, driver))
}

fn start_new(spec: &ManagedSpec) -> Result<(Managed, ProxyDriver), ProxyError> {
    let child = launch::spawn(spec)?;
    let pid = child.id();
    let m = Managed {
        pid,
        child: Some(child),
        stop_on_drop: false,
        spec: spec.clone(),
    };
    write_record(spec, pid)?;
    let driver = launch::driver(spec)?;
    Ok((m, driver))
}

/// For the daemon: the proxy an earlier teal started here, adopted as it
/// runs (its routes are re-applied by the next pass), or else a new one.
/// A proxy of this dir of the other kind is stopped first; a port held by
/// anything else is an error naming it.
pub async fn adopt_or_start(spec: &ManagedSpec) -> Result<(Managed, ProxyDriver, Origin), ProxyError> {
    std::fs::create_dir_all(&spec.dir).map_err(|source| ProxyError::Io {
        path: spec.dir.display().to_string(),
        source,
    })?;
    if let Some((m, driver)) = attach(spec)? {
        // nginx.conf as this teal writes it (an older teal's may include
        // other file names): read at the next reload, checked by it.
        if spec.kind == ProxyKind::Nginx {
            launch::rewrite_nginx_conf(spec)?;
        }
        if let Some(old) = read_record(spec).filter(|r| r.listen != spec.listen) {
            relisten(spec, &driver, &old.listen).await?;
        }
        reuser(spec, &driver, m.pid).await?;
        write_record(spec, m.pid)?;
        return Ok((m, driver, Origin::Adopted));
    }
    // Ours, but of the other kind (the host config changed kind).
    let other = match spec.kind {
        ProxyKind::Haproxy => ProxyKind::Nginx,
        ProxyKind::Nginx => ProxyKind::Haproxy,
    };
    let other_spec = ManagedSpec {
        kind: other,
        ..spec.clone()
    };
    if let Some(pid) = find_ours(&other_spec) {
        process::terminate(pid, Duration::from_secs(5), || !process::alive(pid));
    }
    refuse_held(spec)?;
    let (m, driver) = start_new(spec)?;
    Ok((m, driver, Origin::Started))
}

/// The running proxy of this dir, if there is one, without starting any:
/// for commands that only read (`teal plan`).
pub fn attach(spec: &ManagedSpec) -> Result<Option<(Managed, ProxyDriver)>, ProxyError> {
    let Some(pid) = find_ours(spec) else { return Ok(None) };
    let driver = launch::driver(spec)?;
    let m = Managed {
        pid,
        child: None,
        stop_on_drop: false,
        spec: spec.clone(),
    };
    Ok(Some((m, driver)))
}

/// The master pid of this dir's proxy: from the record, or (record lost)
/// from whoever holds the listen address, when its command line names
/// this dir's config.
fn find_ours(spec: &ManagedSpec) -> Option<u32> {
    if let Some(r) = read_record(spec).filter(|r| r.kind == spec.kind) {
        if is_ours(r.pid, spec) {
            return Some(r.pid);
        }
    }
    let holder = process::holder(&listen_addr(&spec.listen)?)?;
    process::owner_naming(holder.pid, &spec.config_path().display().to_string())
}

fn is_ours(pid: u32, spec: &ManagedSpec) -> bool {
    process::alive(pid) && process::cmdline(pid).is_some_and(|c| c.contains(&spec.config_path().display().to_string()))
}

/// An error naming whoever holds `spec.listen`, if anyone does.
fn refuse_held(spec: &ManagedSpec) -> Result<(), ProxyError> {
    let Some(addr) = listen_addr(&spec.listen) else {
        return Ok(());
    };
    match process::holder(&addr) {
        Some(h) => Err(ProxyError::PortHeld {
            listen: spec.listen.clone(),
            holder: h.to_string(),
        }),
        None if std::net::TcpListener::bind(addr).is_err() => Err(ProxyError::PortHeld {
            listen: spec.listen.clone(),
            holder: "a process this user cannot see".into(),
        }),
        None => Ok(()),
    }
}

fn listen_addr(listen: &str) -> Option<SocketAddr> {
    listen.parse().ok()
}

/// The adopted proxy moves to a new listen address: the config is
/// rewritten and reloaded in place (HAProxy hands its sockets over; no
/// second process ever listens).
async fn relisten(spec: &ManagedSpec, driver: &ProxyDriver, old: &str) -> Result<(), ProxyError> {
    refuse_held(spec)?;
    tracing::info!(from = %old, to = %spec.listen, "managed proxy: moving to the new listen address");
    if spec.kind == ProxyKind::Nginx {
        launch::rewrite_nginx_conf(spec)?;
    }
    driver.resync().await
}

/// The adopted proxy's workers run as another user than they should (an
/// older teal left them root, or `proxy.user` changed): a checked reload
/// of the rewritten config starts new workers as that user, and the old
/// ones finish their requests.
async fn reuser(spec: &ManagedSpec, driver: &ProxyDriver, pid: u32) -> Result<(), ProxyError> {
    let Some(want) = account::worker_account(spec)? else {
        return Ok(());
    };
    if process::children(pid)
        .iter()
        .all(|w| process::euid(*w) == Some(want.uid))
    {
        return Ok(());
    }
    tracing::info!(user = %want.name, "managed proxy: its workers move to their own user");
    match driver {
        ProxyDriver::Nginx(_) => launch::reload_nginx(spec).await,
        ProxyDriver::Haproxy(_) => driver.resync().await,
    }
}

fn read_record(spec: &ManagedSpec) -> Option<Record> {
    let text = std::fs::read_to_string(spec.record_path()).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_record(spec: &ManagedSpec, pid: u32) -> Result<(), ProxyError> {
    let record = Record {
        kind: spec.kind,
        pid,
        listen: spec.listen.clone(),
    };
    let text = serde_json::to_string(&record).expect("record serialises");
    super::reload::write_atomic(&spec.record_path(), &text)
}
