//! The triggers that come from outside a request: a write to the repo on
//! this machine, and the Docker events of this host's replicas. (The
//! webhook's trigger comes from `http`, SIGHUP's from `commands::daemon`;
//! the poll is the scheduler's own.) An ACME order that ends asks for a
//! pass too, which installs its certificate.
//!
//! Docker: one of teal's replicas dying or starting outside of teal's own
//! steps (a killed container, a Swarm task replaced on this node) asks for
//! a pass, so a dead replica leaves the proxy and its replacement is
//! checked and routed within a second, not at the next poll (15 s by
//! default). Container events only: a Swarm task on another node is seen
//! at the next poll (the proxy retries around it meanwhile).

use std::collections::HashMap;
use std::time::Duration;

use bollard::query_parameters::EventsOptions;
use futures_util::StreamExt;

use super::intake::Triggers;
use super::Trigger;
use crate::reconcile::Host;
use crate::spec::container::labels;

/// Before subscribing again after the engine closed the stream.
const AGAIN: Duration = Duration::from_secs(5);

/// The sources of one host config; dropping them stops them (a SIGHUP
/// that changes the config starts new ones).
pub struct Sources {
    _repo: Option<notify::RecommendedWatcher>,
    _docker: Aborts,
}

impl Sources {
    /// Starts the sources `host`'s config asks for, sending to `triggers`.
    pub fn start(host: &Host, triggers: Triggers) -> Sources {
        let t = triggers.clone();
        host.orders.on_done(move || t.send(Trigger::Certificate));
        let repo = if host.config.repo.watch {
            watch_local_repo(&host.config.repo.url, triggers.clone())
        } else {
            None
        };
        let client = host.docker.docker().client().clone();
        let docker = tokio::spawn(watch_docker(client, host.config.docker.network.clone(), triggers));
        Sources {
            _repo: repo,
            _docker: Aborts(docker),
        }
    }
}

/// Watches the engine's events for containers of `owner` (the host's
/// `docker.network`). Each event is a trigger: the scheduler folds those
/// of one second into one pass.
async fn watch_docker(docker: bollard::Docker, owner: String, triggers: Triggers) {
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
            triggers.send(Trigger::Docker);
        }
        tokio::time::sleep(AGAIN).await;
    }
}

/// For a repo on this machine, a watcher that asks for a pass on any
/// change (a commit or push updates its refs), so deploys need not wait
/// a poll.
fn watch_local_repo(url: &str, triggers: Triggers) -> Option<notify::RecommendedWatcher> {
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
            triggers.send(Trigger::RepoChanged);
        }
    })
    .ok()?;
    w.watch(std::path::Path::new(path), notify::RecursiveMode::Recursive)
        .ok()?;
    Some(w)
}

/// Aborts the task when dropped.
struct Aborts(tokio::task::JoinHandle<()>);

impl Drop for Aborts {
    fn drop(&mut self) {
        self.0.abort();
    }
}
