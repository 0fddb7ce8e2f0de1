//! One daemon per state dir: an exclusive lock on `teal.lock`, holding the
//! pid of its owner. The OS drops the lock when the process dies, so a
//! crash never leaves a stale lock behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Held for the daemon's lifetime; released on drop or process exit.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(state_dir: &Path) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_dir.join("teal.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.is_empty() {
                String::new()
            } else {
                format!(" (pid {pid})")
            };
            anyhow::bail!(
                "another teal daemon{who} holds {}; stop it or use another --state-dir",
                path.display()
            );
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let held = super::StateLock::acquire(dir.path()).unwrap();
        let err = super::StateLock::acquire(dir.path()).unwrap_err().to_string();
        let want = format!(
            "another teal daemon (pid {}) holds {}/teal.lock; stop it or use another --state-dir",
            std::process::id(),
            dir.path().display()
        );
        assert_eq!(err, want);
        drop(held);
        // A process spawned by a concurrent test shares the lock's open file
        // until its exec closes it (close-on-exec): allow that moment.
        let mut again = super::StateLock::acquire(dir.path());
        for _ in 0..50 {
            if again.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            again = super::StateLock::acquire(dir.path());
        }
        again.expect("free again after drop");
    }
}
