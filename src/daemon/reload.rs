//! SIGHUP: the host config read again and the drivers reconnected,
//! keeping what only a restart may change.

use tracing::{error, info, warn};

use super::Daemon;
use crate::config::HostConfig;
use crate::reconcile::Host;

/// Reads the host config (where `teal daemon` was told to).
pub type Loader = dyn Fn() -> anyhow::Result<HostConfig> + Sync;

/// Reads the host config again and reconnects the drivers. A new config
/// that does not load, or whose drivers cannot connect, is reported and
/// the running one kept. The state dir and the status API address stay
/// as they were until a restart. Returns whether `daemon` now runs a new
/// config.
pub async fn reload(daemon: &mut Daemon, load: &Loader) -> bool {
    let config = match load() {
        Ok(c) => c,
        Err(e) => {
            error!(error = %format!("{e:#}"), "SIGHUP: the host config does not load; keeping the running one");
            return false;
        }
    };
    if config == *daemon.config() {
        info!("SIGHUP: host config unchanged");
        return false;
    }
    let (config, kept) = keep_restart_only(daemon.config(), config);
    for k in kept {
        warn!("SIGHUP: {k}");
    }
    match Host::connect(config).await {
        Ok(host) => {
            info!(repo = %host.config.repo.url, branch = %host.config.repo.branch, "SIGHUP: host config reloaded");
            daemon.replace_host(host.with_watch());
            true
        }
        Err(e) => {
            error!(error = %e, "SIGHUP: cannot use the new host config; keeping the running one");
            false
        }
    }
}

/// `new`, with what is set up once at start taken back from `old`, and
/// what changes only on a restart, said.
fn keep_restart_only(old: &HostConfig, mut new: HostConfig) -> (HostConfig, Vec<&'static str>) {
    let mut kept = vec![];
    if new.state_dir != old.state_dir || new.listen != old.listen || new.proxy.managed || old.proxy.managed {
        kept.push("state_dir, listen and managed proxies change only on restart");
        new.state_dir = old.state_dir.clone();
        new.listen = old.listen.clone();
        if new.proxy.managed || old.proxy.managed {
            new.proxy = old.proxy.clone();
        }
    }
    // The notifier and its secrets are set up once, at start.
    if new.notify != old.notify {
        kept.push("notify targets change only on restart");
        new.notify = old.notify.clone();
    }
    // The status API is set up once too.
    if new.host.names != old.host.names || new.api != old.api {
        kept.push("host.names and api change only on restart");
    }
    if new.host.name != old.host.name {
        kept.push("notices keep the old host name until a restart");
    }
    (new, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> HostConfig {
        HostConfig::parse("daemon.yaml", &format!("{yaml}proxy: {{kind: nginx}}\n")).unwrap()
    }

    #[test]
    fn a_reload_keeps_what_only_a_restart_changes_and_says_so() {
        let old = config("repo: {url: /srv/a}\nstate_dir: /var/lib/a\nlisten: 127.0.0.1:9470\n");
        let new = config("repo: {url: /srv/b, poll: 1m}\nstate_dir: /var/lib/b\nlisten: 127.0.0.1:9999\n");
        let (merged, kept) = keep_restart_only(&old, new.clone());
        assert_eq!(merged.repo, new.repo, "the repo is read again");
        assert_eq!(
            (merged.state_dir, merged.listen),
            (old.state_dir.clone(), old.listen.clone())
        );
        assert_eq!(kept, ["state_dir, listen and managed proxies change only on restart"]);

        let (merged, kept) = keep_restart_only(
            &old,
            config("repo: {url: /srv/b}\nstate_dir: /var/lib/a\nlisten: 127.0.0.1:9470\n"),
        );
        assert_eq!(merged.repo.url, "/srv/b");
        assert!(kept.is_empty(), "{kept:?}");
    }
}
