//! The host config (`/etc/teal/daemon.yaml`, DESIGN section 2): where the
//! repo is, how to reach Docker, which proxy to drive, where state lives.
//! Not in git; secrets are referenced by file path, never inlined. Every
//! field but `repo.url` and `proxy.kind` has a default, field by field
//! (`defaults` prints them all); unknown fields are reported all at once.

pub mod acme;
pub mod api;
pub mod defaults;
pub mod events;
mod fields;
pub mod fleet;
pub mod notify;
mod policy;
pub mod proxy;
pub mod registries;
pub mod secrets;

pub use proxy::{HaproxySettings, NginxSettings, NginxSwitch, ProxyConfig, ProxyKind};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default location of the host config.
pub const DEFAULT_PATH: &str = "/etc/teal/daemon.yaml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    pub repo: RepoConfig,
    #[serde(default)]
    pub docker: DockerConfig,
    pub proxy: ProxyConfig,
    /// Where teal keeps its clone, lock and event log.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Address of the status API (status, metrics, webhook).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// What the config repo may ask of this host: image and bind-mount
    /// prefixes. Absent: any image, no bind mounts.
    #[serde(default)]
    pub policy: crate::policy::Policy,
    /// This host in a fleet: its name in teal.yaml's hosts, and the token
    /// its peers use to read its status.
    #[serde(default)]
    pub host: HostIdentity,
    /// Where deploys are reported: webhooks and forge commit statuses.
    #[serde(default)]
    pub notify: Vec<notify::NotifyTarget>,
    /// Which status URLs of teal.yaml's hosts this host reads (and sends
    /// `host.token_file` to).
    #[serde(default)]
    pub fleet: fleet::FleetConfig,
    /// When the event log rotates, and how much of it is kept.
    #[serde(default)]
    pub events: events::EventsConfig,
    /// The status API's connection and stream limits.
    #[serde(default)]
    pub api: api::ApiConfig,
    /// The key this host decrypts the repo's secrets with.
    #[serde(default)]
    pub secrets: secrets::SecretsConfig,
    /// The ACME CA that issues the certificates of `tls: acme` routes.
    #[serde(default)]
    pub acme: Option<acme::AcmeConfig>,
    /// Credentials of the registries this host pulls from.
    #[serde(default)]
    pub registries: Vec<registries::Registry>,
    /// How images are pulled.
    #[serde(default)]
    pub images: registries::ImagesConfig,
}

/// `host:` in the host config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostIdentity {
    /// The host's name in teal.yaml's `hosts`. Default: the machine's
    /// hostname.
    #[serde(default)]
    pub name: Option<String>,
    /// File holding a bearer token: when set, the status API answers only
    /// requests that carry it (`Authorization: Bearer <token>`), and this
    /// daemon sends it when it reads its peers' status (one token per
    /// fleet). Default: none (the API stays on loopback).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Names this host is reached by (a browser's address bar, a peer's
    /// status URL), which the status API answers to besides IP addresses
    /// and `localhost`; any other Host header gets 421 (DNS rebinding).
    #[serde(default)]
    pub names: Vec<String>,
}

impl HostIdentity {
    /// The configured name, else the machine's hostname.
    pub fn resolved_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into())
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// A local path, `file://`, `https://` or `ssh://` URL.
    pub url: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Where `teal.yaml` and `services/` live inside the repo.
    #[serde(default = "default_repo_path")]
    pub path: String,
    #[serde(default = "default_poll", with = "crate::spec::duration::serde_human")]
    pub poll: Duration,
    /// Private key for `ssh://` URLs.
    #[serde(default)]
    pub ssh_key: Option<PathBuf>,
    /// File holding a token for `https://` URLs.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// OpenSSH known_hosts file pinning the ssh:// remote's host key;
    /// default: libgit2's check against ~/.ssh/known_hosts.
    #[serde(default)]
    pub known_hosts: Option<PathBuf>,
    /// File holding the webhook HMAC secret.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// For a repo on this machine: fetch as soon as it changes, not only
    /// every `poll`. Default true.
    #[serde(default = "default_true")]
    pub watch: bool,
    /// Signatures the head commit must carry to be applied.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// Refuse a head that does not descend from the last applied commit
    /// (a rewound branch). Default: on when `verify` is set (a signed old
    /// commit pushed back is still signed), else off; see
    /// `refuses_rewinds`.
    #[serde(default)]
    pub fast_forward_only: Option<bool>,
}

impl RepoConfig {
    /// `fast_forward_only` as written, else on exactly when `verify` is.
    pub fn refuses_rewinds(&self) -> bool {
        self.fast_forward_only.unwrap_or_else(|| self.verify.required())
    }
}

/// `repo.verify`: who may deploy. With either set, an unsigned head, or
/// one signed by another key, is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// ssh-keygen allowed-signers file: SSH signatures (git's
    /// gpg.format=ssh) by its keys, for the git namespace.
    #[serde(default)]
    pub allowed_signers: Option<PathBuf>,
    /// OpenPGP keyring (checked with gpgv): signatures by its keys.
    #[serde(default)]
    pub gpg_keyring: Option<PathBuf>,
}

impl VerifyConfig {
    /// Whether the head must carry a signature.
    pub fn required(&self) -> bool {
        self.allowed_signers.is_some() || self.gpg_keyring.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerConfig {
    /// `unix:///var/run/docker.sock` or `tcp://host:2375`; default: the
    /// `DOCKER_HOST` convention.
    #[serde(default)]
    pub host: Option<String>,
    /// The Docker network teal manages and attaches containers to. In
    /// swarm mode it names teal's services (the `teal.owner` label); tasks
    /// publish their port on their node instead of joining it.
    #[serde(default = "default_network")]
    pub network: String,
    /// `engine` (default): each color's replicas are containers on this
    /// engine. `swarm`: each color is a Swarm service `<service>-<color>`
    /// and its tasks are the replicas; the engine must be a manager.
    #[serde(default)]
    pub mode: DockerMode,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            host: None,
            network: default_network(),
            mode: DockerMode::Engine,
        }
    }
}

/// `docker.mode`: who runs the replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerMode {
    /// Containers on this engine, created by teal.
    #[default]
    Engine,
    /// Swarm services on the swarm this engine manages (DESIGN section 10).
    Swarm,
}

impl std::fmt::Display for DockerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DockerMode::Engine => "engine",
            DockerMode::Swarm => "swarm",
        })
    }
}

fn default_true() -> bool {
    true
}

fn default_state_dir() -> PathBuf {
    "/var/lib/teal".into()
}
fn default_listen() -> String {
    "127.0.0.1:9470".into()
}
fn default_branch() -> String {
    "main".into()
}
fn default_repo_path() -> String {
    "/".into()
}
fn default_poll() -> Duration {
    Duration::from_secs(15)
}
fn default_network() -> String {
    crate::spec::defaults::NETWORK.into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{path}: cannot read the host config: {source}; pass --config FILE or create it (see README, 'Host config')"
    )]
    Read { path: String, source: std::io::Error },
    /// Unknown fields, every one with its position.
    #[error("{0}")]
    Unknown(crate::spec::Diagnostics),
    /// Too large, too deep or an alias bomb (`spec::limits`).
    #[error("{0}")]
    Hostile(crate::spec::Diagnostic),
    /// A notify target that is neither a webhook nor a forge, or a peer
    /// URL that is not https (`fleet.peers`).
    #[error("{0}")]
    Invalid(crate::spec::Diagnostics),
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl HostConfig {
    /// Reads and parses a host config file.
    pub fn load(path: &Path) -> Result<HostConfig, ConfigError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let read_err = |source| ConfigError::Read {
            path: shown.clone(),
            source,
        };
        // Never more than the limit (plus one byte, to see it crossed) in memory.
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| {
                f.take(crate::spec::limits::MAX_FILE_BYTES as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(read_err)?;
        Self::parse(&shown, &text)
    }

    /// Parses host config text; errors carry `path:line:col`. Every
    /// unknown field is reported at once, before any other error.
    pub fn parse(path: &str, text: &str) -> Result<HostConfig, ConfigError> {
        crate::spec::limits::check(path, text).map_err(ConfigError::Hostile)?;
        let unknown = fields::unknown(path, text);
        if !unknown.is_empty() {
            return Err(ConfigError::Unknown(crate::spec::Diagnostics(unknown)));
        }
        let config: HostConfig = serde_yaml::from_str(text).map_err(|e| {
            let (line, col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            ConfigError::Parse {
                path: path.into(),
                line,
                col,
                message: strip_location(&e.to_string()),
            }
        })?;
        let mut wrong = notify::check(path, text, &config.notify);
        wrong.extend(fleet::check(path, text, &config.fleet));
        wrong.extend(api::check(path, text, &config.host.names, &config.api));
        wrong.extend(registries::check(path, text, &config.registries));
        wrong.extend(policy::check(path, text, &config.policy));
        if !wrong.is_empty() {
            return Err(ConfigError::Invalid(crate::spec::Diagnostics(wrong)));
        }
        Ok(config)
    }
}

/// serde_yaml appends " at line X column Y" to messages; we print the
/// position as a `path:line:col` prefix instead, and quote as the service
/// files' errors do.
fn strip_location(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.replace('`', "\"")
}

#[cfg(test)]
mod tests;
