//! `teal apply`: one reconcile pass with progress on stderr, then exit.

use std::time::Instant;

use anyhow::Context;

use super::host::{fetch, HostArgs};
use crate::commit::ShortCommit;
use crate::daemon::lock::{Holder, LockError, StateLock};
use crate::engine::StepEvent;
use crate::events::{Event, EventLog, EventResult};
use crate::outcome::{self, Outcome};
use crate::plan::render;
use crate::printable::field;
use crate::reconcile::Host;
use crate::spec::duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
}

/// Exit 0 when the host runs what the commit asks for, 1 otherwise
/// (also when a daemon or another apply holds the state dir).
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let config = args.host.load()?;
    // Before anything is fetched or recorded: a daemon on this state dir
    // would race this pass on the proxy's files and the containers.
    let _lock = match StateLock::acquire_as(&config.state_dir, Holder::Apply) {
        Ok(lock) => lock,
        Err(LockError::Held { path, pid, holder }) => {
            eprintln!("teal apply: {}", held(&config.state_dir, &path, pid, holder));
            return Ok(super::exit::ERROR);
        }
        Err(e) => return Err(e.into()),
    };
    let started = Instant::now();
    let rev = fetch(&config).await?;
    crate::reconcile::record_applied(&config.state_dir, &rev.commit)
        .with_context(|| format!("recording the applied commit in {}", config.state_dir.display()))?;
    let short = ShortCommit::of(&rev.commit);
    eprintln!("teal apply: {} at {short}", config.repo.url);
    let log = EventLog::open(&config.state_dir)?.with_rotation(config.events.rotation());
    let host = Host::connect(config).await?;
    // `pull: always`: a moved tag is pinned anew first, so this pass redeploys it.
    if rev
        .desired
        .services
        .values()
        .any(|s| s.pull == crate::spec::PullPolicy::Always)
    {
        crate::reconcile::moved::follow(&host.config, &rev.desired).await;
    }
    let progress = |e: &StepEvent| {
        let took = duration::format(std::time::Duration::from_millis(e.duration.as_millis() as u64));
        match &e.result {
            Ok(()) => eprintln!("  {}: {} ... ok ({took})", e.service, render::step(&e.step)),
            Err(why) => eprintln!(
                "  {}: {} ... FAILED ({took}): {}",
                e.service,
                render::step(&e.step),
                field(&why.to_string())
            ),
        }
        if let Err(err) = log.append(&Event::from(e)) {
            eprintln!("  (could not append to {}: {err})", log.path().display());
        }
    };
    // Pull progress comes from the registry, errors from containers and git.
    let pulling = |service: &str, line: &str| eprintln!("  {service}: {}", field(line));
    let rollout = |p: &crate::strategy::Progress| eprintln!("  {}: {}", p.service, crate::strategy::describe(p));
    let hooks = crate::reconcile::Hooks {
        interrupted: &|| false,
        on_step: &progress,
        on_progress: &pulling,
        on_rollout: &rollout,
    };
    let (plan, runs) = host.apply(&rev, &hooks).await?;
    let record = |e: Event| {
        if let Err(err) = log.append(&e) {
            eprintln!("  (could not append to {}: {err})", log.path().display());
        }
    };
    let mut failed = 0;
    for o in outcome::sort(&plan, &runs) {
        let why = o.error.clone().unwrap_or_default();
        let result = match &o.outcome {
            Outcome::Deployed => EventResult::Ok,
            Outcome::Waiting => {
                eprintln!("  {}: {}", o.service, field(&o.reason.clone().unwrap_or_default()));
                continue;
            }
            // A service held after a rollback is refused by this apply too.
            Outcome::Refused | Outcome::NotAgain => {
                eprintln!("  {}: refused: {}", o.service, field(&why));
                EventResult::Refused
            }
            Outcome::RolledBack(_) => {
                eprintln!(
                    "  {}: deploy of {short} rolled back by analysis, all traffic back on the old color: {}",
                    o.service,
                    field(&why)
                );
                EventResult::RolledBack
            }
            Outcome::Failed { .. } => {
                eprintln!(
                    "  {}: deploy of {short} failed, traffic stays where it was: {}",
                    o.service,
                    field(&why)
                );
                EventResult::Failed
            }
        };
        if result != EventResult::Ok {
            failed += 1;
        }
        let ms = o.duration.as_millis() as u64;
        record(Event::outcome(&o.service, &rev.commit, result, ms, o.error));
    }
    let took = duration::format(std::time::Duration::from_millis(started.elapsed().as_millis() as u64));
    if failed == 0 {
        let n = runs.len();
        eprintln!(
            "converged: {n} service{} changed, in {took}",
            super::validate::plural(n)
        );
        match host.cleanup(&rev.desired, false).await {
            Ok(c) => eprintln!("images: {}", c.line(false)),
            Err(e) => eprintln!("images: no cleanup: {}", field(&e.to_string())),
        }
        Ok(super::exit::OK)
    } else {
        eprintln!(
            "not converged: {failed} service{} failed or refused, in {took}",
            super::validate::plural(failed)
        );
        Ok(super::exit::ERROR)
    }
}

/// Why this apply does nothing, and what to do instead.
fn held(state_dir: &std::path::Path, lock: &std::path::Path, pid: Option<u32>, holder: Holder) -> String {
    let who = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
    let dir = state_dir.display();
    match holder {
        Holder::Daemon => {
            let hup = pid.map_or("kill -HUP <its pid>".to_string(), |p| format!("kill -HUP {p}"));
            format!(
                "a teal daemon ({who}) is running on {dir} (it holds {}) and applies the branch head itself; \
                 not applying next to it. To make it fetch and apply now: `systemctl reload teal` or `{hup}` \
                 (or a push webhook to its /hooks/git)",
                lock.display()
            )
        }
        Holder::Apply => format!(
            "another teal apply ({who}) is running on {dir} (it holds {}): wait for it to end",
            lock.display()
        ),
    }
}
