//! Paths on this host as the kernel will resolve them: the filesystem IO
//! behind the host policy's bind checks.

use std::path::{Path, PathBuf};

/// `std::fs::canonicalize` on the longest existing ancestor, so a path
/// whose last parts do not exist yet (Docker creates a missing bind
/// source) still has its symlinks resolved.
pub fn resolve(p: &Path) -> PathBuf {
    let mut head = p.to_path_buf();
    let mut tail = vec![];
    loop {
        if let Ok(c) = std::fs::canonicalize(&head) {
            return tail.iter().rev().fold(c, |acc, t: &std::ffi::OsString| acc.join(t));
        }
        match (head.file_name().map(|f| f.to_os_string()), head.parent()) {
            (Some(f), Some(parent)) => {
                tail.push(f);
                head = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}
