//! The daemon's loop (a controller in kube-runtime's sense): asks the
//! scheduler what to do, waits on its timer and on triggers, and runs the
//! passes and reloads it asks for. It decides nothing itself (see
//! `scheduler`).

use std::time::Instant;

use tokio::sync::watch;
use tracing::{debug, info};

use super::reload::{self, Loader};
use super::scheduler::intake::Intake;
use super::scheduler::sources::Sources;
use super::scheduler::{Next, Scheduler};
use super::Daemon;

/// Runs passes until `shutdown` turns true; a pass in flight is finished
/// first, so no step is cut in half. `ready` is called once, after the
/// first pass. On SIGHUP, `load` reads the host config again (`None`:
/// SIGHUP only asks for a pass).
pub async fn run(
    daemon: &mut Daemon,
    mut intake: Intake,
    load: Option<&Loader>,
    mut shutdown: watch::Receiver<bool>,
    ready: &(dyn Fn() + Sync),
) {
    let mut scheduler = Scheduler::new(daemon.config().repo.poll, Instant::now());
    let mut sources = Sources::start(daemon.host(), intake.triggers());
    let news = intake.triggers().news();
    daemon.news = Some(news.clone());
    let mut ready = Some(ready);
    while !*shutdown.borrow() {
        intake.drain_into(&mut scheduler);
        match scheduler.next(Instant::now()) {
            Next::Pass(trigger) => {
                debug!(trigger = %trigger, "pass");
                daemon.progress().touch();
                news.store(false, std::sync::atomic::Ordering::Relaxed);
                let outage = daemon.pass(&mut scheduler.backoff).await;
                daemon.progress().touch();
                if let Some(ready) = ready.take() {
                    ready();
                }
                // Before the pass ends: a trigger it started after needs no other.
                intake.drain_into(&mut scheduler);
                scheduler.finished(outage, Instant::now());
            }
            Next::Reload => {
                let reloaded = match load {
                    Some(load) => reload::reload(daemon, load).await,
                    None => false,
                };
                if reloaded {
                    sources = Sources::start(daemon.host(), intake.triggers());
                }
                let poll = reloaded.then(|| daemon.config().repo.poll);
                scheduler.reloaded(poll, Instant::now());
            }
            Next::Wait(until) => tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                (trigger, at) = intake.recv() => scheduler.request(trigger, at),
                _ = shutdown.changed() => {}
            },
            Next::Busy => unreachable!("the loop awaits each pass before asking again"),
        }
    }
    drop(sources);
    info!("stopping: no step was in flight");
}
