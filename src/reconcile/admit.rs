//! What a fetched commit must pass before its desired state is served:
//! the signature the host requires, a history that does not rewind the
//! applied commit (when asked), valid files, and the host's policy. A
//! commit that fails any of them is refused and nothing that serves
//! changes. Blocking (git2 and files): call from `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::{signers_digest, LoadError, Loaded, ReadCache};
use super::{applied, DesiredError, Revision};
use crate::config::HostConfig;
use crate::policy::{self, Policy};
use crate::source::fetch::{self, Remote};
use crate::source::verify::{self, Verify};
use crate::spec::{Desired, Diagnostics, RepoFiles};

/// Fetches the configured branch into the mirror in the state dir: the
/// mirror's path and the head.
pub fn fetch_head(config: &HostConfig) -> Result<(PathBuf, git2::Oid), DesiredError> {
    let mirror = config.state_dir.join("repo.git");
    if !mirror.exists() {
        // No mirror, no commit accepted yet: from here on a missing
        // record is a lost one (`applied`).
        applied::mark_fresh(&config.state_dir).map_err(|e| DesiredError::State {
            path: applied::path(&config.state_dir).display().to_string(),
            message: e.to_string(),
        })?;
    }
    let remote = Remote {
        url: config.repo.url.clone(),
        branch: config.repo.branch.clone(),
        ssh_key: config.repo.ssh_key.clone(),
        token_file: config.repo.token_file.clone(),
        known_hosts: config.repo.known_hosts.clone(),
    };
    let oid = fetch::fetch(&mirror, &remote)?;
    Ok((mirror, oid))
}

/// Fetches the configured branch into the mirror in the state dir and
/// admits its head: signature, history, files, policy.
pub fn fetch_desired(config: &HostConfig) -> Result<Revision, DesiredError> {
    fetch_desired_with(config, &ReadCache::default())
}

/// `fetch_desired` for a daemon's passes: what `cache` holds of the head
/// is not read or verified again.
pub fn fetch_desired_with(config: &HostConfig, cache: &ReadCache) -> Result<Revision, DesiredError> {
    let (mirror, oid) = fetch_head(config)?;
    let commit = oid.to_string();
    let refuse = |reason: String| DesiredError::Refused {
        commit: commit.clone(),
        reason,
    };
    let repo =
        git2::Repository::open_bare(&mirror).map_err(|e| refuse(format!("opening the mirror: {}", e.message())))?;
    let v = Verify {
        allowed_signers: config.repo.verify.allowed_signers.clone(),
        gpg_keyring: config.repo.verify.gpg_keyring.clone(),
    };
    if v.required() {
        let signers = signers_digest(&[v.allowed_signers.as_deref(), v.gpg_keyring.as_deref()]);
        if !cache.verified(&commit, &signers) {
            verify::verify_commit(&repo, oid, &v).map_err(|r| refuse(r.0))?;
            cache.set_verified(&commit, signers);
        }
    }
    if config.repo.refuses_rewinds() {
        match applied::read(&config.state_dir).map_err(|e| refuse(e.to_string()))? {
            // The first head a fresh host admits becomes the baseline.
            applied::Baseline::Fresh => {}
            applied::Baseline::Commit(applied) => {
                verify::fast_forward(&repo, oid, applied).map_err(|r| refuse(r.0))?;
            }
        }
    }
    let host = config.host.resolved_name();
    let path = &config.repo.path;
    let loaded = cache
        .load(&commit, path, || load(&mirror, &commit, path))
        .map_err(|e| read_or_invalid(&commit, e))?;
    let mut rev = admit(&commit, &loaded.0, loaded.1.clone(), &host, &PolicyCheck::of(config))?;
    rev.desired
        .set_env_key(super::env_key::load_or_create(&config.state_dir)?);
    super::promote::resolve(
        &mut rev.desired,
        &repo,
        &crate::records::Records::new(&config.state_dir),
    );
    super::secrets::resolve(
        &mut rev.desired,
        config.secrets.identity_file.as_deref(),
        &config.policy,
    );
    Ok(rev)
}

/// Fetches the configured branch and reads its whole desired state, for
/// every host (the fleet view): no admission, nothing is applied from it.
pub fn fetch_fleet(config: &HostConfig) -> Result<Revision, DesiredError> {
    let (mirror, oid) = fetch_head(config)?;
    read_desired(&mirror, &oid.to_string(), &config.repo.path, None)
}

/// The host's policy with the engine's socket paths.
pub struct PolicyCheck<'a> {
    pub policy: &'a Policy,
    pub docker_sockets: Vec<PathBuf>,
    /// `docker.mode: swarm`: placement is Swarm's, every service applies.
    pub swarm: bool,
}

impl PolicyCheck<'_> {
    /// The policy of `config`; the Docker socket is the configured one and
    /// the usual paths.
    pub fn of(config: &HostConfig) -> PolicyCheck<'_> {
        let mut docker_sockets = vec![PathBuf::from("/var/run/docker.sock"), PathBuf::from("/run/docker.sock")];
        let host = config.docker.host.clone().or_else(|| std::env::var("DOCKER_HOST").ok());
        if let Some(p) = host.as_deref().and_then(|h| h.strip_prefix("unix://")) {
            docker_sockets.push(PathBuf::from(p));
        }
        PolicyCheck {
            policy: &config.policy,
            docker_sockets,
            swarm: config.docker.mode == crate::config::DockerMode::Swarm,
        }
    }

    /// Every violation in `files`, located.
    pub fn check(&self, desired: &crate::spec::Desired, files: &RepoFiles) -> Vec<crate::spec::Diagnostic> {
        let host = policy::Host {
            docker_sockets: &self.docker_sockets,
            resolve: &crate::drivers::paths::resolve,
            swarm: self.swarm,
        };
        policy::check(desired, files, self.policy, &host)
    }
}

/// Reads and validates the desired state of `commit` in `repo` under
/// `path`. Given a host (its name and policy), keeps the services placed
/// on it (refusing a name the fleet does not list) and checks them
/// against its policy.
pub fn read_desired(
    repo: &Path,
    commit: &str,
    path: &str,
    host: Option<(&str, &PolicyCheck<'_>)>,
) -> Result<Revision, DesiredError> {
    let (files, desired) = Arc::unwrap_or_clone(load(repo, commit, path).map_err(|d| read_or_invalid(commit, d))?);
    match host {
        None => Ok(Revision {
            commit: commit.to_string(),
            desired,
        }),
        Some((name, policy)) => admit(commit, &files, desired, name, policy),
    }
}

/// A commit's files and validated desired state (every host's).
fn load(repo: &Path, commit: &str, path: &str) -> Loaded {
    let files = crate::source::read_files(repo, commit, path).map_err(|e| LoadError::Read(e.to_string()))?;
    let desired = crate::spec::load(&files).map_err(LoadError::Invalid)?;
    Ok(Arc::new((files, desired)))
}

fn read_or_invalid(commit: &str, e: LoadError) -> DesiredError {
    let commit = commit.to_string();
    match e {
        LoadError::Read(message) => DesiredError::Read { commit, message },
        LoadError::Invalid(diagnostics) => DesiredError::Invalid { commit, diagnostics },
    }
}

/// The services of `desired` placed on host `name` (refusing a name the
/// fleet does not list), checked against its policy.
fn admit(
    commit: &str,
    files: &RepoFiles,
    desired: Desired,
    name: &str,
    policy: &PolicyCheck<'_>,
) -> Result<Revision, DesiredError> {
    let refuse = |reason: String| DesiredError::Refused {
        commit: commit.to_string(),
        reason,
    };
    // In swarm mode `placement` selects Swarm nodes, not teal hosts: the
    // manager applies every service.
    let desired = if policy.swarm {
        desired
    } else {
        desired.for_host(name).map_err(refuse)?
    };
    let violations = policy.check(&desired, files);
    if !violations.is_empty() {
        return Err(refuse(format!(
            "outside this host's policy:\n{}",
            Diagnostics(violations)
        )));
    }
    Ok(Revision {
        commit: commit.to_string(),
        desired,
    })
}
