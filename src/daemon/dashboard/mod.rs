//! The live dashboard on the status listener: `GET /` renders one page
//! for this host on the server (readable without JavaScript), and
//! `GET /events` streams each event as it is appended, with the parts of
//! the page that changed (Server-Sent Events; see `sse`).
//!
//! The status the loop keeps is joined here with what the event log and
//! the repo mirror say (recent deploys, rollbacks and refusals, commit
//! subjects and authors, versions), so `/status`, the page and its updates
//! show one and the same view.

mod colors;
mod escape;
pub mod html;
pub mod sse;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use super::status::{Recent, Shared, Status};
use crate::events::Event;
use crate::history::{self, Filter};
use crate::source::CommitInfo;

/// How much of the end of events.jsonl a view reads: hundreds of deploys,
/// never the whole history of a long-lived host.
const TAIL_BYTES: u64 = 256 * 1024;
/// Entries of history kept per service.
const HISTORY: usize = 8;
/// Events shown on the page.
pub const EVENTS: usize = 40;

/// What the views read: the loop's status, the state dir (event log and
/// repo mirror), and commit subjects already looked up.
pub struct Context {
    pub shared: Shared,
    pub state_dir: PathBuf,
    /// This host's name, for the page title.
    pub host: String,
    commits: Mutex<HashMap<String, CommitInfo>>,
}

/// One consistent view: the enriched status and the newest events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub status: Status,
    pub events: Vec<Event>,
    /// Lines of the log's end that are not events (a write cut off by a crash).
    pub skipped: usize,
}

impl Context {
    pub fn new(shared: Shared, state_dir: PathBuf) -> Context {
        Context {
            shared,
            state_dir,
            host: hostname(),
            commits: Mutex::default(),
        }
    }

    /// The status as the loop has it, joined with the event log and git.
    /// The log is read first: the loop records a deploy only after the
    /// status shows what it runs, so a deploy read as done comes with it.
    pub async fn snapshot(&self) -> Snapshot {
        let path = self.state_dir.join("events.jsonl");
        let log = tokio::task::spawn_blocking(move || crate::events::read_tail(&path, TAIL_BYTES))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut status = self.shared.status.read().expect("status lock").clone();
        add_history(&mut status, &log.events);
        let infos = self.commit_infos(&wanted(&status)).await;
        add_commits(&mut status, &infos);
        Snapshot {
            status,
            events: log.events.iter().rev().take(EVENTS).cloned().collect(),
            skipped: log.skipped.len(),
        }
    }

    /// Subjects and authors of `commits`, from the cache or the mirror
    /// (the daemon fetches into `state_dir/repo.git`). A commit the mirror
    /// lacks is simply left out.
    async fn commit_infos(&self, commits: &BTreeSet<String>) -> HashMap<String, CommitInfo> {
        let missing: Vec<String> = {
            let cache = self.commits.lock().expect("commit cache");
            commits.iter().filter(|c| !cache.contains_key(*c)).cloned().collect()
        };
        if !missing.is_empty() {
            let mirror = self.state_dir.join("repo.git");
            let found = tokio::task::spawn_blocking(move || {
                let Ok(repo) = git2::Repository::open_bare(&mirror) else {
                    return vec![];
                };
                missing
                    .into_iter()
                    .filter_map(|c| crate::source::commit_info(&repo, &c).ok().map(|i| (c, i)))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
            self.commits.lock().expect("commit cache").extend(found);
        }
        let cache = self.commits.lock().expect("commit cache");
        commits
            .iter()
            .filter_map(|c| cache.get(c).map(|i| (c.clone(), i.clone())))
            .collect()
    }
}

/// Each service's newest deploys, rollbacks and refusals, newest first;
/// and the version (image tag) of each color.
pub fn add_history(status: &mut Status, events: &[Event]) {
    let entries = history::entries(events, &Filter::default());
    for (name, svc) in status.services.iter_mut() {
        svc.history = entries
            .iter()
            .rev()
            .filter(|e| e.service == *name)
            .take(HISTORY)
            .map(|e| Recent {
                time: e.time.clone(),
                commit: e.commit.clone(),
                kind: e.kind,
                result: e.result.clone(),
                duration_ms: e.duration_ms,
                switch: e.switch,
                error: e.error.clone(),
                detail: history::render::detail(e),
                message: None,
                author: None,
            })
            .collect();
        for c in crate::spec::Color::ALL {
            *svc.versions.get_mut(c) = svc.images.get(c).as_deref().map(version);
        }
    }
}

/// The commits a view names: the applied one and each deploy's.
fn wanted(status: &Status) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = status.applied_commit.iter().cloned().collect();
    for svc in status.services.values() {
        out.extend(svc.last_deploy.iter().map(|d| d.commit.clone()));
        out.extend(svc.history.iter().map(|r| r.commit.clone()));
    }
    out
}

/// Puts commit subjects and authors where the status names a commit.
pub fn add_commits(status: &mut Status, infos: &HashMap<String, CommitInfo>) {
    status.applied = status.applied_commit.as_ref().and_then(|c| infos.get(c)).cloned();
    for svc in status.services.values_mut() {
        if let Some(d) = &mut svc.last_deploy {
            let info = infos.get(&d.commit);
            d.message = info.map(|i| i.message.clone());
            d.author = info.map(|i| i.author.clone());
        }
        for r in &mut svc.history {
            let info = infos.get(&r.commit);
            r.message = info.map(|i| i.message.clone());
            r.author = info.map(|i| i.author.clone());
        }
    }
}

/// The version an image reference names: its tag (`1.4.2`), `latest` when
/// it has none, or the start of its digest when pinned by one.
pub fn version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
        return format!("@{}", &hex[..hex.len().min(12)]);
    }
    // A colon after the last slash is a tag; before it, a registry port.
    let name = image.rsplit('/').next().unwrap_or(image);
    match name.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".into(),
    }
}

/// This machine's host name, or `this host`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".into())
}

#[cfg(test)]
mod tests;
