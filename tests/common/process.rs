//! Processes the tests start and stop: `teal daemon` runs (a clean stop
//! on drop, as systemd does) and the proxies a daemon leaves behind.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// A `teal daemon` process, killed on drop.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    /// A clean stop, as `systemctl stop` does: SIGTERM, so teal stops the
    /// proxy it owns; SIGKILL only if it does not end in 20 s.
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGKILL to every process group of a proxy started in `dir`.
pub fn kill_proxies(dir: &Path) {
    for (pid, _) in processes_of(dir) {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// `kill -9`: no handler runs, nothing is cleaned up.
    pub fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// SIGTERM, then waits (at most 30 s) for a clean exit; its status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "teal did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Every process whose command line names `dir` (a proxy master started
/// there) or that is in the process group of one: workers included.
pub fn processes_of(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.display().to_string();
    let all: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.first() == Some(&"Z") {
                return None;
            }
            let pgid: u32 = f.get(2)?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            Some((pid, pgid, cmd))
        })
        .collect();
    let groups: Vec<u32> = all
        .iter()
        .filter(|(_, _, c)| c.contains(&needle))
        .map(|(_, g, _)| *g)
        .collect();
    all.into_iter()
        .filter(|(_, g, _)| groups.contains(g))
        .map(|(p, _, c)| (p, c))
        .collect()
}

/// CPU ticks (user + system, in USER_HZ) and RSS (KiB) of a process.
pub fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, kib)
}
