//! `teal daemon`: the long-running reconciler, in the foreground (systemd
//! runs it as a `Type=notify` service).

use tokio::sync::watch;
use tracing::info;

use super::host::HostArgs;
use crate::daemon::lock::StateLock;
use crate::daemon::Daemon;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
}

pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let config = args.host.load()?;
    let _lock = StateLock::acquire(&config.state_dir)?;
    info!(repo = %config.repo.url, branch = %config.repo.branch, poll = %crate::spec::duration::format(config.repo.poll), "teal daemon starting");
    let mut daemon = Daemon::new(config).await?;
    let shutdown = shutdown_on_signals();
    daemon.run(shutdown, &|| info!("first pass done")).await;
    Ok(super::exit::OK)
}

/// A flag that turns true on SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: finishing the pass in flight"),
            _ = tokio::signal::ctrl_c() => info!("interrupted: finishing the pass in flight"),
        }
        let _ = tx.send(true);
    });
    rx
}
