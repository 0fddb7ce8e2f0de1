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

/// The event stream's state and the listing it guards.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// Changed by every event and every change of the stream's state.
    generation: AtomicU64,
    following: AtomicBool,
    listing: Mutex<Option<Listing>>,
}

#[derive(Debug)]
struct Listing {
    generation: u64,
    at: Instant,
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

    /// The generation to record a listing under: read before listing, so
    /// an event during the listing makes it stale at once.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The last listing, if nothing happened since and it is recent.
    pub(super) fn reuse(&self) -> Option<Containers> {
        if !self.following.load(Ordering::SeqCst) {
            return None;
        }
        let now = self.generation();
        let listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        listing
            .as_ref()
            .filter(|l| l.generation == now && l.at.elapsed() < REFRESH)
            .map(|l| l.containers.clone())
    }

    pub(super) fn keep(&self, generation: u64, containers: &Containers) {
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = Some(Listing {
            generation,
            at: Instant::now(),
            containers: containers.clone(),
        });
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
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
            }
            event = events.next() => {
                let Some(w) = weak.upgrade() else { return };
                w.changed();
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
        w.keep(w.generation(), &listed);
        assert!(w.reuse().is_none(), "not following yet: every pass lists");
        w.following.store(true, Ordering::SeqCst);
        assert_eq!(w.reuse(), Some(listed.clone()));
        w.changed();
        assert!(w.reuse().is_none(), "an event: the next pass lists");
        // A listing taken while an event came stays stale.
        let g = w.generation();
        w.changed();
        w.keep(g, &listed);
        assert!(w.reuse().is_none());
        w.keep(w.generation(), &listed);
        w.listing.lock().unwrap().as_mut().unwrap().at -= REFRESH;
        assert!(w.reuse().is_none(), "a minute old: the next pass lists");
    }
}
