//! The container listing an idle pass reuses. At hundreds of services,
//! listing every container costs dockerd 50-100 ms per pass, and what runs
//! changes only with a container event. The daemon's driver follows
//! Docker's event stream for teal's containers and keeps the last listing
//! until an event, a lost or new stream, or `REFRESH` says to list again:
//! a pass stays level-triggered (a missed event costs at most `REFRESH`),
//! and a listing right after teal acted (`DockerDriver::observe`) always
//! asks Docker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures_util::StreamExt;

use super::Containers;

/// The oldest listing an idle pass reuses.
pub const REFRESH: Duration = Duration::from_secs(60);

/// How long a new event stream runs before it counts as following:
/// events from before it was set up may be missed, so the listing is
/// taken again once it does.
const SETTLE: Duration = Duration::from_millis(500);

/// How long after an event a listing is still not trusted: dockerd can
/// send an event (`die`) before its listing shows the change (still
/// `running`), and a listing reused from then on would hide a dead
/// replica until `REFRESH` (the soak found this).
const QUIET: Duration = Duration::from_secs(1);

/// The event stream's state and the listing it guards.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// Changed by every event and every change of the stream's state.
    generation: AtomicU64,
    following: AtomicBool,
    /// When the last event came.
    event_at: Mutex<Option<Instant>>,
    listing: Mutex<Option<Listing>>,
}

/// When a listing began, and the generation then.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mark {
    generation: u64,
    at: Instant,
}

#[derive(Debug)]
struct Listing {
    mark: Mark,
    containers: Containers,
}

impl Watch {
    /// Follows the events of containers labelled `owner` on `client`, for
    /// as long as the returned watch is used (the task ends with it).
    pub(super) fn start(client: Docker, owner: String) -> Arc<Watch> {
        let watch = Arc::new(Watch::default());
        let weak = Arc::downgrade(&watch);
        tokio::spawn(async move {
            while let Some(w) = weak.upgrade() {
                drop(w);
                follow(&client, &owner, &weak).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        watch
    }

    /// Taken before listing: an event during the listing makes it stale
    /// at once.
    pub(super) fn mark(&self) -> Mark {
        Mark {
            generation: self.generation.load(Ordering::SeqCst),
            at: Instant::now(),
        }
    }

    /// The last listing, if nothing happened since, it began at least
    /// `QUIET` after the last event, and it is under `REFRESH` old.
    pub(super) fn reuse(&self) -> Option<Containers> {
        if !self.following.load(Ordering::SeqCst) {
            return None;
        }
        let now = self.mark();
        let event_at = *self.event_at.lock().unwrap_or_else(|e| e.into_inner());
        let listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        listing
            .as_ref()
            .filter(|l| l.mark.generation == now.generation && l.mark.at.elapsed() < REFRESH)
            .filter(|l| event_at.is_none_or(|e| l.mark.at >= e + QUIET))
            .map(|l| l.containers.clone())
    }

    pub(super) fn keep(&self, mark: Mark, containers: &Containers) {
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(Listing {
            mark,
            containers: containers.clone(),
        });
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn event(&self) {
        *self.event_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.changed();
    }
}

/// Follows one event stream until it ends or fails.
async fn follow(client: &Docker, owner: &str, weak: &std::sync::Weak<Watch>) {
    let opts = EventsOptions {
        filters: Some(HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![owner.to_string()]),
        ])),
        ..Default::default()
    };
    let mut events = client.events(Some(opts));
    let settle = tokio::time::sleep(SETTLE);
    tokio::pin!(settle);
    let mut settled = false;
    loop {
        tokio::select! {
            () = &mut settle, if !settled => {
                settled = true;
                let Some(w) = weak.upgrade() else { return };
                w.following.store(true, Ordering::SeqCst);
                w.changed();
                tracing::debug!("docker events: following");
            }
            event = events.next() => {
                let Some(w) = weak.upgrade() else { return };
                w.event();
                if !matches!(event, Some(Ok(_))) {
                    w.following.store(false, Ordering::SeqCst);
                    if let Some(Err(e)) = event {
                        tracing::debug!(error = %e, "docker events: the stream ended; listing each pass until it follows again");
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_is_reused_only_while_following_and_nothing_happened() {
        let w = Watch::default();
        let listed = Containers::from([("web".to_string(), Default::default())]);
        w.keep(w.mark(), &listed);
        assert!(w.reuse().is_none(), "not following yet: every pass lists");
        w.following.store(true, Ordering::SeqCst);
        assert_eq!(w.reuse(), Some(listed.clone()));
        w.event();
        assert!(w.reuse().is_none(), "an event: the next pass lists");
        // A listing taken while an event came stays stale.
        let m = w.mark();
        w.event();
        w.keep(m, &listed);
        assert!(w.reuse().is_none());
        // One taken right after an event is not trusted either.
        w.keep(w.mark(), &listed);
        assert!(w.reuse().is_none(), "dockerd may not list what it just said");
        *w.event_at.lock().unwrap() = Some(Instant::now() - QUIET);
        w.keep(w.mark(), &listed);
        assert_eq!(w.reuse(), Some(listed.clone()));
        let mut old = w.mark();
        old.at -= REFRESH;
        w.keep(old, &listed);
        assert!(w.reuse().is_none(), "a minute old: the next pass lists");
    }
}
