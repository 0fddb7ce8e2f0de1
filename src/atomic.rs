//! Files replaced whole: the new content goes to `<name>.tmp` beside the
//! file, then a rename puts it in place, so a reader (or a teal restarted
//! after a crash) sees the old file or the new, never half of one. A write
//! that fails (a full disk) removes its temp file: nothing is left behind
//! in `state_dir` for each failed attempt.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, false)
}

/// Replaces `path` with `bytes`, on disk before this returns: the file
/// and then its directory are synced.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, true)?;
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// `<name>.tmp` beside `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn replace(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        write(&path, b"old").unwrap();
        // A directory where the file goes: the rename fails after the write.
        let blocked = dir.path().join("blocked.json");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), "").unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert!(!temp_path(&blocked).exists(), "the temp file is left");
        write_synced(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!temp_path(&path).exists());
    }
}
