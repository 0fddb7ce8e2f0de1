//! The long-running reconciler. Each pass fetches the branch, observes the
//! host afresh and plans again (level-triggered), so a crash anywhere is
//! recovered by the next pass. An invalid commit is never applied: the last
//! good desired state keeps being served. A failed deploy is retried with
//! backoff, or at once on a new commit. Problems are logged once per
//! change of state, not once per pass. `Daemon` is what a pass needs;
//! when passes run, and why, is the `scheduler`'s decision, and
//! `controller` the loop that waits on it.

mod certs;
pub mod controller;
pub mod dashboard;
mod fetch;
pub mod figures;
pub mod host_check;
pub mod http;
mod images;
mod interrupted;
mod listener;
pub mod lock;
mod outcomes;
mod reload;
pub mod rlimit;
mod rollouts;
pub mod scheduler;
pub mod status;
pub mod systemd;
pub mod waves;

use std::collections::HashSet;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::config::HostConfig;
use crate::engine::StepEvent;
use crate::events::EventLog;
use crate::plan::{Change, Plan};
use crate::reconcile::{Host, Revision};
use scheduler::backoff::Backoff;
use waves::Gate;

/// What a pass needs, and what it must remember between passes (small:
/// the last good commit and what it already reported). When passes run
/// is the scheduler's business; backoff is lent to each pass.
pub struct Daemon {
    host: Host,
    log: EventLog,
    last_good: Option<std::sync::Arc<Revision>>,
    /// The head's files and signature, read and checked once per commit.
    read_cache: std::sync::Arc<crate::reconcile::cache::ReadCache>,
    /// The last problem reported, so each is logged once.
    last_problem: Option<String>,
    refused: HashSet<(String, String)>,
    /// Touched on every step and pass, for the systemd watchdog.
    progress: systemd::Progress,
    /// Status and metrics, read by the HTTP API.
    shared: status::Shared,
    /// Hosts of earlier waves, read through their status API.
    peers: waves::Peers,
    /// What was said of each route certificate.
    said: certs::Said,
    /// A deploy ran (or none since the start) and no image cleanup since.
    images_due: bool,
    /// When the replicas were last probed for the status.
    probed_at: Option<Instant>,
    /// When the registries were last asked whether pinned tags moved.
    moved_at: Option<Instant>,
    /// Runs the event log left open at start (service -> commit), taken
    /// by the first pass that plans (`interrupted`).
    interrupted: std::collections::BTreeMap<String, String>,
    /// Set when a trigger came during the pass under way.
    pub(crate) news: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// A problem a pass met: said in the status, and once in the log.
struct Problem {
    what: String,
    /// The remote, Docker or the proxy could not be reached: the loop
    /// waits longer before the next pass. (An invalid commit is not an
    /// outage: its fix is picked up at the next poll.)
    outage: bool,
}

impl Problem {
    fn said(what: String) -> Problem {
        Problem { what, outage: false }
    }

    fn outage(what: String) -> Problem {
        Problem { what, outage: true }
    }
}

impl Daemon {
    /// Connects the drivers, opens the event log and starts the notifier.
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
        let token = read_token(config.host.token_file.as_deref())?;
        let interrupted = interrupted::open_runs(log.path());
        Ok(Daemon {
            peers: waves::Peers::new(token),
            host: Host::connect(config).await?.with_watch(),
            log,
            last_good: None,
            read_cache: Default::default(),
            last_problem: None,
            refused: HashSet::new(),
            progress: systemd::Progress::default(),
            shared,
            said: certs::Said::default(),
            images_due: true,
            moved_at: None,
            probed_at: None,
            news: None,
            interrupted,
        })
    }

    /// Runs on `host` from now on (a SIGHUP's new host config), fetching
    /// afresh: the last good commit was the old config's.
    fn replace_host(&mut self, host: Host) {
        self.host = host;
        self.last_good = None;
        self.read_cache = Default::default();
    }

    /// The drivers and the host config in use.
    fn host(&self) -> &Host {
        &self.host
    }

    /// Status and metrics, for the HTTP API.
    pub fn shared(&self) -> &status::Shared {
        &self.shared
    }

    /// When the loop last made progress, for the systemd watchdog.
    pub fn progress(&self) -> &systemd::Progress {
        &self.progress
    }

    /// The bearer token the status API requires (host.token_file).
    pub fn status_token(&self) -> Option<String> {
        self.peers.token().map(String::from)
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

    /// One pass: fetch, observe, plan, execute what `backoff` allows.
    /// Returns whether it met an outage, for the scheduler to wait longer.
    pub async fn pass(&mut self, backoff: &mut Backoff) -> bool {
        let started = Instant::now();
        if let Err(e) = self.log.flush_held() {
            debug!(error = %e, "event log: lines held since a failed write are not written yet");
        }
        let previous = self.last_good.as_ref().map(|r| r.commit.clone());
        let fetched = self.fetch().await;
        let fetch_took = started.elapsed();
        let outage = fetched.as_ref().is_some_and(|p| p.outage);
        let fetch_problem = fetched.map(|p| p.what);
        let Some(rev) = self.last_good.clone() else {
            self.report(fetch_problem);
            return outage;
        };
        let new_commit = previous.as_deref() != Some(rev.commit.as_str());
        let observed = match self.host.observe_idle(&rev.desired).await {
            Ok(o) => o,
            Err(e) => {
                // A swarm without a leader heals when its managers come
                // back, and one call per poll costs its manager nothing:
                // retry each poll, so the deploy follows at once.
                self.report(Some(e.to_string()));
                return outage || !e.is_no_quorum();
            }
        };
        let observe_took = started.elapsed() - fetch_took;
        let state = self.host.config.state_dir.clone();
        let mut plan = crate::plan::plan(&crate::pins::with_pins(&rev.desired, &state), &observed);
        let had_changes = plan.has_changes();
        let now = Instant::now();
        for o in crate::outcome::planned(&plan) {
            self.planned(&o, &rev);
        }
        self.mark_converged(&plan, &rev.commit);
        self.gate_waves(&mut plan, &rev).await;
        plan.services
            .retain(|sp| !sp.steps.is_empty() && backoff.allows(&sp.service, &rev.commit, now));
        let mut deploy_problem = None;
        let mut unrecorded = vec![];
        let executed = !plan.services.is_empty();
        if executed {
            deploy_problem = self.execute(&plan, &rev, new_commit, backoff, &mut unrecorded).await;
            self.images_due = true;
        }
        let fresh = if !executed {
            Ok(observed)
        } else {
            self.host.observe(&rev.desired).await
        };
        // Converged: nothing left to do for this commit on this host.
        let mut converged = false;
        if let Ok(o) = fresh {
            self.update_services(&o);
            let changed = new_commit || executed;
            if figures::probe_due(changed, self.probed_at, Instant::now()) {
                figures::probe_health(&self.shared, &self.host.docker, &rev.desired, &o);
                self.probed_at = Some(Instant::now());
            }
            // Nothing executed: what was observed is what runs, and the
            // first plan already said (planning 500 services twice was a
            // tenth of an idle pass).
            converged = if executed {
                !crate::plan::plan(&crate::pins::with_pins(&rev.desired, &state), &o).has_changes()
            } else {
                !had_changes
            };
        }
        self.record_runs(&rev.commit, unrecorded);
        self.certificates(&rev).await;
        self.moved(&rev).await;
        self.images(&rev, converged && deploy_problem.is_none()).await;
        self.report(deploy_problem.or(fetch_problem));
        let mut m = self.shared.metrics.write().expect("metrics lock");
        m.reconcile_count += 1;
        m.reconcile_seconds_last = started.elapsed().as_secs_f64();
        m.reconcile_seconds_sum += m.reconcile_seconds_last;
        debug!(
            total_ms = started.elapsed().as_millis() as u64,
            fetch_ms = fetch_took.as_millis() as u64,
            observe_ms = observe_took.as_millis() as u64,
            "pass"
        );
        outage
    }

    /// Holds back, for this pass, the services whose earlier waves do not
    /// serve this commit yet (or failed it), saying why once per change.
    async fn gate_waves(&mut self, plan: &mut Plan, rev: &Revision) {
        let me = self.host.config.host.resolved_name();
        for sp in plan.services.iter_mut().filter(|s| !s.steps.is_empty()) {
            // A deleted service has no waves: it leaves every host at once.
            let Some(svc) = rev.desired.services.get(&sp.service) else {
                continue;
            };
            let fleet = &self.host.config.fleet;
            let waiting = match self.peers.gate(&rev.desired, fleet, &me, svc, &rev.commit).await {
                Gate::Go => None,
                Gate::Wait(m) | Gate::Stop(m) => Some(m),
            };
            let mut status = self.shared.status.write().expect("status lock");
            let entry = status.services.entry(sp.service.clone()).or_default();
            if entry.waiting != waiting {
                if let Some(m) = &waiting {
                    info!(service = %sp.service, commit = %short(&rev.commit), "{m}");
                }
                entry.waiting = waiting.clone();
            }
            if waiting.is_some() {
                sp.steps.clear();
            } else {
                self.adopt_pins(svc);
            }
        }
    }

    /// Pins the service's image tags this host has not pulled yet to the
    /// digests the earlier waves run them at, so a tag moved in the
    /// registry between two waves' pulls changes no host's bytes. A tag
    /// this host already pinned keeps its pin.
    fn adopt_pins(&self, svc: &crate::spec::Service) {
        let theirs = self.peers.pins(&svc.name);
        if theirs.is_empty() || self.host.config.docker.mode != crate::config::DockerMode::Engine {
            return;
        }
        let pins = crate::pins::Pins::new(&self.host.config.state_dir);
        for image in [&svc.images.blue, &svc.images.green].into_iter().flatten() {
            if let (Some(digest), None) = (theirs.get(image), pins.get(image)) {
                match pins.set(image, digest) {
                    Ok(()) => {
                        info!(service = %svc.name, image = %image, digest = %digest, "pinned as the earlier wave runs it")
                    }
                    Err(e) => warn!(service = %svc.name, error = %e, "cannot record a pin"),
                }
            }
        }
    }

    /// Services with nothing to do serve this commit.
    fn mark_converged(&mut self, plan: &Plan, commit: &str) {
        let interrupted = std::mem::take(&mut self.interrupted);
        for sp in plan.services.iter().filter(|s| s.change == Change::None) {
            self.mark(&sp.service, Some(commit), None);
            if interrupted.get(&sp.service).is_some_and(|c| c == commit) {
                info!(service = %sp.service, commit = %short(commit), "a deploy cut short after its last step (teal stopped) had converged: its deploy line is written now");
                self.record(&sp.service, commit, crate::events::EventResult::Ok, 0, None);
            }
        }
    }

    /// Records what peers of later waves read: the commit a service
    /// serves, or the one that failed it.
    fn mark(&self, service: &str, serving: Option<&str>, failed: Option<&str>) {
        mark(&self.shared, service, serving, failed);
    }
}

/// Records in the status what peers of later waves read: the commit
/// `service` serves, or the one that failed it.
pub(crate) fn mark(shared: &status::Shared, service: &str, serving: Option<&str>, failed: Option<&str>) {
    let mut status = shared.status.write().expect("status lock");
    let s = status.services.entry(service.to_string()).or_default();
    if let Some(c) = serving {
        s.serving = Some(c.to_string());
        s.failed = None;
        s.waiting = None;
    }
    if let Some(c) = failed {
        s.failed = Some(c.to_string());
    }
}

/// One log line per finished step. A step without a color (removing a
/// service) has no `color` field at all, rather than an empty one.
pub(crate) fn log_step(e: &StepEvent) {
    let step = crate::plan::render::step(&e.step);
    let color = e.step.color().map(tracing::field::display);
    match &e.result {
        Ok(()) => info!(service = %e.service, color, commit = %short(&e.commit), step = %step, "ok"),
        Err(why) if e.waiting => info!(service = %e.service, color, commit = %short(&e.commit), step = %step, "{why}"),
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
