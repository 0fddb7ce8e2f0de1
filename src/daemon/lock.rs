//! One writer per state dir: an exclusive lock on `teal.lock`, holding
//! the pid of its owner and what it is (`daemon` or `apply`). The OS drops
//! the lock when the process dies, so a crash never leaves a stale lock
//! behind. A daemon and a `teal apply` on the same state dir would race on
//! the proxy's files and the containers; the lock makes one of them wait
//! for the other to be gone.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Who takes the lock, written next to the pid so the one refused can
/// say who holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// `teal daemon` or `teal demo`: applies the branch head itself.
    Daemon,
    /// `teal apply`: one pass, then exits.
    Apply,
}

impl Holder {
    fn word(self) -> &'static str {
        match self {
            Holder::Daemon => "daemon",
            Holder::Apply => "apply",
        }
    }
}

/// Held for the daemon's (or the apply's) lifetime; released on drop or
/// process exit.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it; its pid and kind, as it wrote them (an
    /// older teal wrote only the pid: a daemon).
    #[error("another teal {} ({}) holds {}; {}", holder.word(), pid.map_or("pid unknown".into(), |p| format!("pid {p}")), path.display(), match holder { Holder::Daemon => "stop it or use another --state-dir", Holder::Apply => "wait for it to end, or use another --state-dir" })]
    Held {
        path: PathBuf,
        pid: Option<u32>,
        holder: Holder,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl StateLock {
    /// Takes the lock for a daemon, or says who holds it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        Self::acquire_as(state_dir, Holder::Daemon)
    }

    /// Takes the lock as `holder`, or says who holds it.
    pub fn acquire_as(state_dir: &Path, holder: Holder) -> Result<StateLock, LockError> {
        let path = state_dir.join("teal.lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let (pid, holder) = parse(&text);
            return Err(LockError::Held { path, pid, holder });
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{} {}", std::process::id(), holder.word()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(StateLock { _file: file })
    }
}

/// `<pid> <kind>`; a bare pid (older teal) is a daemon.
fn parse(text: &str) -> (Option<u32>, Holder) {
    let mut words = text.split_whitespace();
    let pid = words.next().and_then(|p| p.parse().ok());
    let holder = match words.next() {
        Some("apply") => Holder::Apply,
        _ => Holder::Daemon,
    };
    (pid, holder)
}

#[cfg(test)]
mod tests {
    use super::{Holder, LockError, StateLock};

    #[test]
    fn a_second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let held = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err().to_string();
        let want = format!(
            "another teal daemon (pid {}) holds {}/teal.lock; stop it or use another --state-dir",
            std::process::id(),
            dir.path().display()
        );
        assert_eq!(err, want);
        drop(held);
        // A process spawned by a concurrent test shares the lock's open file
        // until its exec closes it (close-on-exec): allow that moment.
        let mut again = StateLock::acquire(dir.path());
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = StateLock::acquire(dir.path());
        }
        again.expect("free again after drop");
    }

    #[test]
    fn daemon_and_apply_exclude_each_other_and_say_which_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let apply = StateLock::acquire_as(dir.path(), Holder::Apply).unwrap();
        match StateLock::acquire(dir.path()) {
            Err(LockError::Held { pid, holder, .. }) => {
                assert_eq!((pid, holder), (Some(std::process::id()), Holder::Apply))
            }
            other => panic!("{other:?}"),
        }
        drop(apply);
        // An older teal's lock file: a bare pid, held by a daemon.
        assert_eq!(super::parse("4242\n"), (Some(4242), Holder::Daemon));
        assert_eq!(super::parse(""), (None, Holder::Daemon));
    }
}
