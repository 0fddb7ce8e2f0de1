//! Telling the outside what deploys did (`notify:` in the host config):
//! webhooks and forge commit statuses. Fed from the event log (every event
//! appended is also offered here), so there is one hook point for the
//! daemon's steps, outcomes, rollbacks and refusals.
//!
//! Nothing here may slow a deploy: the event log hands events over with
//! `try_send` on a bounded queue (full: the event is dropped and a line
//! logged), and each target has a worker task and a bounded queue of its
//! own, so a receiver that is down or never answers delays only its own
//! notices. Each request has a short timeout and is retried with
//! exponential backoff; one given up is logged.

mod deliver;
mod notice;

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::warn;

use crate::config::HostConfig;
use crate::events::Event;
use crate::secret::{Secret, SecretError};
pub use deliver::{signature, Target};
pub use notice::{Kind, Notice, Tracker};

/// Events waiting for the dispatcher; beyond this the event log drops them.
pub const QUEUE: usize = 256;
/// Notices waiting for one target's worker; beyond this they are dropped.
pub const TARGET_QUEUE: usize = 64;
/// Each request's deadline (connect, send, answer).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Tries per notice, the first included.
pub const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each next one.
pub const FIRST_RETRY: Duration = Duration::from_millis(500);

/// The configured targets, secrets read now (once): an error names the
/// file. None configured: None.
pub fn targets(config: &HostConfig) -> Result<Vec<Target>, SecretError> {
    let mut out = vec![];
    for (i, t) in config.notify.iter().enumerate() {
        if let Some(url) = &t.url {
            let secret = match &t.secret_file {
                Some(f) => Some(Secret::read(f, &format!("notify[{i}].secret_file"))?),
                None => None,
            };
            out.push(Target::Webhook {
                url: url.clone(),
                secret,
            });
        }
        if let Some(g) = &t.github {
            out.push(Target::Github {
                api: g.api.trim_end_matches('/').to_string(),
                repo: g.repo.clone(),
                token: Secret::read(&g.token_file, &format!("notify[{i}].github.token_file"))?,
                target_url: g.target_url.clone(),
            });
        }
    }
    Ok(out)
}

/// Starts the dispatcher and one worker per target; the sender to hand to
/// the event log. No targets: no task, None.
pub fn start(host: String, targets: Vec<Target>) -> Option<mpsc::Sender<Event>> {
    if targets.is_empty() {
        return None;
    }
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(concat!("teal/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an http client");
    let workers: Vec<(String, mpsc::Sender<Notice>)> = targets
        .into_iter()
        .map(|t| {
            let (tx, rx) = mpsc::channel(TARGET_QUEUE);
            let name = t.name();
            tokio::spawn(deliver::worker(t, client.clone(), rx));
            (name, tx)
        })
        .collect();
    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    tokio::spawn(async move {
        let mut tracker = Tracker::new(host);
        while let Some(e) = rx.recv().await {
            for n in tracker.notices(&e) {
                for (name, w) in &workers {
                    if w.try_send(n.clone()).is_err() {
                        warn!(to = %name, event = n.event.as_str(), service = %n.service, commit = %n.commit, "notify: {name} is behind, notice dropped");
                    }
                }
            }
        }
    });
    Some(tx)
}
