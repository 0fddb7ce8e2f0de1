//! The one way into the scheduler: each source sends its trigger with the
//! time it came, and the loop hands them to the scheduler before each
//! decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::{Scheduler, Trigger};

/// Triggers waiting for the loop. Each asks for a pass that the first of
/// them already asks for, so a full queue loses nothing but a name.
const ROOM: usize = 256;

/// Where sources send their triggers. Sending never waits: it runs in the
/// webhook's handler and on the file watcher's thread.
#[derive(Debug, Clone)]
pub struct Triggers(mpsc::Sender<(Trigger, Instant)>, Arc<AtomicBool>);

impl Triggers {
    /// Asks for a pass (dropped when the loop has `ROOM` triggers to read
    /// already, or has stopped).
    pub fn send(&self, trigger: Trigger) {
        self.1.store(true, Ordering::Relaxed);
        let _ = self.0.try_send((trigger, Instant::now()));
    }

    /// Set by every trigger: news for a pass under way (a rollout waiting
    /// for a promotion ends its wait early, so the next pass reads it).
    pub fn news(&self) -> Arc<AtomicBool> {
        self.1.clone()
    }

    /// Asks for a reload; waits for room rather than drop it, since no
    /// other trigger stands for it.
    pub async fn reload(&self) {
        let _ = self.0.send((Trigger::Reload, Instant::now())).await;
    }
}

/// Triggers that go nowhere (an API without a loop).
impl Default for Triggers {
    fn default() -> Triggers {
        Triggers(mpsc::channel(1).0, Arc::default())
    }
}

/// The loop's end of the queue.
pub struct Intake {
    rx: mpsc::Receiver<(Trigger, Instant)>,
    tx: Triggers,
}

/// A queue of triggers: the end sources send into, and the loop's.
pub fn channel() -> (Triggers, Intake) {
    let (tx, rx) = mpsc::channel(ROOM);
    let tx = Triggers(tx, Arc::default());
    (tx.clone(), Intake { rx, tx })
}

impl Intake {
    /// The sending end, for sources the loop starts itself.
    pub fn triggers(&self) -> Triggers {
        self.tx.clone()
    }

    /// Hands every trigger that came meanwhile to `scheduler`, so those
    /// of one pass fold into one.
    pub fn drain_into(&mut self, scheduler: &mut Scheduler) {
        while let Ok((trigger, at)) = self.rx.try_recv() {
            scheduler.request(trigger, at);
        }
    }

    /// The next trigger; never ends, since the intake holds a sender.
    pub async fn recv(&mut self) -> (Trigger, Instant) {
        match self.rx.recv().await {
            Some(t) => t,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::scheduler::Next;

    #[test]
    fn a_busy_loop_never_makes_a_source_wait_and_its_triggers_fold_into_one_pass() {
        let (triggers, mut intake) = channel();
        let start = Instant::now();
        let mut scheduler = Scheduler::new(std::time::Duration::from_secs(15), start);
        assert_eq!(scheduler.next(start), Next::Pass(Trigger::Start));
        // A crash loop while the pass runs: far more events than room.
        for _ in 0..ROOM * 4 {
            triggers.send(Trigger::RepoChanged);
        }
        intake.drain_into(&mut scheduler);
        scheduler.finished(false, Instant::now());
        assert_eq!(scheduler.next(Instant::now()), Next::Pass(Trigger::RepoChanged));
        scheduler.finished(false, Instant::now());
        assert!(
            matches!(scheduler.next(Instant::now()), Next::Wait(_)),
            "one pass for all"
        );
        Triggers::default().send(Trigger::Webhook); // no loop: nothing, and no wait
    }
}
