//! The long-running reconciler. Each pass fetches the branch, observes the
//! host afresh and plans again (level-triggered), so a crash anywhere is
//! recovered by the next pass. An invalid commit is never applied: the last
//! good desired state keeps being served. A failed deploy is retried with
//! backoff, or at once on a new commit. Problems are logged once per
//! change of state, not once per pass.

pub mod backoff;
pub mod dashboard;
pub mod figures;
pub mod http;
pub mod lock;
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
use crate::events::{Event, EventLog};
use crate::plan::Change;
use crate::reconcile::{fetch_desired, DesiredError, Host, Revision};
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
    /// Hosts of earlier waves, read through their status API.
    peers: waves::Peers,
}

impl Daemon {
    /// Connects the drivers and, for a repo on a local path, starts a
    /// watcher that triggers a pass as soon as the repo changes.
    pub async fn new(config: HostConfig) -> anyhow::Result<Daemon> {
        let shared = status::Shared::default();
        let log = EventLog::open(&config.state_dir)?.with_broadcast(shared.events.clone());
        let trigger = Arc::new(Notify::new());
        let watcher = if config.repo.watch {
            watch_local_repo(&config.repo.url, trigger.clone())
        } else {
            None
        };
        let token = read_token(config.host.token_file.as_deref())?;
        let host = Host::connect(config).await?;
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
        match Host::connect(config).await {
            Ok(host) => {
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

    /// One pass: fetch, observe, plan, execute what backoff allows.
    pub async fn pass(&mut self) {
        let started = Instant::now();
        self.outage = false;
        let previous = self.last_good.as_ref().map(|r| r.commit.clone());
        self.fetch().await;
        let Some(rev) = self.last_good.clone() else { return };
        let new_commit = previous.as_deref() != Some(rev.commit.as_str());
        let observed = match self.host.observe(&rev.desired).await {
            Ok(o) => o,
            Err(e) => {
                self.outage = true;
                return self.problem(Some(e.to_string()));
            }
        };
        let mut plan = crate::plan::plan(&rev.desired, &observed);
        let now = Instant::now();
        for sp in plan.services.iter().filter(|s| s.change == Change::Refused) {
            if self.refused.insert((sp.service.clone(), rev.commit.clone())) {
                let why = sp.refused.as_deref().unwrap_or("");
                error!(service = %sp.service, commit = %short(&rev.commit), reason = %why, "refused");
                self.record(&sp.service, &rev.commit, "refused", 0, Some(why.to_string()));
            }
        }
        for sp in plan.services.iter().filter(|s| s.change == Change::RolledBack) {
            if self.refused.insert((sp.service.clone(), rev.commit.clone())) {
                let why = sp.refused.as_deref().unwrap_or("");
                warn!(service = %sp.service, commit = %short(&rev.commit), reason = %why, "not deployed again");
            }
            self.mark(&sp.service, None, Some(&rev.commit));
        }
        self.mark_converged(&plan, &rev.commit);
        self.gate_waves(&mut plan, &rev).await;
        plan.services
            .retain(|sp| !sp.steps.is_empty() && self.backoff.allows(&sp.service, &rev.commit, now));
        if !plan.services.is_empty() {
            self.execute(&plan, &rev, new_commit).await;
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
        let mut m = self.shared.metrics.write().expect("metrics lock");
        m.reconcile_count += 1;
        m.reconcile_seconds_last = started.elapsed().as_secs_f64();
        m.reconcile_seconds_sum += m.reconcile_seconds_last;
    }

    async fn fetch(&mut self) {
        let config = self.host.config.clone();
        let known = self.last_good.as_ref().map(|r| r.commit.clone());
        let fetched = tokio::task::spawn_blocking(move || {
            let rev = fetch_desired(&config)?;
            // The fast-forward baseline: the last commit accepted here.
            if known.as_deref() != Some(rev.commit.as_str()) {
                if let Err(e) = crate::reconcile::record_applied(&config.state_dir, &rev.commit) {
                    warn!(error = %e, "cannot record the applied commit");
                }
            }
            Ok(rev)
        })
        .await;
        let mut status = self.shared.status.write().expect("status lock").clone();
        let problem = match fetched {
            Ok(Ok(rev)) => {
                if self.last_good.as_ref().map(|r| &r.commit) != Some(&rev.commit) {
                    info!(commit = %short(&rev.commit), services = rev.desired.services.len(), "new commit");
                    self.shared.metrics.write().expect("metrics lock").last_applied_unix = Some(unix_now());
                }
                status.fetched_commit = Some(rev.commit.clone());
                status.applied_commit = Some(rev.commit.clone());
                status.config_errors.clear();
                status.refused = None;
                self.last_good = Some(rev);
                None
            }
            Ok(Err(DesiredError::Refused { commit, reason })) => {
                status.fetched_commit = Some(commit.clone());
                status.refused = Some(status::RefusedCommit {
                    commit: commit.clone(),
                    reason: reason.clone(),
                });
                self.refused_commit(&commit, &reason);
                Some(format!("refused {}: {reason}", &commit[..commit.len().min(7)]))
            }
            Ok(Err(DesiredError::Invalid { commit, diagnostics })) => {
                status.fetched_commit = Some(commit.clone());
                status.config_errors = diagnostics.0.iter().map(|d| d.to_string()).collect();
                Some(format!(
                    "commit {} has an invalid config, not applied:\n{diagnostics}",
                    short(&commit)
                ))
            }
            Ok(Err(e)) => {
                self.outage = true;
                Some(e.to_string())
            }
            Err(e) => {
                self.outage = true;
                Some(format!("fetch task: {e}"))
            }
        };
        if problem.is_some() {
            self.shared.metrics.write().expect("metrics lock").fetch_errors += 1;
        }
        status.last_error = problem.clone();
        *self.shared.status.write().expect("status lock") = status;
        self.problem(problem);
    }

    /// A head that is not signed as required, rewinds history or asks for
    /// more than the policy allows: said once per commit in the log and
    /// the event log; the last applied commit keeps being served.
    fn refused_commit(&mut self, commit: &str, reason: &str) {
        if !self.refused.insert((REPO.to_string(), commit.to_string())) {
            return;
        }
        error!(commit = %short(commit), reason = %reason, "refused: not applied, still serving the last applied commit");
        let event = Event::outcome(REPO, commit, "refused", 0, Some(reason.to_string()));
        if let Err(err) = self.log.append(&event) {
            warn!(path = %self.log.path().display(), error = %err, "cannot append to the event log");
        }
    }

    async fn execute(&mut self, plan: &crate::plan::Plan, rev: &Revision, new_commit: bool) {
        let log = self.log.clone();
        let progress = self.progress.clone();
        let on_step = move |e: &StepEvent| {
            progress.touch();
            log_step(e);
            if let Err(err) = log.append(&Event::from(e)) {
                warn!(path = %log.path().display(), error = %err, "cannot append to the event log");
            }
        };
        let on_progress = |service: &str, line: &str| info!(service = %service, "{line}");
        let on_rollout = rollouts::on_rollout(self.shared.clone(), self.progress.clone());
        let hooks = crate::reconcile::Hooks {
            on_step: &on_step,
            on_progress: &on_progress,
            on_rollout: &on_rollout,
        };
        for o in self.host.execute(plan, rev, &hooks).await {
            let ms = o.duration.as_millis() as u64;
            if !new_commit {
                *self
                    .shared
                    .metrics
                    .write()
                    .expect("metrics lock")
                    .drift_corrections
                    .entry(o.service.clone())
                    .or_default() += 1;
            }
            match o.result {
                Ok(()) => {
                    self.backoff.succeeded(&o.service);
                    self.mark(&o.service, Some(&rev.commit), None);
                    info!(service = %o.service, commit = %short(&rev.commit), took = %crate::spec::duration::format(round(o.duration)), "converged");
                    self.record(&o.service, &rev.commit, "ok", ms, None);
                }
                Err(e) if matches!(e.reason, crate::engine::StepError::RolledBack(_)) => {
                    self.mark(&o.service, None, Some(&rev.commit));
                    rollouts::count(&self.shared, &o.service, &e.reason);
                    self.record(&o.service, &rev.commit, "rolled back", ms, Some(e.reason.to_string()));
                }
                Err(e) => {
                    self.mark(&o.service, None, Some(&rev.commit));
                    let retry = self.backoff.failed(&o.service, &rev.commit, Instant::now());
                    error!(service = %o.service, commit = %short(&rev.commit), error = %e, retry_in = %crate::spec::duration::format(retry), "deploy failed, traffic stays where it was");
                    if e.step == "wait_healthy" {
                        *self
                            .shared
                            .metrics
                            .write()
                            .expect("metrics lock")
                            .failed_checks
                            .entry(o.service.clone())
                            .or_default() += 1;
                    }
                    self.record(&o.service, &rev.commit, "failed", ms, Some(e.to_string()));
                }
            }
        }
    }

    /// Records a deploy result in the event log, the status and the deploy counter.
    fn record(&self, service: &str, commit: &str, result: &str, duration_ms: u64, error: Option<String>) {
        let outcome = Event::outcome(service, commit, result, duration_ms, error.clone());
        if let Err(err) = self.log.append(&outcome) {
            warn!(path = %self.log.path().display(), error = %err, "cannot append to the event log");
        }
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let d = status::Deploy {
            commit: commit.to_string(),
            result: result.to_string(),
            duration_ms,
            error,
            at,
            message: None,
            author: None,
        };
        self.shared
            .status
            .write()
            .expect("status lock")
            .services
            .entry(service.to_string())
            .or_default()
            .last_deploy = Some(d);
        *self
            .shared
            .metrics
            .write()
            .expect("metrics lock")
            .deploys
            .entry((service.to_string(), result.to_string()))
            .or_default() += 1;
    }

    /// Live color, images and running replicas from an observation.
    fn update_services(&self, o: &crate::plan::Observed) {
        let mut status = self.shared.status.write().expect("status lock");
        status.services.retain(|name, _| o.services.contains_key(name));
        for (name, obs) in &o.services {
            let s = status.services.entry(name.clone()).or_default();
            s.live = obs.live;
            s.weights = obs.weights.clone();
            s.rolled_back = obs.rolled_back.as_ref().map(|rb| rollouts::RolledBackStatus {
                commit: rb.commit.clone(),
                figures: rb.figures.clone(),
            });
            for c in crate::spec::Color::ALL {
                let cs = obs.containers.get(c);
                *s.images.get_mut(c) = cs.first().map(|x| x.image.clone());
                *s.running.get_mut(c) = cs.iter().filter(|x| x.running).count() as u32;
            }
        }
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
fn read_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    let Some(f) = file else { return Ok(None) };
    let t = std::fs::read_to_string(f).with_context(|| format!("reading host.token_file {}", f.display()))?;
    Ok(Some(t.trim().to_string()))
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

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
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
