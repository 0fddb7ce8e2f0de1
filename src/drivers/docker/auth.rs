//! Whose credentials a pull sends to a registry, found as `docker pull`
//! finds them, with the host config first: a `registries:` item for the
//! image's registry; else in Docker's `config.json` (`$DOCKER_CONFIG` or
//! `~/.docker`) the registry's `credHelpers` entry, the `credsStore`, or
//! the `auths` entry. Helpers speak Docker's credential-helper protocol:
//! `docker-credential-<name> get`, the registry on stdin, JSON on stdout;
//! the registry name (from the repo) goes only to stdin, never into an
//! argument. Where credentials came from is kept to explain a rejection;
//! the password itself is never formatted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::registries::{normalise, Registry};
use crate::secret::Secret;

/// A helper gets this long to answer.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// More than any credential's JSON; a helper's output is read no further.
const HELPER_MAX_BYTES: u64 = 64 * 1024;

/// Where this host's registry credentials are looked up.
#[derive(Debug, Clone, Default)]
pub struct RegistryAuth {
    /// The host config's `registries:`.
    pub registries: Vec<Registry>,
    /// Docker's `config.json`; `None`: there is none to read.
    pub docker_config: Option<PathBuf>,
    /// Where credential helpers are looked for; `None`: this process's PATH.
    pub helper_path: Option<std::ffi::OsString>,
}

/// The credentials for one pull and where they came from.
#[derive(Clone, Default)]
pub struct Found {
    pub credentials: Option<DockerCredentials>,
    /// `registries[0] in the host config (user ci)`, `docker-credential-pass`,
    /// `auths in /root/.docker/config.json (user ci)`, or `none`.
    pub source: String,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl RegistryAuth {
    /// The host config's registries and the Docker config of this
    /// process's environment.
    pub fn new(registries: Vec<Registry>) -> RegistryAuth {
        let docker_config = match std::env::var_os("DOCKER_CONFIG") {
            Some(d) => Some(PathBuf::from(d).join("config.json")),
            None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json")),
        };
        RegistryAuth {
            registries,
            docker_config,
            helper_path: None,
        }
    }

    /// The credentials to pull `image` with; an error says which file or
    /// helper failed (never a secret).
    pub async fn for_image(&self, image: &str) -> Result<Found, String> {
        let registry = registry_of(image);
        let key = normalise(registry);
        if let Some((i, r)) = self
            .registries
            .iter()
            .enumerate()
            .find(|(_, r)| normalise(&r.host) == key)
        {
            let what = format!("registries[{i}].password_file");
            let password = read_password(&r.password_file, &what)?;
            return Ok(Found {
                credentials: Some(basic(&r.username, password.expose(), registry)),
                source: format!("registries[{i}] in the host config (user {})", r.username),
            });
        }
        let Some(path) = &self.docker_config else {
            return Ok(none());
        };
        let config = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| format!("{}: not JSON: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(none()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let helper = config
            .get("credHelpers")
            .and_then(|h| h.as_object())
            .and_then(|h| h.iter().find(|(k, _)| normalise(k) == key))
            .and_then(|(_, v)| v.as_str())
            .or_else(|| config.get("credsStore").and_then(|s| s.as_str()));
        if let Some(name) = helper {
            return helper_get(name, registry, self.helper_path.as_deref()).await;
        }
        Ok(auths_entry(&config, &key, registry, path).unwrap_or_else(none))
    }
}

/// A password file: its owner's alone (mode 0600), not empty.
fn read_password(path: &Path, what: &str) -> Result<Secret, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "{what} {}: mode {mode:03o} lets others than its owner read it: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    Secret::load(path, what).map_err(|e| e.to_string())
}

fn none() -> Found {
    Found {
        credentials: None,
        source: "none (no registries item, no Docker credentials for this registry)".into(),
    }
}

fn basic(user: &str, password: &str, registry: &str) -> DockerCredentials {
    DockerCredentials {
        username: Some(user.to_string()),
        password: Some(password.to_string()),
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    }
}

/// The registry an image reference names, as `config.json` keys it.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "https://index.docker.io/v1/",
    }
}

/// `auths.<registry>.auth` (base64 `user:password`) of a Docker config.
fn auths_entry(config: &serde_json::Value, key: &str, registry: &str, path: &Path) -> Option<Found> {
    let auths = config.get("auths")?.as_object()?;
    let entry = auths.iter().find(|(k, _)| normalise(k) == key)?.1;
    if let Some(token) = entry.get("identitytoken").and_then(|t| t.as_str()) {
        return Some(Found {
            credentials: Some(DockerCredentials {
                identitytoken: Some(token.to_string()),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }),
            source: format!("auths in {} (identity token)", path.display()),
        });
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.get("auth")?.as_str()?)
        .ok()?;
    let (user, pass) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Found {
        credentials: Some(basic(user, pass, registry)),
        source: format!("auths in {} (user {user})", path.display()),
    })
}

/// Asks `docker-credential-<name>` for the registry's credentials. "not
/// found" from the helper is no credentials, as with Docker.
async fn helper_get(name: &str, registry: &str, path: Option<&std::ffi::OsStr>) -> Result<Found, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "credential helper {name:?} in Docker's config.json is not a helper name"
        ));
    }
    let program = format!("docker-credential-{name}");
    let mut cmd = tokio::process::Command::new(&program);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{program}: cannot run it: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let ask = async {
        // The helper may exit without reading; its answer says why.
        let _ = stdin.write_all(registry.as_bytes()).await;
        drop(stdin);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut out_r = (&mut stdout).take(HELPER_MAX_BYTES);
        let mut err_r = (&mut stderr).take(HELPER_MAX_BYTES);
        let (r1, r2) = tokio::join!(out_r.read_to_end(&mut out), err_r.read_to_end(&mut err));
        r1.and(r2)?;
        Ok::<_, std::io::Error>((child.wait().await?, out, err))
    };
    let (status, out, err) = tokio::time::timeout(HELPER_TIMEOUT, ask)
        .await
        .map_err(|_| format!("{program} did not answer within {}s", HELPER_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{program}: {e}"))?;
    let said = |b: &[u8]| String::from_utf8_lossy(b).trim().chars().take(200).collect::<String>();
    if !status.success() {
        let why = [said(&out), said(&err)]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        if why.to_ascii_lowercase().contains("credentials not found") {
            return Ok(Found {
                credentials: None,
                source: format!("none ({program} has none for this registry)"),
            });
        }
        return Err(format!("{program} get failed ({status}): {why}"));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let a: Answer =
        serde_json::from_slice(&out).map_err(|e| format!("{program} get: its answer is not credentials JSON: {e}"))?;
    let credentials = if a.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(a.secret),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        }
    } else {
        basic(&a.username, &a.secret, registry)
    };
    Ok(Found {
        credentials: Some(credentials),
        source: format!("{program} (user {})", a.username),
    })
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
