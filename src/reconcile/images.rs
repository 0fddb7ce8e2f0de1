//! Image cleanup after a converged pass. The record of each service's
//! deployed images (`state_dir/images.json`, written atomically) grows as
//! colors start; a cleanup removes what `images::removable` picks (never
//! an image a color declares, a container uses, or one of the last
//! `images.keep` of its service) and forgets it. Only images teal deployed
//! are ever candidates: the host's other images are not teal's to judge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Host;
use crate::config::HostConfig;
use crate::drivers::docker::{gc::Removed, DockerDriver, DockerError};
pub use crate::images::size;
use crate::images::{removable, Deployed};
use crate::spec::Desired;

/// What a cleanup did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cleanup {
    /// Removed (or to remove): service, image, bytes freed (0 when only
    /// a tag went: another tag still names the image).
    pub removed: Vec<(String, String, u64)>,
    /// Left because the engine refused (a container took it meanwhile).
    pub left: Vec<(String, String)>,
    /// The deployed images kept, and their bytes.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Free bytes where the engine keeps images, when measurable.
    pub disk_free: Option<u64>,
}

impl Cleanup {
    /// `removed 2 images (140.2 MB); 3 kept (210.3 MB); 41.2 GB free`.
    pub fn line(&self, dry_run: bool) -> String {
        let freed: u64 = self.removed.iter().map(|r| r.2).sum();
        let verb = if dry_run { "would remove" } else { "removed" };
        let mut s = format!(
            "{verb} {} image{} ({}); {} kept ({})",
            self.removed.len(),
            if self.removed.len() == 1 { "" } else { "s" },
            size(freed),
            self.kept,
            size(self.kept_bytes)
        );
        if let Some(free) = self.disk_free {
            s.push_str(&format!("; {} free", size(free)));
        }
        s
    }
}

/// The record file.
fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("images.json")
}

/// The deployed images recorded (none when unreadable: nothing is a
/// candidate then, which keeps images rather than losing one).
pub fn load(state_dir: &Path) -> Deployed {
    std::fs::read(path(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(state_dir: &Path, d: &Deployed) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    crate::atomic::write(
        &path(state_dir),
        &serde_json::to_vec_pretty(d).expect("the record serialises"),
    )
}

/// Adds the images colors were started with to the record.
pub fn record(state_dir: &Path, started: &[(String, String)]) -> std::io::Result<()> {
    if started.is_empty() {
        return Ok(());
    }
    let mut d = load(state_dir);
    for (service, image) in started {
        d.deployed(service, image);
    }
    save(state_dir, &d)
}

impl Host {
    /// Removes (unless `dry_run`) the deployed images no longer needed.
    pub async fn cleanup(&self, desired: &Desired, dry_run: bool) -> Result<Cleanup, DockerError> {
        cleanup(self.docker.docker(), &self.config, desired, dry_run).await
    }
}

/// `Host::cleanup` with only the engine (`teal gc` needs no proxy). A
/// recorded tag is on the engine by its tag, or by the digest it was
/// pinned to (a color started after the tag moved, or after a cleanup,
/// pulls by digest): both references count, and both are removed.
pub async fn cleanup(
    docker: &DockerDriver,
    config: &HostConfig,
    desired: &Desired,
    dry_run: bool,
) -> Result<Cleanup, DockerError> {
    let state = &config.state_dir;
    let mut deployed = load(state);
    let pins = crate::pins::Pins::new(state).all();
    let declared: BTreeSet<String> = desired
        .services
        .values()
        .flat_map(|s| [s.images.blue.clone(), s.images.green.clone()])
        .flatten()
        .collect();
    let all: BTreeSet<String> = deployed.0.values().flatten().cloned().collect();
    let refs_of = |tag: &str| -> Vec<String> {
        let mut r = vec![tag.to_string()];
        r.extend(pins.get(tag).map(|d| crate::pins::pinned(tag, d)));
        r
    };
    let every: Vec<String> = all.iter().flat_map(|t| refs_of(t)).collect();
    let facts = docker.image_facts(&every).await?;
    // Each recorded tag's image on the engine: ID, size, references.
    let local: BTreeMap<&String, (String, u64, Vec<String>)> = all
        .iter()
        .filter_map(|tag| {
            let present: Vec<String> = refs_of(tag).into_iter().filter(|r| facts.contains_key(r)).collect();
            let (id, size) = facts.get(present.first()?)?.clone();
            Some((tag, (id, size, present)))
        })
        .collect();
    let in_use = docker.images_in_use().await?;
    let ids = local.iter().map(|(k, v)| ((*k).clone(), v.0.clone())).collect();
    let keep = config.images.keep as usize;
    let mut out = Cleanup::default();
    for r in removable(&deployed, &declared, &in_use, &ids, keep) {
        let Some((_, bytes, refs)) = local.get(&r.image) else {
            // Already gone from the engine: only the record forgets it.
            deployed.forget(&r.service, &r.image);
            continue;
        };
        if dry_run {
            out.removed.push((r.service.clone(), r.image.clone(), *bytes));
            continue;
        }
        let mut deleted = false;
        let mut refused = None;
        for reference in refs {
            match docker.remove_image_ref(reference).await? {
                Removed::Yes { deleted: d } => deleted |= d,
                Removed::Absent => {}
                Removed::InUse(why) => refused = Some(why),
            }
        }
        match refused {
            Some(why) => out.left.push((r.image.clone(), why)),
            None => {
                tracing::info!(service = %r.service, image = %r.image, "removed an image no color needs");
                out.removed
                    .push((r.service.clone(), r.image.clone(), if deleted { *bytes } else { 0 }));
                deployed.forget(&r.service, &r.image);
            }
        }
    }
    let gone: BTreeSet<&str> = out.removed.iter().map(|r| r.1.as_str()).collect();
    let kept: Vec<&(String, u64, Vec<String>)> = local
        .iter()
        .filter(|(tag, _)| !gone.contains(tag.as_str()))
        .map(|(_, v)| v)
        .collect();
    out.kept = kept.len();
    out.kept_bytes = kept.iter().map(|v| v.1).sum();
    out.disk_free = docker.disk_free().await;
    if !dry_run {
        if let Err(e) = save(state, &deployed) {
            tracing::warn!(error = %e, "cannot write the deployed images' record");
        }
    }
    Ok(out)
}
