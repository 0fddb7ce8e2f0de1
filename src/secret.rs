//! Secrets read from files (tokens, HMAC keys): read once, trimmed, never
//! printed. `Debug` and `Display` show `<redacted>`, so a secret inside a
//! struct that is logged or formatted with `{:?}` does not leak; the bytes
//! are reached only through `expose`, at the one place that sends them.

use std::fmt;
use std::path::Path;

/// A secret's text. Formatting it shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret file that cannot be used, named by its role and path.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{what} {path}: {source}")]
    Read {
        what: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Empty or only whitespace: as a token every request would carry it,
    /// as an HMAC key anyone could sign.
    #[error(
        "{what} {path}: the file is empty (or only whitespace), which would turn off the check it guards; write the secret into it, or remove {what} from the host config"
    )]
    Empty { what: String, path: String },
}

impl Secret {
    /// Wraps text that is already in memory.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads `path` (the file of `what`, e.g. `notify[0].secret_file`),
    /// trimmed; refuses an empty one; warns when others than its owner may
    /// read it.
    pub fn read(path: &Path, what: &str) -> Result<Secret, SecretError> {
        let secret = Secret::load(path, what)?;
        warn_if_shared(path, what);
        Ok(secret)
    }

    /// `read` without the warning, for a file read again at every use
    /// (the repo token at each fetch) and warned about once at start.
    pub fn load(path: &Path, what: &str) -> Result<Secret, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            what: what.to_string(),
            path: path.display().to_string(),
            source,
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretError::Empty {
                what: what.to_string(),
                path: path.display().to_string(),
            });
        }
        Ok(Secret(text.to_string()))
    }
}

/// Logs a warning when a secret file is readable by its group or others
/// (mode & 0o077): anyone on the host could read the token.
pub fn warn_if_shared(path: &Path, what: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let mode = meta.permissions().mode() & 0o777;
    let shared = mode & 0o077 != 0;
    if shared {
        tracing::warn!(
            file = %path.display(),
            what,
            mode = %format!("{mode:03o}"),
            "secret file is readable by its group or others: chmod 600 {}",
            path.display()
        );
    }
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_formats_and_shared_files_are_told() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "hunter2\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let s = Secret::read(&f, "host.token_file").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert!(warn_if_shared(&f, "t"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!warn_if_shared(&f, "t"));
        let e = Secret::read(&dir.path().join("none"), "notify[0].secret_file").unwrap_err();
        assert!(e.to_string().starts_with("notify[0].secret_file "), "{e}");
    }

    #[test]
    fn an_empty_secret_is_refused_with_its_file_named() {
        // An empty token or HMAC key would turn the check it guards off:
        // every request would carry it, every body would verify.
        let dir = tempfile::tempdir().unwrap();
        for text in ["", "\n", "  \t\r\n"] {
            let f = dir.path().join("token");
            std::fs::write(&f, text).unwrap();
            let e = Secret::read(&f, "host.token_file").unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("host.token_file {}: ", f.display()))
                    && e.contains("is empty")
                    && e.contains("remove host.token_file"),
                "{text:?}: {e}"
            );
        }
    }
}
