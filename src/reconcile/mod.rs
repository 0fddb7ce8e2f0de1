//! One reconcile pass, shared by `teal plan`, `teal apply` and the daemon:
//! read the desired state of a commit, observe the host afresh, plan, and
//! (unless only planning) execute. Level-triggered: nothing is remembered
//! between passes except what the caller keeps (backoff, status).

mod admit;
pub mod applied;
pub mod cache;
pub mod certs;
pub mod env_key;
pub mod images;
pub mod moved;
pub mod orders;
mod promote;
pub mod secrets;

pub use admit::{fetch_desired, fetch_desired_with, fetch_fleet, fetch_head, read_desired, PolicyCheck};
pub use applied::record as record_applied;

use crate::config::{DockerMode, HostConfig, NginxSwitch, ProxyKind};
use crate::drivers::docker::auth::RegistryAuth;
use crate::drivers::docker::{DockerDriver, DockerError, MountRules, PullSettings};
use crate::drivers::haproxy::{Haproxy, HaproxyConfig, TlsFiles};
use crate::drivers::managed::{self, ManagedSpec, Origin, Supervised};
use crate::drivers::nginx::balancer::Balancer;
use crate::drivers::nginx::{Nginx, NginxConfig};
use crate::drivers::proxy::{ProxyDriver, ProxyError};
use crate::drivers::runtime::Runtime;
use crate::drivers::swarm::SwarmDriver;
use crate::engine::{Engine, StepEvent};
use crate::observe::{observe, ObserveError};
use crate::outcome::Run;
use crate::plan::{plan, Observed, Plan};
use crate::records::Records;
use crate::source::fetch::FetchError;
use crate::spec::{Desired, Diagnostics};
use crate::strategy::Progress;

/// What a caller sees of a pass in flight.
pub struct Hooks<'a> {
    /// Each finished step (progress output, the event log).
    pub on_step: &'a (dyn Fn(&StepEvent) + Sync),
    /// Progress lines of long steps (image pulls), as (service, line).
    pub on_progress: &'a (dyn Fn(&str, &str) + Sync),
    /// Each new phase of a rollout.
    pub on_rollout: &'a (dyn Fn(&Progress) + Sync),
    /// True when news came for a pass under way (a new commit): a rollout
    /// waiting for a promotion ends its wait early.
    pub interrupted: &'a (dyn Fn() -> bool + Sync),
}

/// The drivers of one host, built from the host config.
pub struct Host {
    pub config: HostConfig,
    /// Containers on this engine, or Swarm services (`docker.mode`).
    pub docker: Runtime,
    /// Shared with the ACME orders running in the background.
    pub proxy: std::sync::Arc<ProxyDriver>,
    /// ACME orders of `tls: acme` routes, in the background.
    pub orders: orders::Orders,
    /// Rollout progress and rollbacks, in the state dir.
    pub records: Records,
    /// The proxy process teal owns when `proxy.managed` is true, watched
    /// and started again if it dies.
    pub managed: Option<Supervised>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("connecting to Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("setting up the {kind:?} proxy: {source}")]
    Proxy { kind: ProxyKind, source: ProxyError },
    #[error("the env key in the state dir: {0}")]
    EnvKey(#[from] env_key::EnvKeyError),
}

/// Reading the desired state of the repo's branch head.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("reading commit {commit}: {message}")]
    Read { commit: String, message: String },
    #[error("commit {commit} has an invalid config:\n{diagnostics}")]
    Invalid { commit: String, diagnostics: Diagnostics },
    /// The host's key for env digests cannot be read or made.
    #[error("the env key in the state dir: {0}")]
    EnvKey(#[from] env_key::EnvKeyError),
    /// Not signed as the host requires, rewound history, or outside the
    /// host's policy: not applied.
    #[error("refused {}: {reason}", crate::commit::ShortCommit::git(.commit))]
    Refused { commit: String, reason: String },
    /// A file in the state dir that cannot be written.
    #[error("{path}: {message}")]
    State { path: String, message: String },
}

/// A commit's desired state.
#[derive(Debug, Clone)]
pub struct Revision {
    pub commit: String,
    pub desired: Desired,
}

impl Host {
    /// Connects to Docker, makes sure the managed network exists, and sets
    /// up the configured proxy driver. A managed proxy an earlier teal
    /// started is adopted as it runs; otherwise one is started.
    pub async fn connect(config: HostConfig) -> Result<Host, HostError> {
        let docker = runtime(&config).await?;
        if let Runtime::Engine(d) = &docker {
            d.ensure_network().await?;
        }
        let kind = config.proxy.kind;
        let err = |source| HostError::Proxy { kind, source };
        let (proxy, managed) = match managed_spec(&config) {
            Some(spec) => {
                let (m, driver, origin) = managed::adopt_or_start(&spec).await.map_err(err)?;
                match origin {
                    Origin::Adopted => tracing::info!(pid = m.pid(), kind = %kind, "adopted the running managed proxy"),
                    Origin::Started => {
                        tracing::info!(pid = m.pid(), kind = %kind, listen = %spec.listen, "started the managed proxy")
                    }
                }
                (driver, Some(Supervised::new(m)))
            }
            None => (operator_proxy(&config).map_err(err)?, None),
        };
        Ok(Host::assemble(config, docker, proxy, managed))
    }

    fn assemble(config: HostConfig, docker: Runtime, proxy: ProxyDriver, managed: Option<Supervised>) -> Host {
        let proxy = std::sync::Arc::new(proxy);
        Host {
            orders: orders::Orders::new(config.acme.as_ref(), &config.state_dir, proxy.clone()),
            records: Records::new(&config.state_dir),
            config,
            docker,
            proxy,
            managed,
        }
    }

    /// Like `connect`, but never starts a proxy: a managed proxy that is
    /// not running is observed as serving nothing. For `teal plan`.
    pub async fn connect_read_only(config: HostConfig) -> Result<Host, HostError> {
        let docker = runtime(&config).await?;
        let kind = config.proxy.kind;
        let err = |source| HostError::Proxy { kind, source };
        let (proxy, managed) = match managed_spec(&config) {
            Some(spec) => match managed::attach(&spec).map_err(err)? {
                Some((_, driver)) => (driver, None),
                None => {
                    return Err(err(ProxyError::Other(format!(
                        "the managed {kind} proxy of {} is not running: start `teal daemon` (or `teal apply`) first",
                        spec.dir.display()
                    ))))
                }
            },
            None => (operator_proxy(&config).map_err(err)?, None),
        };
        Ok(Host::assemble(config, docker, proxy, managed))
    }

    /// A clean stop: the managed proxy (if any) stops with teal.
    pub fn stop_proxy(&mut self) {
        if let Some(m) = self.managed.take() {
            tracing::info!(pid = m.pid(), "stopping the managed proxy");
            m.stop();
        }
    }

    /// Observes Docker, the proxy and the rollout records afresh.
    pub async fn observe(&self, desired: &Desired) -> Result<Observed, ObserveError> {
        observe(&self.docker, &self.proxy, &self.records, desired).await
    }

    /// `observe` at the start of a daemon's pass: Docker's last listing is
    /// reused while no container event came since (`with_watch`).
    pub async fn observe_idle(&self, desired: &Desired) -> Result<Observed, ObserveError> {
        crate::observe::observe_idle(&self.docker, &self.proxy, &self.records, desired).await
    }

    /// Follows Docker's container events, for `observe_idle` (the daemon's).
    pub fn with_watch(mut self) -> Host {
        self.docker = self.docker.with_watch();
        self
    }

    /// Observes the host and plans `desired` against it.
    pub async fn plan(&self, desired: &Desired) -> Result<Plan, ObserveError> {
        let observed = self.observe(desired).await?;
        Ok(plan(
            &crate::pins::with_pins(desired, &self.config.state_dir),
            &observed,
        ))
    }

    /// Runs an already computed plan; the images colors started with go
    /// into the deployed images' record (`images`).
    pub async fn execute(&self, plan: &Plan, rev: &Revision, hooks: &Hooks<'_>) -> Vec<Run> {
        let engine = Engine {
            docker: &self.docker,
            proxy: &self.proxy,
            records: &self.records,
            commit: &rev.commit,
            on_progress: hooks.on_progress,
            on_rollout: hooks.on_rollout,
            interrupted: hooks.interrupted,
        };
        let started = std::sync::Mutex::new(Vec::new());
        let on_step = |e: &StepEvent| {
            if let (crate::plan::Step::StartColor { image, .. }, Ok(())) = (&e.step, &e.result) {
                started
                    .lock()
                    .expect("started lock")
                    .push((e.service.clone(), image.clone()));
            }
            (hooks.on_step)(e);
        };
        let runs = engine.execute(plan, &rev.desired, &on_step).await;
        let started = started.into_inner().expect("started lock");
        if let Err(e) = images::record(&self.config.state_dir, &started) {
            tracing::warn!(error = %e, "cannot write the deployed images' record");
        }
        runs
    }

    /// Observes, plans and executes one pass, then the certificates; a
    /// certificate ordered meanwhile is awaited (at most `ORDER_WAIT`) and
    /// installed before it returns, since no later pass of this process
    /// would.
    pub async fn apply(&self, rev: &Revision, hooks: &Hooks<'_>) -> Result<(Plan, Vec<Run>), ObserveError> {
        let plan = self.plan(&rev.desired).await?;
        let outcomes = self.execute(&plan, rev, hooks).await;
        let mut certs = self.certificates(&rev.desired).await;
        if self.orders.busy() {
            self.orders.settle(ORDER_WAIT).await;
            certs = self.certificates(&rev.desired).await;
        }
        for o in &certs.outcomes {
            match o {
                certs::CertOutcome::Installed {
                    service,
                    subject,
                    not_after,
                    ..
                } => {
                    tracing::info!(service = %service, subject = %subject, not_after, "certificate installed")
                }
                certs::CertOutcome::Failed { service, error } => {
                    tracing::warn!(service = %service, error = %error, "certificate not installed")
                }
                certs::CertOutcome::Removed { service } => tracing::info!(service = %service, "certificate removed"),
            }
        }
        Ok((plan, outcomes))
    }

    /// Route certificates after the routes (`certs::converge`).
    pub async fn certificates(&self, desired: &Desired) -> certs::Certs {
        let now = orders::unix_now();
        certs::converge(desired, &self.proxy, &self.config.policy, Some(&self.orders), now).await
    }
}

/// How long `teal apply` waits for a certificate it ordered.
const ORDER_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Connects to Docker, holding bind mounts to the host policy; in swarm
/// mode, refuses an engine that is not a Swarm manager.
pub async fn runtime(config: &HostConfig) -> Result<Runtime, HostError> {
    let d = &config.docker;
    let rules = MountRules {
        policy: config.policy.clone(),
        docker_sockets: PolicyCheck::of(config).docker_sockets,
        secrets_dir: Some(crate::drivers::paths::resolve(&config.state_dir.join("secrets"))),
    };
    let dir = config.state_dir.clone();
    let key = tokio::task::spawn_blocking(move || env_key::load_or_create(&dir))
        .await
        .expect("reading the env key does not panic")?;
    let docker = DockerDriver::connect(d.host.as_deref(), &d.network)
        .await?
        .with_mounts(rules)
        .with_env_key(key)
        .with_pulls(PullSettings {
            auth: RegistryAuth::new(config.registries.clone()),
            timeout: config.images.pull_timeout,
        });
    Ok(match d.mode {
        DockerMode::Engine => Runtime::Engine(docker),
        DockerMode::Swarm => {
            let shown = d
                .host
                .clone()
                .or_else(|| std::env::var("DOCKER_HOST").ok())
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
            Runtime::Swarm(SwarmDriver::on_manager(docker, &shown).await?)
        }
    })
}

/// The managed proxy's spec, when teal owns the proxy: under
/// `state_dir/proxy`.
pub fn managed_spec(config: &HostConfig) -> Option<ManagedSpec> {
    let p = &config.proxy;
    p.managed.then(|| ManagedSpec {
        kind: p.kind,
        dir: config.state_dir.join("proxy"),
        listen: p.listen.clone(),
        https: p.https_listen(),
        switch: p.nginx.switch,
        client_keepalive: p.nginx.client_keepalive,
        user: p.user.clone(),
    })
}

/// The driver for an operator's proxy (`managed: false`). The nginx
/// balancer's socket and peers file live in `state_dir/nginx`.
fn operator_proxy(config: &HostConfig) -> Result<ProxyDriver, ProxyError> {
    let p = &config.proxy;
    Ok(match p.kind {
        ProxyKind::Nginx => ProxyDriver::Nginx(Nginx::new(NginxConfig {
            conf_dir: p.nginx.conf_dir.clone(),
            test: p.nginx.test.clone(),
            reload: p.nginx.reload.clone(),
            listen: p.listen.clone(),
            client_keepalive: p.nginx.client_keepalive,
            balancer: (p.nginx.switch == NginxSwitch::Balancer)
                .then(|| Balancer::in_dir(&config.state_dir.join("nginx"))),
            https: p.https_listen(),
        })),
        ProxyKind::Haproxy => ProxyDriver::Haproxy(Haproxy::new(HaproxyConfig {
            config: p.haproxy.config.clone(),
            socket: p.haproxy.socket.clone(),
            reload: p.haproxy.reload.clone(),
            listen: p.listen.clone(),
            binary: managed::find("haproxy")?,
            global: vec![],
            https: p.https_listen(),
            tls: TlsFiles {
                dir: config.state_dir.join("haproxy-tls"),
            },
        })),
    })
}
