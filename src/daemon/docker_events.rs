//! Wakes the loop when one of teal's replicas dies or starts outside of
//! teal's own steps (a killed container, a Swarm task replaced on this
//! node), so a dead replica leaves the proxy and its replacement is
//! checked and routed within a pass, not at the next poll (15 s by
//! default). Container events only: a Swarm task on another node is seen
//! at the next poll (the proxy retries around it meanwhile).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;

use crate::spec::container::labels;

/// At most one pass per this, however many containers change: a crash
/// loop must not turn into a fetch loop.
const SETTLE: Duration = Duration::from_secs(1);
/// Before subscribing again after the engine closed the stream.
const AGAIN: Duration = Duration::from_secs(5);

/// Watches the engine's events for containers of `owner` (the host's
/// `docker.network`) until the returned task is aborted.
pub fn watch(docker: bollard::Docker, owner: String, trigger: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let filters = HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("event".to_string(), vec!["die".to_string(), "start".to_string()]),
                ("label".to_string(), vec![format!("{}={owner}", labels::OWNER)]),
            ]);
            let mut events = docker.events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }));
            while let Some(event) = events.next().await {
                if let Err(e) = event {
                    tracing::debug!(error = %e, "docker events: the stream ended; subscribing again");
                    break;
                }
                // What else happened meanwhile comes with the same pass.
                tokio::time::sleep(SETTLE).await;
                while let Some(Some(Ok(_))) = events.next().now_or_never() {}
                trigger.notify_one();
            }
            tokio::time::sleep(AGAIN).await;
        }
    })
}

/// Aborts the watch when dropped (a reconnect replaces it).
pub struct Watch(pub tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
