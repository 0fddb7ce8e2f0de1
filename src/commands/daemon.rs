//! `teal daemon`: the long-running reconciler, in the foreground (systemd
//! runs it as a `Type=notify` service).

use anyhow::Context;
use tokio::sync::watch;
use tracing::info;

use super::host::HostArgs;
use crate::daemon::lock::StateLock;
use crate::daemon::scheduler::intake::Triggers;
use crate::daemon::systemd;
use crate::daemon::Daemon;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
    /// Log line format on stderr: text (`key=value`, for people and
    /// journald) or json (one object per line, for log shippers).
    #[arg(long = "log-format", value_enum, default_value_t = crate::logs::LogFormat::Text, value_name = "FORMAT")]
    pub log_format: crate::logs::LogFormat,
}

pub async fn run(args: &Args) -> anyhow::Result<u8> {
    // Before anything is started: a SIGTERM while the proxy is being
    // started or adopted must still stop it, not kill teal and leave it.
    let shutdown = shutdown_on_signals();
    crate::daemon::rlimit::cap_malloc_arenas();
    let config = args.host.load()?;
    let _lock = StateLock::acquire(&config.state_dir)?;
    // Connections, Docker calls and fetches each hold a file descriptor:
    // the soft limit (often 1024) goes up to the hard one.
    let nofile = crate::daemon::rlimit::raise_nofile().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot raise the open-file limit: set LimitNOFILE= in the unit");
        crate::daemon::rlimit::nofile().unwrap_or(0)
    });
    info!(repo = %config.repo.url, branch = %config.repo.branch, poll = %crate::spec::duration::format(config.repo.poll), nofile, "teal daemon starting");
    if config.docker.mode == crate::config::DockerMode::Swarm {
        tracing::warn!("{}", crate::drivers::swarm::PUBLISHED_EVERYWHERE);
    }
    let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| {
        let holder = config
            .listen
            .parse()
            .ok()
            .and_then(|a| crate::drivers::managed::process::holder(&a))
            .map(|h| format!(" (held by {h})"))
            .unwrap_or_default();
        format!(
            "status API and dashboard: cannot listen on {}{holder}; set listen in the host config or --listen",
            config.listen
        )
    })?;
    let secret = match &config.repo.webhook_secret_file {
        Some(p) => Some(
            crate::secret::Secret::read(p, "repo.webhook_secret_file")?
                .expose()
                .as_bytes()
                .to_vec(),
        ),
        None => None,
    };
    let state_dir = config.state_dir.clone();
    let (triggers, intake) = crate::daemon::scheduler::intake::channel();
    let mut daemon = Daemon::new(config).await?;
    let hup = triggers.clone();
    tokio::spawn(async move {
        let mut signals =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("SIGHUP handler");
        while signals.recv().await.is_some() {
            info!("SIGHUP: reloading the host config after the pass in flight");
            hup.reload().await;
        }
    });
    serve_api(listener, &daemon, triggers, secret, state_dir, shutdown.clone())?;
    // A pass is at most a pull plus a health deadline per step; an hour
    // without any progress is a hang.
    systemd::spawn_watchdog(daemon.progress().clone(), std::time::Duration::from_secs(3600));
    let host_args = args.host.clone();
    let load = move || host_args.load();
    let ready = || {
        info!("first pass done");
        systemd::notify("READY=1");
    };
    crate::daemon::controller::run(&mut daemon, intake, Some(&load), shutdown, &ready).await;
    systemd::notify("STOPPING=1");
    daemon.stop_proxy();
    Ok(super::exit::OK)
}

/// Serves the status API and dashboard of `daemon` on `listener` in the
/// background, until `shutdown` turns true.
pub fn serve_api(
    listener: tokio::net::TcpListener,
    daemon: &Daemon,
    trigger: Triggers,
    secret: Option<Vec<u8>>,
    state_dir: std::path::PathBuf,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    info!(listen = %listener.local_addr()?, "status API: / (dashboard) /events /status /metrics /healthz /hooks/git");
    let api = crate::daemon::http::Api {
        shared: daemon.shared().clone(),
        trigger,
        secret,
        state_dir,
        token: daemon.status_token(),
        names: daemon.config().host.names.clone(),
        limits: daemon.config().api.clone(),
    };
    tokio::spawn(crate::daemon::http::serve(listener, api, async move {
        let _ = shutdown.wait_for(|v| *v).await;
    }));
    Ok(())
}

/// A flag that turns true on SIGTERM or Ctrl-C. The handlers are in
/// place when this returns (not when a task first runs), so a signal that
/// comes right after is never the default one that kills teal outright.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: finishing the pass in flight"),
            _ = int.recv() => info!("interrupted: finishing the pass in flight"),
        }
        let _ = tx.send(true);
    });
    rx
}
