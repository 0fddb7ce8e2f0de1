//! Teal's own copies of certificates: one combined PEM file per name (the
//! chain, then the key: the form HAProxy's `crt` reads), in a directory
//! only teal's user may enter, each written atomically so a proxy or a
//! crash never sees half a file.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::check::{check_at, read_capped, Origins};
use super::error::TlsError;
use super::material::Material;

/// A directory of certificates teal owns, e.g. `state_dir/certs`.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// A store in `dir`; nothing is touched until the first [`Store::put`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Store { dir: dir.into() }
    }

    /// Where `name`'s file is (or would be): `<dir>/<name>.pem`. Does not
    /// check `name`; `put`, `get` and `remove` do.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pem"))
    }

    /// Writes `<name>.pem`, the chain then the key, mode 0600, atomically
    /// (a temp file in the same directory, fsync, rename, fsync of the
    /// directory), creating the directory 0700 (and making it 0700 if it
    /// was not). Returns the file's path. `name` must match
    /// `^[a-z0-9][a-z0-9._-]{0,100}$`, so it can never leave the directory.
    pub fn put(&self, name: &str, m: &Material) -> Result<PathBuf, TlsError> {
        valid(name)?;
        let dir = &self.dir;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir, "create"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir, "make 0700"))?;
        let path = self.path(name);
        let tmp = dir.join(temp_name(name));
        let written = write_synced(&tmp, &combined(m)).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(&path, "write")(e));
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir, "sync"))?;
        Ok(path)
    }

    /// The material stored under `name`, re-read and re-checked, or None if
    /// there is none. `now: Some(t)` also checks the validity at `t`; None
    /// skips it (to show or renew a certificate that has expired).
    pub fn get(&self, name: &str, now: Option<i64>) -> Result<Option<Material>, TlsError> {
        valid(name)?;
        let path = self.path(name);
        let text = match read_capped(&path) {
            Err(TlsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let shown = path.display().to_string();
        let o = Origins {
            cert: &shown,
            key: &shown,
        };
        check_at(&text, &text, &[], now, &o).map(Some)
    }

    /// Removes `name`'s file; no file is not an error.
    pub fn remove(&self, name: &str) -> Result<(), TlsError> {
        valid(name)?;
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, "remove")(e)),
            _ => Ok(()),
        }
    }

    /// The names stored, sorted; an absent directory holds none. Files that
    /// are not `<valid name>.pem` (e.g. a crashed write's temp file) are
    /// not listed.
    pub fn list(&self) -> Result<Vec<String>, TlsError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(io(&self.dir, "list"))?,
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io(&self.dir, "list"))?;
            let file = e.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".pem")) else {
                continue;
            };
            if valid(name).is_ok() {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }
}

fn io<'a>(path: &'a Path, action: &'static str) -> impl Fn(std::io::Error) -> TlsError + 'a {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        action,
        source,
    }
}

/// `^[a-z0-9][a-z0-9._-]{0,100}$`: no '/', no leading '.', so no `..`
/// escape and no clash with temp files.
fn valid(name: &str) -> Result<(), TlsError> {
    let first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if first && rest && name.len() <= 101 {
        Ok(())
    } else {
        Err(TlsError::BadName { name: name.into() })
    }
}

/// `.<name>.pem.<pid>.<n>.tmp`: unique among live writers (pid, then a
/// counter); one left by a crash whose pid came back is removed first.
fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(".{name}.pem.{}.{n}.tmp", std::process::id())
}

/// The chain, then the key, each ending in a newline.
fn combined(m: &Material) -> String {
    let mut out = String::with_capacity(m.chain_pem.len() + m.key_pem.len() + 2);
    for part in [&m.chain_pem, &m.key_pem] {
        out.push_str(part.trim_end());
        out.push('\n');
    }
    out
}

/// A new file (never through a symlink), 0600 from its creation, synced.
fn write_synced(path: &Path, text: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
