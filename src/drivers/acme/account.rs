//! The ACME account: created once per directory, its credentials (they hold
//! the account key) kept in `dir/account.json` (0600 in a 0700 dir, written
//! atomically), and reused by every later order.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use instant_acme::{Account, AccountCredentials, NewAccount};

use super::error::{from_acme, AcmeError};
use super::http::Client;
use super::types::AcmeSettings;

/// The credentials' file name under `AcmeSettings::dir`.
pub(crate) const FILE: &str = "account.json";

/// The account at `settings.directory`: the stored one, or a new one
/// (stored before it is used) when there is none for that directory.
pub(crate) async fn load_or_create(settings: &AcmeSettings, http: &Client) -> Result<Account, AcmeError> {
    match read(settings).await? {
        Some(credentials) => Account::builder_with_http(Box::new(http.clone()))
            .from_credentials(credentials)
            .await
            .map_err(|e| from_acme(&settings.directory, e)),
        None => create(settings, http).await,
    }
}

/// Registers a new account and replaces the stored credentials with it.
pub(crate) async fn create(settings: &AcmeSettings, http: &Client) -> Result<Account, AcmeError> {
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount {
        contact: &contacts,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = Account::builder_with_http(Box::new(http.clone()))
        .create(&new, settings.directory.clone(), None)
        .await
        .map_err(|e| from_acme(&settings.directory, e))?;
    let text = serde_json::to_string_pretty(&credentials).map_err(|e| AcmeError::State {
        path: path(settings),
        cause: e.to_string(),
    })?;
    let dir = settings.dir.clone();
    tokio::task::spawn_blocking(move || store(&dir, &text))
        .await
        .map_err(|e| AcmeError::State {
            path: path(settings),
            cause: e.to_string(),
        })??;
    tracing::info!(directory = %settings.directory, id = %account.id(), "ACME account created");
    Ok(account)
}

/// Where the credentials live.
pub(crate) fn path(settings: &AcmeSettings) -> PathBuf {
    settings.dir.join(FILE)
}

/// The stored credentials, if any and if for `settings.directory`.
async fn read(settings: &AcmeSettings) -> Result<Option<AccountCredentials>, AcmeError> {
    let file = path(settings);
    let state = |cause: String| AcmeError::State {
        path: file.clone(),
        cause,
    };
    let read_file = file.clone();
    let text = match tokio::task::spawn_blocking(move || std::fs::read_to_string(read_file))
        .await
        .map_err(|e| state(e.to_string()))?
    {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(state(e.to_string())),
    };
    let bad = |e: serde_json::Error| {
        state(format!(
            "not ACME account credentials ({e}); remove it to create a new account"
        ))
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(bad)?;
    if value.get("directory").and_then(|d| d.as_str()) != Some(settings.directory.as_str()) {
        tracing::info!(
            directory = %settings.directory,
            file = %file.display(),
            "the stored ACME account is for another directory; creating a new one"
        );
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(bad)
}

/// Replaces `dir/account.json` atomically and durably, 0600 in a 0700 dir.
fn store(dir: &Path, text: &str) -> Result<(), AcmeError> {
    let file = dir.join(FILE);
    let state = |e: std::io::Error| AcmeError::State {
        path: file.clone(),
        cause: e.to_string(),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(state)?;
    // The dir may predate us with a wider mode; it holds a private key.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(state)?;
    // A fresh random name (O_EXCL, 0600): never a leftover or a planted file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".account.json.")
        .tempfile_in(dir)
        .map_err(state)?;
    tmp.write_all(text.as_bytes()).map_err(state)?;
    tmp.as_file().sync_all().map_err(state)?;
    tmp.persist(&file).map_err(|e| state(e.error))?;
    // The rename is durable only once the directory is.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_makes_a_private_dir_and_file_and_replaces_it_whole() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state/acme");
        store(&dir, "{\"a\":1}").unwrap();
        store(&dir, "{\"b\":2}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE)), 0o600);
        assert_eq!(std::fs::read_to_string(dir.join(FILE)).unwrap(), "{\"b\":2}");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE)], "no temp file left");
    }

    #[test]
    fn store_narrows_an_existing_wider_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("acme");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        store(&dir, "{}").unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
