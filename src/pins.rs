//! Digest pins (`state_dir/digests.json`): the digest each image tag
//! resolved to the first time this host pulled it. Written by the engine
//! after a pull, read by it whenever a color of that tag starts, so a tag
//! moved in the registry since (`:1.4` pushed again) never changes the
//! bytes a color runs: a drift repair, a restart or a `git revert` runs
//! what the tag meant when it was deployed. An image written with a digest
//! in the repo, and an image built on the host (no registry digest), are
//! run as written. Entries are never dropped: a pin outlives the image's
//! cleanup, so a revert pulls the recorded bytes back by digest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Read-modify-write of the file, one at a time (services deploy in parallel).
static WRITE: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone)]
pub struct Pins {
    path: PathBuf,
}

impl Pins {
    pub fn new(state_dir: &Path) -> Pins {
        Pins {
            path: state_dir.join("digests.json"),
        }
    }

    /// Every pin: image tag -> `sha256:...` (none when unreadable).
    pub fn all(&self) -> BTreeMap<String, String> {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The digest `image` is pinned to.
    pub fn get(&self, image: &str) -> Option<String> {
        self.all().remove(image)
    }

    /// Pins `image` to `digest`, atomically.
    pub fn set(&self, image: &str, digest: &str) -> std::io::Result<()> {
        let _one = WRITE.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.all();
        all.insert(image.to_string(), digest.to_string());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::atomic::write(&self.path, &serde_json::to_vec_pretty(&all).expect("pins serialise"))
    }
}

/// `desired` with, for each `pull: always` service, the digest each
/// color's tag is pinned to on this host (what the planner compares with
/// what runs). Unchanged, and not copied, when no service asks for it.
pub fn with_pins<'a>(
    desired: &'a crate::spec::Desired,
    state_dir: &Path,
) -> std::borrow::Cow<'a, crate::spec::Desired> {
    use crate::spec::PullPolicy;
    if !desired.services.values().any(|s| s.pull == PullPolicy::Always) {
        return std::borrow::Cow::Borrowed(desired);
    }
    let pins = Pins::new(state_dir).all();
    let mut d = desired.clone();
    for svc in d.services.values_mut().filter(|s| s.pull == PullPolicy::Always) {
        for c in crate::spec::Color::ALL {
            *svc.digests.get_mut(c) = svc.images.get(c).as_ref().and_then(|i| pins.get(i).cloned());
        }
    }
    std::borrow::Cow::Owned(d)
}

/// Whether `image` already names a digest (`repo@sha256:...`).
pub fn has_digest(image: &str) -> bool {
    image.contains('@')
}

/// `image` without its tag: `r.example.com:5000/shop/web:1.4` ->
/// `r.example.com:5000/shop/web`.
pub fn repo_of(image: &str) -> &str {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => &image[..name_start + i],
        None => image,
    }
}

/// The reference that runs `image` at `digest`: `repo@sha256:...`.
pub fn pinned(image: &str, digest: &str) -> String {
    format!("{}@{digest}", repo_of(image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_lose_their_tag_not_their_port() {
        assert_eq!(repo_of("127.0.0.1:5000/shop/web:1.4"), "127.0.0.1:5000/shop/web");
        assert_eq!(repo_of("127.0.0.1:5000/shop/web"), "127.0.0.1:5000/shop/web");
        assert_eq!(repo_of("nginx:1"), "nginx");
        assert_eq!(pinned("shop/web:1", "sha256:ab"), "shop/web@sha256:ab");
        assert!(has_digest("shop/web@sha256:ab") && !has_digest("shop/web:1"));
    }

    #[test]
    fn pins_persist_and_are_set_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let pins = Pins::new(dir.path());
        assert_eq!(pins.get("web:1"), None);
        pins.set("web:1", "sha256:aa").unwrap();
        pins.set("web:2", "sha256:bb").unwrap();
        let again = Pins::new(dir.path());
        assert_eq!(again.get("web:1").as_deref(), Some("sha256:aa"));
        assert_eq!(again.all().len(), 2);
        assert!(!dir.path().join("digests.json.tmp").exists());
    }
}
