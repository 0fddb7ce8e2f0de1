//! The host's key for env digests in container labels: 32 random bytes in
//! `state_dir/env.key`, mode 0600, made once on first use. Losing it costs
//! one restart of every color with env (their labels no longer match);
//! keeping it secret keeps the digests from being guessed back.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::spec::env_seal::EnvKey;

/// The key file could not be read or made.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct EnvKeyError {
    pub path: PathBuf,
    pub message: String,
}

/// The file's name in the state dir.
pub const FILE: &str = "env.key";

/// The key in `state_dir/env.key`, made when there is none. Two processes
/// making it at once agree: each writes a private temp file and links it
/// into place, and the one that finds it taken reads the other's.
pub fn load_or_create(state_dir: &Path) -> Result<EnvKey, EnvKeyError> {
    let path = state_dir.join(FILE);
    let err = |message: String| EnvKeyError {
        path: path.clone(),
        message,
    };
    if let Some(key) = read(&path).map_err(err)? {
        return Ok(key);
    }
    std::fs::create_dir_all(state_dir).map_err(|e| err(format!("creating the state dir: {e}")))?;
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = state_dir.join(format!(".{FILE}.{}.{n}.tmp", std::process::id()));
    let made = write_new(&tmp).and_then(|()| match std::fs::hard_link(&tmp, &path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    });
    let _ = std::fs::remove_file(&tmp);
    made.map_err(|e| err(format!("making the key: {e}")))?;
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    read(&path)
        .map_err(err)?
        .ok_or_else(|| err("vanished just after it was made".into()))
}

/// The key, `None` when the file does not exist.
fn read(path: &Path) -> Result<Option<EnvKey>, String> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = vec![];
    f.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "{} bytes where teal keeps 32 random ones: restore it from a backup, or remove it (every color with env then restarts once)",
            b.len()
        )
    })?;
    let mode = f.metadata().map_err(|e| e.to_string())?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the env key is readable by others: chmod 600 it");
    }
    Ok(Some(EnvKey::new(key)))
}

/// A fresh file with 32 random bytes, mode 0600, on disk before it is used.
fn write_new(path: &Path) -> std::io::Result<()> {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&key)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = load_or_create(&state).unwrap();
        let path = state.join(FILE);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
        assert_eq!(load_or_create(&state).unwrap(), a);
        assert_ne!(a, EnvKey::default());
        // Only the key is left in the dir: no temp file.
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
        // Made at once by many: one key for all.
        let other = dir.path().join("other");
        let keys: Vec<EnvKey> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(&other).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]));
        std::fs::write(&path, b"short").unwrap();
        let e = load_or_create(&state).unwrap_err().to_string();
        assert!(e.contains("env.key: 5 bytes where teal keeps 32"), "{e}");
    }
}
