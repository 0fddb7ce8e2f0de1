//! When the daemon's next pass runs, and why. Triggers (the poll, a change
//! of the local repo, the webhook, a Docker event, SIGHUP) go into one
//! queue that holds at most one pass: a trigger that would run later than
//! the pass already queued is folded into it, and a pass never starts
//! while another is in flight. Backoff is data here too: the per-service
//! retry times a pass consults, and how long the loop waits after a pass
//! that met an outage. Every decision takes the time as an argument, so
//! it is tested without waiting; `intake` and `sources` are the edges
//! that feed it, and `daemon::controller` the loop that waits on it.

pub mod backoff;
pub mod intake;
pub mod sources;

use std::fmt;
use std::time::{Duration, Instant};

use backoff::{problem_delay, Backoff};

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon just started.
    Start,
    /// The poll interval (longer after an outage) ran out.
    Poll,
    /// The repo on this machine was written to (`repo.watch`).
    RepoChanged,
    /// A signed push event came to `POST /hooks/git`.
    Webhook,
    /// One of this host's replicas died or started outside teal's steps.
    Docker,
    /// SIGHUP: the host config is read again, then a pass runs.
    Reload,
    /// An ACME order ended: its certificate is installed (or its failure
    /// shown) now, not at the next poll.
    Certificate,
}

impl Trigger {
    /// How long after the trigger its pass runs. A Docker event waits a
    /// second for the rest of what happened (a replica's death and its
    /// replacement's start), so a crash loop runs at most one pass a
    /// second rather than a fetch per event.
    fn settle(self) -> Duration {
        match self {
            Trigger::Docker => Duration::from_secs(1),
            _ => Duration::ZERO,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Start => "start",
            Trigger::Poll => "poll",
            Trigger::RepoChanged => "repo changed",
            Trigger::Webhook => "webhook",
            Trigger::Docker => "docker event",
            Trigger::Reload => "SIGHUP",
            Trigger::Certificate => "certificate order ended",
        })
    }
}

/// What the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read the host config again (SIGHUP), before any pass.
    Reload,
    /// Run a pass now; the trigger that asked for it.
    Pass(Trigger),
    /// Nothing is due before this time, unless a trigger comes.
    Wait(Instant),
    /// A pass is in flight: nothing starts until it has finished.
    Busy,
}

/// The queued pass: when it runs and which trigger asked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Queued {
    at: Instant,
    trigger: Trigger,
}

/// The loop's timing and backoff, between passes and across them.
#[derive(Debug)]
pub struct Scheduler {
    /// `repo.poll`: the wait after a pass that met no outage.
    poll: Duration,
    queued: Option<Queued>,
    /// When the pass in flight started, if one is.
    in_flight: Option<Instant>,
    /// A SIGHUP not acted on yet.
    reload: bool,
    /// Passes in a row that met an outage (the remote, Docker or the
    /// proxy unreachable; an invalid commit is not one: its fix is picked
    /// up at the next poll).
    failing: u32,
    /// Per service, when a failed commit may be tried again.
    pub backoff: Backoff,
}

impl Scheduler {
    /// A scheduler whose first pass is due at `now`.
    pub fn new(poll: Duration, now: Instant) -> Scheduler {
        Scheduler {
            poll,
            queued: Some(Queued {
                at: now,
                trigger: Trigger::Start,
            }),
            in_flight: None,
            reload: false,
            failing: 0,
            backoff: Backoff::default(),
        }
    }

    /// Takes a trigger that came at `at`. Its pass is folded into the one
    /// queued if that runs first, and dropped if the pass in flight
    /// started after it was due (that pass reads the world afresh).
    pub fn request(&mut self, trigger: Trigger, at: Instant) {
        if trigger == Trigger::Reload {
            self.reload = true;
            return;
        }
        let due = at + trigger.settle();
        if self.in_flight.is_some_and(|started| due < started) {
            return;
        }
        self.queue(trigger, due);
    }

    /// What to do at `now`. A pass it returns is in flight until
    /// `finished`.
    pub fn next(&mut self, now: Instant) -> Next {
        if self.in_flight.is_some() {
            return Next::Busy;
        }
        if std::mem::take(&mut self.reload) {
            return Next::Reload;
        }
        match self.queued {
            Some(q) if q.at <= now => {
                self.queued = None;
                self.in_flight = Some(now);
                Next::Pass(q.trigger)
            }
            Some(q) => Next::Wait(q.at),
            // Only while a pass is in flight; `finished` queues the poll.
            None => Next::Wait(now + self.poll),
        }
    }

    /// The pass in flight ended at `now`; `outage`: it could not reach
    /// the remote, Docker or the proxy. The next poll comes after the
    /// poll interval, doubling per outage in a row up to five minutes.
    pub fn finished(&mut self, outage: bool, now: Instant) {
        self.in_flight = None;
        self.failing = if outage { self.failing + 1 } else { 0 };
        self.queue(Trigger::Poll, now + self.retry_in());
    }

    /// The host config was read again at `now`: `poll` is its poll
    /// interval when it changed. A pass follows at once, whether or not it
    /// did (SIGHUP is also how to say "fetch now").
    pub fn reloaded(&mut self, poll: Option<Duration>, now: Instant) {
        if let Some(p) = poll {
            self.poll = p;
        }
        self.queue(Trigger::Reload, now);
    }

    /// The wait before the next poll, as the last passes leave it.
    pub fn retry_in(&self) -> Duration {
        problem_delay(self.poll, self.failing)
    }

    /// Queues a pass at `at` unless one is queued to run no later.
    fn queue(&mut self, trigger: Trigger, at: Instant) {
        if self.queued.is_none_or(|q| at < q.at) {
            self.queued = Some(Queued { at, trigger });
        }
    }
}

#[cfg(test)]
mod tests;
