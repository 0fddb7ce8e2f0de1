//! The long-running reconciler. Each pass fetches the branch, observes the
//! host afresh and plans again (level-triggered), so a crash anywhere is
//! recovered by the next pass. An invalid commit is never applied: the last
//! good desired state keeps being served. A failed deploy is retried with
//! backoff, or at once on a new commit. Problems are logged once per
//! change of state, not once per pass.

pub mod backoff;
pub mod dashboard;
mod docker_events;
mod fetch;
pub mod figures;
pub mod host_check;
pub mod http;
mod listener;
pub mod lock;
mod outcomes;
pub mod rlimit;
mod rollouts;
pub mod status;
pub mod systemd;
pub mod waves;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{watch, Notify};
use tracing::{error, info, warn};

use crate::config::HostConfig;
use crate::engine::StepEvent;
use crate::events::EventLog;
use crate::reconcile::{Host, Revision};
use backoff::Backoff;

/// The daemon's state between passes (what it must remember is small: the
/// last good commit, backoff, and what it already reported).
pub struct Daemon {
    host: Host,
    log: EventLog,
    backoff: Backoff,
    last_good: Option<Revision>,
    /// The last problem reported, so each is logged once.
    last_problem: Option<String>,
    /// Passes in a row that could not reach the remote, Docker or the proxy
    /// (an invalid commit is not an outage: a fix is picked up at once).
    failing_passes: u32,
    /// Whether the current pass hit such an outage.
    outage: bool,
    refused: HashSet<(String, String)>,
    /// Wakes the loop before the poll interval (file watcher, webhook).
    pub trigger: Arc<Notify>,
    /// Touched on every step and pass, for the systemd watchdog.
    pub progress: systemd::Progress,
    /// Status and metrics, read by the HTTP API.
    pub shared: status::Shared,
    /// Asks the loop to re-read the host config (SIGHUP).
    pub reload: Arc<Notify>,
    /// Reads the host config again, for `reload`.
    pub config_loader: Option<Box<dyn Fn() -> anyhow::Result<HostConfig> + Send + Sync>>,
    _watcher: Option<notify::RecommendedWatcher>,
    _docker_events: docker_events::Watch,
    /// Hosts of earlier waves, read through their status API.
    peers: waves::Peers,
}

impl Daemon {
    /// Connects the drivers and, for a repo on a local path, starts a
    /// watcher that triggers a pass as soon as the repo changes.
    pub async fn new(config: HostConfig) -> anyhow::Result<Daemon> {
        let shared = status::Shared::default();
        // Secrets read again at each fetch: checked once here, so an empty
        // token stops the start, not each pass. The others are read below.
        if let Some(f) = &config.repo.token_file {
            crate::secret::Secret::read(f, "repo.token_file")?;
        }
        if let Some(f) = &config.repo.ssh_key {
            crate::secret::warn_if_shared(f, "repo.ssh_key");
        }
        let targets = crate::notify::targets(&config)?;
        let notices = crate::notify::start(config.host.resolved_name(), targets);
        let log = EventLog::open(&config.state_dir)?
            .with_rotation(config.events.rotation())
            .with_broadcast(shared.events.clone())
            .with_sink(notices);
        let trigger = Arc::new(Notify::new());
        let watcher = if config.repo.watch {
            watch_local_repo(&config.repo.url, trigger.clone())
        } else {
            None
        };
        let token = read_token(config.host.token_file.as_deref())?;
        let host = Host::connect(config).await?;
        let docker_events = watch_docker(&host, trigger.clone());
        Ok(Daemon {
            peers: waves::Peers::new(token),
            host,
            log,
            backoff: Backoff::default(),
            last_good: None,
            last_problem: None,
            failing_passes: 0,
            outage: false,
            refused: HashSet::new(),
            trigger,
            progress: systemd::Progress::default(),
            shared,
            reload: Arc::new(Notify::new()),
            config_loader: None,
            _watcher: watcher,
            _docker_events: docker_events,
        })
    }

    /// Passes until `shutdown` turns true; a pass in flight is finished
    /// first, so no step is cut in half. `ready` is called once, after the
    /// first pass.
    pub async fn run(&mut self, mut shutdown: watch::Receiver<bool>, ready: &(dyn Fn() + Sync)) {
        let mut first = true;
        while !*shutdown.borrow() {
            self.progress.touch();
            self.pass().await;
            self.progress.touch();
            if first {
                ready();
                first = false;
            }
            self.failing_passes = if self.outage { self.failing_passes + 1 } else { 0 };
            let wait = backoff::problem_delay(self.host.config.repo.poll, self.failing_passes);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.trigger.notified() => {}
                _ = self.reload.notified() => self.reconfigure().await,
                _ = shutdown.changed() => {}
            }
        }
        info!("stopping: no step was in flight");
    }

    /// Re-reads the host config and reconnects the drivers. A new config
    /// that does not load, or whose drivers cannot connect, is reported and
    /// the running one kept. The state dir and the status API address stay
    /// as they were until a restart.
    async fn reconfigure(&mut self) {
        let Some(load) = &self.config_loader else { return };
        let mut config = match load() {
            Ok(c) => c,
            Err(e) => {
                return error!(error = %format!("{e:#}"), "SIGHUP: the host config does not load; keeping the running one")
            }
        };
        if config == self.host.config {
            return info!("SIGHUP: host config unchanged");
        }
        let old = &self.host.config;
        if config.state_dir != old.state_dir || config.listen != old.listen || config.proxy.managed || old.proxy.managed
        {
            warn!("SIGHUP: state_dir, listen and managed proxies change only on restart");
            config.state_dir = old.state_dir.clone();
            config.listen = old.listen.clone();
            if config.proxy.managed || old.proxy.managed {
                config.proxy = old.proxy.clone();
            }
        }
        // The notifier and its secrets are set up once, at start.
        if config.notify != old.notify {
            warn!("SIGHUP: notify targets change only on restart");
            config.notify = old.notify.clone();
        }
        // The status API is set up once too.
        if config.host.names != old.host.names || config.api != old.api {
            warn!("SIGHUP: host.names and api change only on restart");
        }
        if config.host.name != old.host.name {
            warn!("SIGHUP: notices keep the old host name until a restart");
        }
        match Host::connect(config).await {
            Ok(host) => {
                self._docker_events = watch_docker(&host, self.trigger.clone());
                self._watcher = if host.config.repo.watch {
                    watch_local_repo(&host.config.repo.url, self.trigger.clone())
                } else {
                    None
                };
                info!(repo = %host.config.repo.url, branch = %host.config.repo.branch, "SIGHUP: host config reloaded");
                self.host = host;
                self.last_good = None;
                self.trigger.notify_one();
            }
            Err(e) => error!(error = %e, "SIGHUP: cannot use the new host config; keeping the running one"),
        }
    }

    /// The host config in use (the last one loaded, SIGHUP included).
    pub fn config(&self) -> &HostConfig {
        &self.host.config
    }

    /// A clean stop: stops the managed proxy teal owns, if any. (A crash
    /// leaves it serving, for the next teal to adopt.)
    pub fn stop_proxy(&mut self) {
        self.host.stop_proxy();
    }

    fn problem(&mut self, p: Option<String>) {
        if p != self.last_problem {
            match &p {
                Some(msg) => warn!(problem = %msg, "still serving the last good state"),
                None if self.last_problem.is_some() => info!("recovered"),
                None => {}
            }
            self.last_problem = p;
        }
    }

    /// The pass's problem (`None`: it met none) in the status, and in
    /// the log once per change.
    fn report(&mut self, p: Option<String>) {
        self.shared.status.write().expect("status lock").last_error = p.clone();
        self.problem(p);
    }

    /// One pass: fetch, observe, plan, execute what backoff allows.
    pub async fn pass(&mut self) {
        let started = Instant::now();
        self.outage = false;
        let previous = self.last_good.as_ref().map(|r| r.commit.clone());
        let fetch_problem = self.fetch().await;
        let Some(rev) = self.last_good.clone() else {
            return self.report(fetch_problem);
        };
        let new_commit = previous.as_deref() != Some(rev.commit.as_str());
        let observed = match self.host.observe(&rev.desired).await {
            Ok(o) => o,
            Err(e) => {
                // A swarm without a leader heals when its managers come
                // back, and one call per poll costs its manager nothing:
                // retry each poll, so the deploy follows at once.
                self.outage |= !e.is_no_quorum();
                return self.report(Some(e.to_string()));
            }
        };
        let mut plan = crate::plan::plan(&rev.desired, &observed);
        let now = Instant::now();
        for o in crate::outcome::planned(&plan) {
            self.planned(&o, &rev);
        }
        self.mark_converged(&plan, &rev.commit);
        self.gate_waves(&mut plan, &rev).await;
        plan.services
            .retain(|sp| !sp.steps.is_empty() && self.backoff.allows(&sp.service, &rev.commit, now));
        let mut deploy_problem = None;
        if !plan.services.is_empty() {
            deploy_problem = self.execute(&plan, &rev, new_commit).await;
        }
        let fresh = if plan.services.is_empty() {
            Ok(observed)
        } else {
            self.host.observe(&rev.desired).await
        };
        if let Ok(o) = fresh {
            self.update_services(&o);
            figures::probe_health(&self.shared, &self.host.docker, &rev.desired, &o);
        }
        self.report(deploy_problem.or(fetch_problem));
        let mut m = self.shared.metrics.write().expect("metrics lock");
        m.reconcile_count += 1;
        m.reconcile_seconds_last = started.elapsed().as_secs_f64();
        m.reconcile_seconds_sum += m.reconcile_seconds_last;
    }
}

/// One log line per finished step. A step without a color (removing a
/// service) has no `color` field at all, rather than an empty one.
pub(crate) fn log_step(e: &StepEvent) {
    let step = crate::plan::render::step(&e.step);
    let color = e.step.color().map(tracing::field::display);
    match &e.result {
        Ok(()) => info!(service = %e.service, color, commit = %short(&e.commit), step = %step, "ok"),
        Err(why) => {
            warn!(service = %e.service, color, commit = %short(&e.commit), step = %step, error = %why, "failed")
        }
    }
}

/// The fleet's bearer token for status reads, read once at start (a
/// SIGHUP re-reads it with the rest of the config on restart).
fn read_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<crate::secret::Secret>> {
    let Some(f) = file else { return Ok(None) };
    Ok(Some(crate::secret::Secret::read(f, "host.token_file")?))
}

/// The service name of events about a whole commit (a refused head).
const REPO: &str = "(repo)";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn round(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.as_millis() as u64)
}

fn short(commit: &str) -> crate::commit::ShortCommit<'_> {
    crate::commit::ShortCommit::of(commit)
}

/// Passes on the events of this host's replicas (see `docker_events`).
fn watch_docker(host: &Host, trigger: Arc<Notify>) -> docker_events::Watch {
    let client = host.docker.docker().client().clone();
    docker_events::Watch(docker_events::watch(
        client,
        host.config.docker.network.clone(),
        trigger,
    ))
}

/// For a repo on this machine, a watcher that wakes the loop on any change
/// (a commit or push updates its refs), so deploys need not wait a poll.
fn watch_local_repo(url: &str, trigger: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let path = url.strip_prefix("file://").unwrap_or(url);
    if path.contains("://") || path.contains('@') {
        return None;
    }
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Only writes: a fetch reads the repo, and reacting to those reads
        // (inotify reports opens and closes) would start pass after pass.
        use notify::EventKind::{Create, Modify, Remove};
        if res.is_ok_and(|e| matches!(e.kind, Create(_) | Modify(_) | Remove(_))) {
            trigger.notify_one();
        }
    })
    .ok()?;
    w.watch(std::path::Path::new(path), notify::RecursiveMode::Recursive)
        .ok()?;
    Some(w)
}
