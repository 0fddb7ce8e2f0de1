//! Flags shared by the commands that act on a host (`plan`, `apply`,
//! `daemon`, `status`): the host config file, and an override for each
//! field users change often.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{HostConfig, ProxyKind};

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// The host config: where the config repo is, which proxy to drive, the
    /// state directory. E.g. `--config ./daemon.yaml`.
    #[arg(long, default_value = crate::config::DEFAULT_PATH, value_name = "FILE")]
    pub config: PathBuf,
    /// The config repo to deploy from: a path, file://, https:// or ssh://
    /// URL. Default: repo.url of the host config.
    #[arg(long = "repo-url", value_name = "URL")]
    pub repo_url: Option<String>,
    /// The branch to deploy, e.g. `--branch production`. Default:
    /// repo.branch of the host config (main when it has none).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Where teal.yaml and services/ are inside the repo, e.g. `deploy/`.
    /// Default: repo.path of the host config (/ when it has none).
    #[arg(long = "repo-path", value_name = "PATH")]
    pub repo_path: Option<String>,
    /// Where teal keeps its repo mirror, lock and event log. Default:
    /// state_dir of the host config (/var/lib/teal when it has none).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The Docker endpoint, e.g. `unix:///var/run/docker.sock`. Default:
    /// docker.host of the host config, else DOCKER_HOST, else the local socket.
    #[arg(long = "docker-host", value_name = "URL")]
    pub docker_host: Option<String>,
    /// The Docker network teal manages and attaches containers to. Default:
    /// docker.network of the host config (teal when it has none).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// The proxy teal drives: haproxy or nginx. Default: proxy.kind of the
    /// host config.
    #[arg(long, value_enum, value_name = "KIND")]
    pub proxy: Option<ProxyKind>,
    /// Address of the status API (status, metrics, webhook), e.g.
    /// `127.0.0.1:9470`. Default: listen of the host config (127.0.0.1:9470
    /// when it has none).
    #[arg(long = "listen", value_name = "ADDR")]
    pub listen: Option<String>,
}

impl HostArgs {
    /// The host config file with the flags applied on top.
    pub fn load(&self) -> anyhow::Result<HostConfig> {
        let mut c = load_file(&self.config)?;
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

/// The host config in `path`, as the commands report it when it does not load.
pub fn load_file(path: &Path) -> anyhow::Result<HostConfig> {
    HostConfig::load(path).context("loading the host config")
}

/// Fetches the configured branch and reads its desired state, off the runtime.
pub async fn fetch(config: &HostConfig) -> anyhow::Result<crate::reconcile::Revision> {
    let c = config.clone();
    let rev = tokio::task::spawn_blocking(move || crate::reconcile::fetch_desired(&c)).await??;
    Ok(rev)
}

/// The fleet's bearer token (host.token_file), if one is configured.
pub fn token(config: &crate::config::HostConfig) -> anyhow::Result<Option<String>> {
    let Some(f) = &config.host.token_file else {
        return Ok(None);
    };
    let t = crate::secret::Secret::load(f, "host.token_file")?;
    Ok(Some(t.expose().to_string()))
}
