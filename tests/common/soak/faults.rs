//! The faults the soak injects, one at a time, each undone by the time
//! `inject` returns (teal restarted, the repo back, the receiver up).

use std::time::{Duration, Instant};

use super::Soak;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 teal, restarted after 1 s (as systemd's `Restart=always`).
    Kill9Teal,
    /// SIGTERM teal (a clean stop, which stops the proxy it owns), restarted after 1 s.
    TermTeal,
    /// kill -9 the managed proxy's master: teal must start it again.
    Kill9Proxy,
    /// `docker kill` one replica of a random service.
    KillReplica,
    /// The git remote moved away for a while.
    GitDown,
    /// The webhook receiver down for a while.
    WebhookDown,
    /// dockerd stopped and started again (live-restore: the containers
    /// run on); only on the soak's own engine.
    RestartDocker,
    /// dockerd restarted without live-restore: every container stops with
    /// it and starts again by its restart policy (perhaps at another
    /// address); only on the soak's own engine.
    RestartDockerCold,
    /// `state_dir` (a small tmpfs) filled to 100 % for a while.
    StateDirFull,
    /// teal's wall clock stepped an hour forward (libfaketime), for good.
    ClockStep,
}

impl Fault {
    pub const ALL: [Fault; 10] = [
        Fault::Kill9Teal,
        Fault::TermTeal,
        Fault::Kill9Proxy,
        Fault::KillReplica,
        Fault::GitDown,
        Fault::WebhookDown,
        Fault::RestartDocker,
        Fault::RestartDockerCold,
        Fault::StateDirFull,
        Fault::ClockStep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill9Teal => "kill -9 teal",
            Fault::TermTeal => "SIGTERM teal",
            Fault::Kill9Proxy => "kill -9 proxy",
            Fault::KillReplica => "kill a replica",
            Fault::GitDown => "git remote down",
            Fault::WebhookDown => "webhook down",
            Fault::RestartDocker => "dockerd restart",
            Fault::RestartDockerCold => "dockerd restart, no live-restore",
            Fault::StateDirFull => "state_dir full",
            Fault::ClockStep => "clock stepped 1h forward",
        }
    }

    /// Whether it needs the soak's own dockerd.
    pub fn needs_own_engine(self) -> bool {
        matches!(self, Fault::RestartDocker | Fault::RestartDockerCold)
    }

    /// Whether requests may fail while it lasts: the proxy is down (killed,
    /// or stopped with the teal that owns it), a serving replica died
    /// under in-flight requests, or every container stopped with dockerd.
    /// The others must cost no request.
    pub fn may_fail_requests(self) -> bool {
        matches!(
            self,
            Fault::TermTeal | Fault::Kill9Proxy | Fault::KillReplica | Fault::RestartDockerCold
        )
    }
}

impl Soak {
    /// Injects `f` and undoes it; `Some(recovery)` for the faults that
    /// take the proxy down: the time until it served again.
    pub async fn inject(&mut self, f: Fault) -> Option<Duration> {
        self.load.windows.set(f.name());
        match f {
            Fault::Kill9Teal => {
                self.daemon.kill_9();
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.daemon = self.start_daemon();
                None
            }
            Fault::TermTeal => {
                let down = Instant::now();
                let old = self.host.proxy_pid();
                let status = self.daemon.terminate();
                if !status.success() {
                    self.violation(format!("SIGTERM: teal exited with {status}"));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.daemon = self.start_daemon();
                Some(self.until_proxy_serves(down, old).await)
            }
            Fault::Kill9Proxy => {
                let down = Instant::now();
                let old = self.host.proxy_pid();
                match old {
                    // SAFETY: kill(2) with plain integers.
                    Some(pid) => unsafe {
                        libc::kill(pid as i32, libc::SIGKILL);
                    },
                    None => self.violation("no managed proxy pid recorded".into()),
                }
                Some(self.until_proxy_serves(down, old).await)
            }
            Fault::KillReplica => {
                let svc = self.rng.below(self.services.len());
                let name = &self.services[svc].name;
                let color = self.services[svc].good.active;
                let replica = self.rng.below(self.services[svc].good.replicas as usize);
                let container = format!("teal-{name}-{color}-{replica}");
                let out = self.docker(&["kill", &container]);
                if !out.status.success() {
                    self.violation(format!(
                        "docker kill {container}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                None
            }
            Fault::GitDown => {
                let away = self.host.bare.with_extension("away");
                std::fs::rename(&self.host.bare, &away).unwrap();
                tokio::time::sleep(self.cfg.outage).await;
                std::fs::rename(&away, &self.host.bare).unwrap();
                None
            }
            Fault::WebhookDown => {
                self.receiver.down();
                tokio::time::sleep(self.cfg.outage).await;
                self.receiver.up().await;
                None
            }
            Fault::StateDirFull => {
                let fill = self.state_fs.fill();
                tokio::time::sleep(self.cfg.full_for).await;
                std::fs::remove_file(fill).unwrap();
                None
            }
            Fault::ClockStep => {
                self.clock_hours += 1;
                self.clock.set(&format!("+{}h", self.clock_hours));
                None
            }
            Fault::RestartDocker | Fault::RestartDockerCold => {
                let engine = self.engine.as_mut().expect("only on the soak's own engine");
                engine.stop();
                tokio::time::sleep(Duration::from_secs(1)).await;
                let restarted = match f {
                    Fault::RestartDockerCold => engine.restart_cold(),
                    _ => engine.restart(),
                };
                if let Err(log) = restarted {
                    let tail: String = log.lines().rev().take(20).collect::<Vec<_>>().join(" / ");
                    self.violation(format!("dockerd did not start again: {tail}"));
                }
                None
            }
        }
    }

    /// Polls until a new proxy runs (not `old`: a killed master's workers
    /// serve on until teal starts a new one and ends them) and a loaded
    /// service answers through it; the time since `down`.
    async fn until_proxy_serves(&mut self, down: Instant, old: Option<u32>) -> Duration {
        let host = self.services[0].good.host.clone();
        while down.elapsed() < self.cfg.bound {
            let new = self.host.proxy_pid().is_some_and(|p| Some(p) != old);
            if !new {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            if let Ok((200, _)) = super::super::try_get_via(&self.host.listen, &host, "/").await {
                let took = down.elapsed();
                // Requests fail only until now.
                self.load.windows.set("no fault");
                return took;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.violation(format!("the proxy did not serve again within {:?}", self.cfg.bound));
        down.elapsed()
    }
}
