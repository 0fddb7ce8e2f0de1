//! A small tmpfs mounted over a test's directory, to fill its disk to 100 %
//! (the soak's full `state_dir`). Mounting needs root, which the tests
//! have in CI; without it they fail and say so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory until dropped (then lazily unmounted, so
/// a process still holding a file in it does not keep it).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` over `dir` (created when missing).
    pub fn mount(dir: &Path, bytes: u64) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs at {} failed (these tests fill a disk of their own and need root, as `.ci/run` has): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir: dir.to_path_buf() }
    }

    /// Fills the disk to 100 % with one file, and returns it: removing it
    /// frees the disk again.
    pub fn fill(&self) -> PathBuf {
        let path = self.dir.join("soak-fill");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
