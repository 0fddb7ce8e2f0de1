//! The record of the commit this host accepted last (`applied-commit` in
//! the state dir): the baseline `repo.fast_forward_only` checks each new
//! head against. It fails closed: once a host has fetched, a missing,
//! empty or garbled record refuses the head until `teal trust reset`
//! records one on purpose. A host that has never fetched records `none`
//! before its first fetch, and its first head that passes admission
//! becomes the baseline: there is nothing older to rewind to.
//!
//! Written atomically (a temp file fsynced, renamed over the record, the
//! directory fsynced), so a crash leaves the old record or the new one,
//! never a torn one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The record's file name in the state dir.
const FILE: &str = "applied-commit";
/// What the record says before any commit was accepted.
const NONE: &str = "none";

/// The record's path in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// What the record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// A host that has not accepted a commit yet.
    Fresh,
    /// The commit accepted last.
    Commit(git2::Oid),
}

/// A record that cannot be trusted: every head is refused until `teal
/// trust reset`.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} {problem}, so teal cannot tell whether the head rewinds the commit this host applied last (repo.fast_forward_only): check the head, then run `teal trust reset` to accept it"
)]
pub struct Untrusted {
    pub path: String,
    /// "is missing", "is empty", "is not a commit id (...)", "cannot be read (...)".
    pub problem: String,
}

/// Reads the record in `state_dir`.
pub fn read(state_dir: &Path) -> Result<Baseline, Untrusted> {
    let file = path(state_dir);
    let untrusted = |problem: String| Untrusted {
        path: file.display().to_string(),
        problem,
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(untrusted("is missing".into())),
        Err(e) => return Err(untrusted(format!("cannot be read ({e})"))),
    };
    match text.trim() {
        "" => Err(untrusted("is empty".into())),
        NONE => Ok(Baseline::Fresh),
        t => match git2::Oid::from_str(t) {
            Ok(oid) if t.len() == 40 || t.len() == 64 => Ok(Baseline::Commit(oid)),
            _ => Err(untrusted(format!("is not a commit id ({:?})", truncate(t)))),
        },
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(60).collect()
}

/// Before a host's first fetch: records that nothing was accepted yet,
/// unless a record exists (a mirror removed to be fetched afresh keeps
/// its baseline).
pub fn mark_fresh(state_dir: &Path) -> std::io::Result<()> {
    if path(state_dir).symlink_metadata().is_ok() {
        return Ok(());
    }
    write(state_dir, NONE)
}

/// Records `commit` as the one accepted last.
pub fn record(state_dir: &Path, commit: &str) -> std::io::Result<()> {
    write(state_dir, commit)
}

/// Replaces the record atomically and durably.
fn write(state_dir: &Path, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    // A fresh random name (O_EXCL, 0600): never a leftover or a planted file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".applied-commit.")
        .tempfile_in(state_dir)?;
    tmp.write_all(format!("{text}\n").as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path(state_dir)).map_err(|e| e.error)?;
    // The rename is durable only once the directory is.
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_reads_back_and_fails_closed_on_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let missing = read(&state).unwrap_err().to_string();
        assert!(
            missing.contains("applied-commit is missing, so teal cannot tell"),
            "{missing}"
        );
        assert!(missing.ends_with("run `teal trust reset` to accept it"), "{missing}");
        mark_fresh(&state).unwrap();
        assert_eq!(read(&state).unwrap(), Baseline::Fresh);
        let c = "0123456789abcdef0123456789abcdef01234567";
        record(&state, c).unwrap();
        assert_eq!(read(&state).unwrap(), Baseline::Commit(git2::Oid::from_str(c).unwrap()));
        mark_fresh(&state).unwrap();
        assert_eq!(
            read(&state).unwrap(),
            Baseline::Commit(git2::Oid::from_str(c).unwrap()),
            "a record is never reset to none"
        );
        for (text, says) in [
            ("", "is empty"),
            ("\n", "is empty"),
            ("0123456", "is not a commit id (\"0123456\")"),
            ("zz", "is not a commit id"),
        ] {
            std::fs::write(path(&state), text).unwrap();
            let e = read(&state).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_record_is_replaced_by_a_rename_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        record(dir.path(), &a).unwrap();
        // A second name for the old file: written in place it would change too.
        let old = dir.path().join("old");
        std::fs::hard_link(path(dir.path()), &old).unwrap();
        record(dir.path(), &b).unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), format!("{a}\n"));
        assert_eq!(std::fs::read_to_string(path(dir.path())).unwrap(), format!("{b}\n"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
