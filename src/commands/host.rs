//! Flags shared by the commands that act on a host (`plan`, `apply`): the
//! host config file, and an override for each field users change often.

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{HostConfig, ProxyKind};

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// Host config file (DESIGN section 2), e.g. `--config ./daemon.yaml`.
    #[arg(long, default_value = crate::config::DEFAULT_PATH, value_name = "FILE")]
    pub config: PathBuf,
    /// Overrides repo.url: a path, file://, https:// or ssh:// URL.
    #[arg(long = "repo-url", value_name = "URL")]
    pub repo_url: Option<String>,
    /// Overrides repo.branch, e.g. `--branch production`.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Overrides repo.path (where teal.yaml and services/ are in the repo).
    #[arg(long = "repo-path", value_name = "PATH")]
    pub repo_path: Option<String>,
    /// Overrides state_dir, e.g. `--state-dir /var/lib/teal`.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Overrides docker.host, e.g. `unix:///var/run/docker.sock`.
    #[arg(long = "docker-host", value_name = "URL")]
    pub docker_host: Option<String>,
    /// Overrides docker.network.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Overrides proxy.kind.
    #[arg(long, value_enum, value_name = "KIND")]
    pub proxy: Option<ProxyKind>,
    /// Overrides listen (the status API address), e.g. `127.0.0.1:9470`.
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Option<String>,
}

impl HostArgs {
    /// The host config file with the flags applied on top.
    pub fn load(&self) -> anyhow::Result<HostConfig> {
        let mut c = HostConfig::load(&self.config).context("loading the host config")?;
        if let Some(v) = &self.repo_url {
            c.repo.url = v.clone();
        }
        if let Some(v) = &self.branch {
            c.repo.branch = v.clone();
        }
        if let Some(v) = &self.repo_path {
            c.repo.path = v.clone();
        }
        if let Some(v) = &self.state_dir {
            c.state_dir = v.clone();
        }
        if let Some(v) = &self.docker_host {
            c.docker.host = Some(v.clone());
        }
        if let Some(v) = &self.network {
            c.docker.network = v.clone();
        }
        if let Some(v) = self.proxy {
            c.proxy.kind = v;
        }
        if let Some(v) = &self.listen {
            c.listen = v.clone();
        }
        Ok(c)
    }
}

/// Fetches the configured branch and reads its desired state, off the runtime.
pub async fn fetch(config: &HostConfig) -> anyhow::Result<crate::reconcile::Revision> {
    let c = config.clone();
    let rev = tokio::task::spawn_blocking(move || crate::reconcile::fetch_desired(&c)).await??;
    Ok(rev)
}
