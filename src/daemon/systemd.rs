//! systemd notifications (`Type=notify`): READY=1 after the first pass,
//! STOPPING=1 on shutdown, and WATCHDOG=1 pings while the loop makes
//! progress. No-ops when not started by systemd (`NOTIFY_SOCKET` unset).

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where systemd listens, if it does.
fn socket() -> Option<PathBuf> {
    std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from)
}

/// Sends one notification to `socket` (`@name` is an abstract socket).
pub fn send_to(socket: &std::path::Path, msg: &str) -> std::io::Result<()> {
    let s = UnixDatagram::unbound()?;
    let text = socket.to_string_lossy();
    if let Some(name) = text.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        s.send_to_addr(msg.as_bytes(), &addr)?;
    } else {
        s.send_to(msg.as_bytes(), socket)?;
    }
    Ok(())
}

/// Sends `msg` to systemd when running under it.
pub fn notify(msg: &str) {
    if let Some(s) = socket() {
        if let Err(e) = send_to(&s, msg) {
            tracing::warn!(error = %e, "cannot notify systemd");
        }
    }
}

/// Half the watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2))
}

/// When the loop last made progress, on the monotonic clock (ms since
/// the process's first look at it, plus one; 0: never). A step of the
/// wall clock (NTP after a long suspend, an operator's `date -s`) must
/// not look like a stall, nor hide one.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

impl Progress {
    pub fn touch(&self) {
        self.0.store(monotonic_ms() + 1, Ordering::Relaxed);
    }

    fn age(&self) -> Duration {
        match self.0.load(Ordering::Relaxed) {
            0 => Duration::MAX,
            at => Duration::from_millis((monotonic_ms() + 1).saturating_sub(at)),
        }
    }
}

/// Pings the watchdog while `progress` is younger than `stall`: a loop
/// stuck longer than any pass may take stops the pings, and systemd
/// restarts teal.
pub fn spawn_watchdog(progress: Progress, stall: Duration) {
    let Some(every) = watchdog_interval() else { return };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if progress.age() < stall {
                notify("WATCHDOG=1");
            } else {
                tracing::error!(stalled = %crate::spec::duration::format(progress.age()), "no progress: letting the systemd watchdog restart teal");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_is_aged_on_the_monotonic_clock_and_never_touched_is_a_stall() {
        let p = super::Progress::default();
        assert_eq!(p.age(), std::time::Duration::MAX);
        p.touch();
        assert!(p.age() < std::time::Duration::from_secs(5), "{:?}", p.age());
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(p.age() >= std::time::Duration::from_millis(30), "{:?}", p.age());
    }

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        super::send_to(&path, "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}

#[cfg(test)]
mod unit_file {
    /// The shipped unit keeps the notify protocol, restarts and hardening
    /// (see docs: `systemd-analyze security --offline=yes` scores it 2.2).
    #[test]
    fn the_unit_keeps_notify_restart_and_hardening() {
        let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/teal.service")).unwrap();
        for line in [
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "StateDirectory=teal",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "MemoryDenyWriteExecute=yes",
            // The filter forbids setrlimit: teal cannot raise it itself.
            "LimitNOFILE=",
        ] {
            assert!(
                unit.lines().any(|l| l.starts_with(line)),
                "systemd/teal.service lost `{line}`"
            );
        }
    }
}
