//! What a daemon pass need not redo while the branch head stays put: the
//! commit's files read and validated (pure in the commit: a git object
//! never changes), and a signature already verified against the same
//! signer files. Everything that reads the host (the policy's paths,
//! secrets, promotions, pins) still runs every pass.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::spec::{Desired, Diagnostics, RepoFiles};

/// A commit's files and its validated desired state (every host's).
pub type Loaded = Result<Arc<(RepoFiles, Desired)>, LoadError>;

/// Why a commit's files give no desired state.
#[derive(Debug, Clone)]
pub enum LoadError {
    /// Git could not read them.
    Read(String),
    /// They are invalid, at these places.
    Invalid(Diagnostics),
}

/// One commit's worth of reading, shared by the passes of one daemon.
#[derive(Debug, Default)]
pub struct ReadCache {
    last: Mutex<Option<Entry>>,
}

/// What is known of the last commit seen.
#[derive(Debug)]
struct Entry {
    commit: String,
    /// Its files and state, with the config root they were read under.
    loaded: Option<(String, Loaded)>,
    /// The signer files' digest its signature was verified with, if it was.
    verified: Option<String>,
}

impl ReadCache {
    /// The entry of `commit`, made afresh when the last one was another's.
    fn entry<'a>(last: &'a mut Option<Entry>, commit: &str) -> &'a mut Entry {
        if last.as_ref().is_none_or(|e| e.commit != commit) {
            *last = Some(Entry {
                commit: commit.to_string(),
                loaded: None,
                verified: None,
            });
        }
        last.as_mut().expect("just set")
    }

    /// The files and desired state of `commit` under `path`: the cached
    /// ones when it is the commit read last, else `read()`'s (kept).
    pub fn load(&self, commit: &str, path: &str, read: impl FnOnce() -> Loaded) -> Loaded {
        if let Some(Entry {
            loaded: Some((p, loaded)),
            ..
        }) = self
            .last
            .lock()
            .expect("cache lock")
            .as_ref()
            .filter(|e| e.commit == commit)
        {
            if p == path {
                return loaded.clone();
            }
        }
        let loaded = read();
        let mut last = self.last.lock().expect("cache lock");
        Self::entry(&mut last, commit).loaded = Some((path.to_string(), loaded.clone()));
        loaded
    }

    /// Whether `commit`'s signature was verified with signer files whose
    /// digest is `signers` (a changed file, a removed key: verified again).
    pub fn verified(&self, commit: &str, signers: &str) -> bool {
        self.last
            .lock()
            .expect("cache lock")
            .as_ref()
            .is_some_and(|e| e.commit == commit && e.verified.as_deref() == Some(signers))
    }

    /// Records that `commit`'s signature passed with `signers`.
    pub fn set_verified(&self, commit: &str, signers: String) {
        let mut last = self.last.lock().expect("cache lock");
        Self::entry(&mut last, commit).verified = Some(signers);
    }
}

/// A digest of the files a signature is checked against (the allowed
/// signers file, the GnuPG keyring file), as they are now. A file that
/// cannot be read digests as such, so verification runs again and says why.
pub fn signers_digest(files: &[Option<&Path>]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files {
        match f.map(std::fs::read) {
            Some(Ok(bytes)) => {
                h.update(b"file");
                h.update((bytes.len() as u64).to_le_bytes());
                h.update(&bytes);
            }
            Some(Err(e)) => h.update(format!("unreadable: {e}")),
            None => h.update(b"none"),
        }
    }
    format!("{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn loaded(n: usize) -> Loaded {
        let files = RepoFiles {
            bytes: n,
            ..Default::default()
        };
        Ok(Arc::new((files, Desired::default())))
    }

    #[test]
    fn the_same_commit_is_read_once_and_another_reads_again() {
        let cache = ReadCache::default();
        let reads = Cell::new(0);
        let read = |n| {
            reads.set(reads.get() + 1);
            loaded(n)
        };
        assert_eq!(cache.load("a", "", || read(1)).unwrap().0.bytes, 1);
        assert_eq!(cache.load("a", "", || read(2)).unwrap().0.bytes, 1);
        assert_eq!(reads.get(), 1);
        assert_eq!(cache.load("b", "", || read(3)).unwrap().0.bytes, 3);
        // Another config root of the same commit is other files.
        assert_eq!(cache.load("b", "deploy", || read(4)).unwrap().0.bytes, 4);
        assert_eq!(reads.get(), 3);
    }

    #[test]
    fn a_signature_counts_as_verified_only_for_its_commit_and_signer_files() {
        let cache = ReadCache::default();
        assert!(!cache.verified("a", "k1"));
        cache.set_verified("a", "k1".into());
        assert!(cache.verified("a", "k1"));
        assert!(!cache.verified("a", "k2"), "a changed signers file verifies again");
        assert!(!cache.verified("b", "k1"));
        // Verified before it was read: the read still happens.
        let reads = Cell::new(0);
        let _ = cache.load("a", "", || {
            reads.set(1);
            loaded(7)
        });
        assert_eq!(reads.get(), 1);
        // A new commit forgets the old one's verification.
        let _ = cache.load("b", "", || loaded(8));
        assert!(!cache.verified("a", "k1"));
    }

    #[test]
    fn the_signers_digest_follows_the_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("allowed_signers");
        std::fs::write(&f, "a key").unwrap();
        let one = signers_digest(&[Some(&f), None]);
        assert_eq!(one, signers_digest(&[Some(&f), None]));
        std::fs::write(&f, "another key").unwrap();
        assert_ne!(one, signers_digest(&[Some(&f), None]));
        std::fs::remove_file(&f).unwrap();
        assert_ne!(one, signers_digest(&[Some(&f), None]));
    }
}
