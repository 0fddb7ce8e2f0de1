//! Fetching the config repo into a bare mirror in the state dir, so the
//! daemon reads trees from its own copy and never touches a work tree.
//! Local paths, `file://`, `https://` (token from a file) and `ssh://` (key
//! file) are supported through libgit2.

use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, FetchOptions, Oid, RemoteCallbacks, Repository};
use sha2::Digest;

/// Where and how to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// A local path, `file://`, `https://` or `ssh://` URL.
    pub url: String,
    pub branch: String,
    pub ssh_key: Option<PathBuf>,
    /// A file holding `token` or `user:token`.
    pub token_file: Option<PathBuf>,
    /// An OpenSSH `known_hosts` file pinning the ssh:// host key; `None`:
    /// libgit2's own check against `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot prepare the mirror at {path}: {source}")]
    Mirror { path: String, source: git2::Error },
    #[error("fetching branch {branch:?} from {url}: {message}")]
    Fetch {
        url: String,
        branch: String,
        message: String,
    },
    #[error("branch {branch:?} not found in {url} after fetching; check repo.branch in the host config")]
    NoBranch { url: String, branch: String },
    #[error("reading {path}: {source}")]
    Secret { path: String, source: std::io::Error },
    #[error("{0}")]
    Token(#[from] crate::secret::SecretError),
}

/// Fetches `remote.branch` into the bare mirror `mirror` (created when
/// missing) and returns the fetched commit. Blocking: call it from
/// `spawn_blocking`.
pub fn fetch(mirror: &Path, remote: &Remote) -> Result<Oid, FetchError> {
    let shown = mirror.display().to_string();
    let repo = match Repository::open_bare(mirror) {
        Ok(r) => r,
        Err(_) => Repository::init_bare(mirror).map_err(|source| FetchError::Mirror {
            path: shown.clone(),
            source,
        })?,
    };
    let url = normalise_url(&remote.url);
    let mut origin = repo.remote_anonymous(&url).map_err(|source| FetchError::Mirror {
        path: shown.clone(),
        source,
    })?;
    let token = match &remote.token_file {
        Some(p) => Some(read_secret(p)?),
        None => None,
    };
    let mut callbacks = RemoteCallbacks::new();
    let mut tried = false;
    callbacks.credentials(move |_url, user, allowed| {
        // libgit2 calls again after a rejected credential; fail instead of looping.
        if tried {
            return Err(git2::Error::from_str("credentials were rejected"));
        }
        tried = true;
        credentials(user, allowed, remote.ssh_key.as_deref(), token.as_deref())
    });
    // libgit2 replaces a callback's error with its own generic one: keep ours.
    let rejected = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
    if let Some(path) = &remote.known_hosts {
        let rejected = rejected.clone();
        let pinned = read_known_hosts(path)?;
        let shown = path.display().to_string();
        let port = ssh_port(&remote.url);
        callbacks.certificate_check(move |cert, host| {
            let Some(hk) = cert.as_hostkey() else {
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            // libgit2 gives the raw key or at least its sha256.
            let matches = |k: &Vec<u8>| {
                hk.hostkey().is_some_and(|raw| raw == k.as_slice())
                    || hk.hash_sha256().is_some_and(|h| h[..] == sha2::Sha256::digest(k)[..])
            };
            let names = [host.to_string(), format!("[{host}]:{port}")];
            if pinned
                .iter()
                .any(|(hosts, k)| matches(k) && hosts.iter().any(|h| names.contains(h)))
            {
                Ok(git2::CertificateCheckStatus::CertificateOk)
            } else {
                let why = format!(
                    "the ssh host key of {host} is not in {shown}: add it (ssh-keyscan -p {port} {host} >> {shown})"
                );
                *rejected.borrow_mut() = Some(why.clone());
                Err(git2::Error::from_str(&why))
            }
        });
    }
    let mut options = FetchOptions::new();
    options.remote_callbacks(callbacks);
    let tracking = tracking_ref(&remote.branch);
    let refspec = format!("+refs/heads/{}:{tracking}", remote.branch);
    origin
        .fetch(&[&refspec], Some(&mut options), None)
        .map_err(|e| FetchError::Fetch {
            url: remote.url.clone(),
            branch: remote.branch.clone(),
            message: rejected
                .borrow_mut()
                .take()
                .unwrap_or_else(|| missing_local(&url).unwrap_or_else(|| e.message().to_string())),
        })?;
    let oid = repo.refname_to_id(&tracking).map_err(|_| FetchError::NoBranch {
        url: remote.url.clone(),
        branch: remote.branch.clone(),
    })?;
    Ok(oid)
}

/// Host patterns and raw keys of an OpenSSH known_hosts file (hashed
/// entries are skipped).
/// Host patterns of one known_hosts line and its raw public key.
type KnownHost = (Vec<String>, Vec<u8>);

fn read_known_hosts(path: &Path) -> Result<Vec<KnownHost>, FetchError> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).map_err(|source| FetchError::Secret {
        path: path.display().to_string(),
        source,
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.starts_with('|'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let hosts = f.next()?.split(',').map(String::from).collect();
            let _kind = f.next()?;
            let key = base64::engine::general_purpose::STANDARD.decode(f.next()?).ok()?;
            Some((hosts, key))
        })
        .collect())
}

/// The port of an `ssh://` URL (22 when absent).
fn ssh_port(url: &str) -> u16 {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    hostport
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(22)
}

/// The ref a fetched branch is kept under in the mirror.
pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// Relative local paths become absolute, so the mirror's remote does not
/// depend on the daemon's working directory.
fn normalise_url(url: &str) -> String {
    if url.contains("://") || url.starts_with('/') || url.contains('@') {
        return url.to_string();
    }
    std::fs::canonicalize(url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| url.to_string())
}

/// For a local repo (a path or `file://`) that is not there, what to say
/// instead of libgit2's "unsupported URL protocol".
fn missing_local(url: &str) -> Option<String> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    (path.starts_with('/') && !Path::new(path).exists())
        .then(|| format!("{path} does not exist: check repo.url, and that the repo is where it points"))
}

/// Read at every fetch, so a rotated token is picked up without a restart.
fn read_secret(path: &Path) -> Result<String, FetchError> {
    Ok(crate::secret::Secret::load(path, "repo.token_file")?
        .expose()
        .to_string())
}

fn credentials(
    user: Option<&str>,
    allowed: CredentialType,
    ssh_key: Option<&Path>,
    token: Option<&str>,
) -> Result<Cred, git2::Error> {
    if allowed.contains(CredentialType::SSH_KEY) {
        if let Some(key) = ssh_key {
            return Cred::ssh_key(user.unwrap_or("git"), None, key, None);
        }
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        if let Some(token) = token {
            let (u, p) = token.split_once(':').unwrap_or(("x-access-token", token));
            return Cred::userpass_plaintext(u, p);
        }
    }
    Err(git2::Error::from_str(
        "the remote asks for credentials: set repo.ssh_key (ssh://) or repo.token_file (https://) in the host config",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn upstream() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        git(&work, &["init", "-q"]);
        std::fs::write(work.join("a.txt"), "1").unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "one"]);
        (dir, work)
    }

    fn remote(url: String) -> Remote {
        Remote {
            url,
            branch: "main".into(),
            ssh_key: None,
            token_file: None,
            known_hosts: None,
        }
    }

    #[test]
    fn fetches_local_path_and_file_url_and_follows_new_commits() {
        let (dir, work) = upstream();
        let mirror = dir.path().join("mirror.git");
        let head = git(&work, &["rev-parse", "HEAD"]);
        assert_eq!(
            fetch(&mirror, &remote(work.display().to_string())).unwrap().to_string(),
            head
        );
        std::fs::write(work.join("a.txt"), "2").unwrap();
        git(&work, &["commit", "-qam", "two"]);
        let head2 = git(&work, &["rev-parse", "HEAD"]);
        let url = format!("file://{}", work.display());
        assert_eq!(fetch(&mirror, &remote(url)).unwrap().to_string(), head2);
        // A rewritten branch (force push) is followed too.
        git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
        assert_eq!(
            fetch(&mirror, &remote(work.display().to_string())).unwrap().to_string(),
            head
        );
    }

    #[test]
    fn unreachable_remote_and_missing_branch_are_clear_errors() {
        let (dir, work) = upstream();
        let mirror = dir.path().join("mirror.git");
        let err = fetch(&mirror, &remote("/nonexistent/deploy.git".into()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "fetching branch \"main\" from /nonexistent/deploy.git: /nonexistent/deploy.git does not exist: \
             check repo.url, and that the repo is where it points"
        );
        let err = fetch(&mirror, &remote("file:///nonexistent/deploy.git".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with(
                ": /nonexistent/deploy.git does not exist: check repo.url, and that the repo is where it points"
            ),
            "{err}"
        );
        let mut r = remote(work.display().to_string());
        r.branch = "prod".into();
        let err = fetch(&mirror, &r).unwrap_err().to_string();
        assert!(err.contains("\"prod\""), "{err}");
    }

    #[test]
    fn missing_token_file_is_named() {
        let (dir, work) = upstream();
        let mut r = remote(work.display().to_string());
        r.token_file = Some("/nonexistent/token".into());
        let err = fetch(&dir.path().join("m.git"), &r).unwrap_err().to_string();
        assert!(err.starts_with("repo.token_file /nonexistent/token: "), "{err}");
    }
}

#[cfg(test)]
#[path = "fetch_ssh_tests.rs"]
mod ssh_tests;
