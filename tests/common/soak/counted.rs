//! The proxy's own count of the responses each color of a service gave
//! (HAProxy's per-server stats, the nginx balancer's counters), followed
//! for the whole soak: the check that no request reached a color whose
//! checks had not passed, from the proxy's side, for every service and
//! every client (the load's own check sees only its answers).
//!
//! A proxy's counters start from zero when it restarts (a killed proxy, a
//! reload); the follower adds what each sample grew by, so a restart loses
//! at most what came between the last sample and the kill.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use teal::drivers::haproxy::{Haproxy, HaproxyConfig, TlsFiles};
use teal::drivers::nginx::balancer::Balancer;
use teal::spec::Color;

use super::Soak;

/// (service, color) -> responses.
pub type Counts = BTreeMap<(String, String), u64>;

#[derive(Default)]
pub struct Totals {
    last: Counts,
    pub sum: Counts,
}

impl Totals {
    pub fn add(&mut self, now: Counts) {
        for (key, n) in &now {
            let before = self.last.get(key).copied().unwrap_or(0);
            // Fewer than last time: the counters started again.
            let grew = if *n >= before { n - before } else { *n };
            *self.sum.entry(key.clone()).or_default() += grew;
        }
        // A key gone (a reload that has not counted it yet) starts at 0.
        self.last = now;
    }
}

pub struct Counted {
    reader: Arc<Reader>,
    totals: Arc<Mutex<Totals>>,
    task: tokio::task::JoinHandle<()>,
}

impl Counted {
    /// Follows the counters of the managed proxy in `dir`, every 200 ms.
    pub fn start(kind: &'static str, dir: &Path) -> Counted {
        let totals = Arc::new(Mutex::new(Totals::default()));
        let reader = Arc::new(Reader::of(kind, dir));
        let (t, r) = (totals.clone(), reader.clone());
        let task = tokio::spawn(async move {
            loop {
                // While the proxy is down there is nothing to count.
                if let Ok(now) = r.read().await {
                    t.lock().unwrap().add(now);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Counted { reader, totals, task }
    }

    /// The responses of each service's colors since the soak began,
    /// counted from a fresh sample.
    pub async fn totals(&self) -> Result<Counts, String> {
        let now = self.reader.read().await?;
        let mut t = self.totals.lock().unwrap();
        t.add(now);
        Ok(t.sum.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Soak {
    /// After a bad commit's step (the commit, its revert, both converged):
    /// the proxy counted no response from `svc`'s idle color since
    /// `before`, the totals read before the commit was pushed.
    pub(super) async fn check_idle_counted(&mut self, svc: usize, before: Result<Counts, String>) {
        let good = &self.services[svc].good;
        let (name, idle, active) = (self.services[svc].name.clone(), good.idle(), good.active);
        let (before, after) = match (before, self.counted.totals().await) {
            (Ok(b), Ok(a)) => (b, a),
            (Err(e), _) | (_, Err(e)) => {
                self.violation(format!("the proxy's counters could not be read: {e}"));
                return;
            }
        };
        let grew = |color: &str| {
            let key = (name.clone(), color.to_string());
            after.get(&key).copied().unwrap_or(0) - before.get(&key).copied().unwrap_or(0)
        };
        let (on_idle, on_active) = (grew(idle), grew(active));
        self.figures.idle_windows += 1;
        self.figures.idle_counted += on_idle;
        self.figures.active_counted += on_active;
        if on_idle > 0 {
            let scene = self.scene(&name).await;
            self.violation(format!(
                "the proxy counted {on_idle} responses from {name}'s idle color ({idle}) during a bad commit, which must leave traffic where it was\n{scene}"
            ));
        }
        // The soak's own checks went through the proxy to the active
        // color: counters that saw none of them would make this check blind.
        if on_active == 0 {
            self.violation(format!(
                "the proxy counted no response from {name}'s active color ({active}) over a step whose checks requested it"
            ));
        }
    }
}

/// The proxy's counters, read as teal's analysis reads them: HAProxy's
/// `show stat` by the backends its file records, the nginx balancer's
/// `/counters`.
enum Reader {
    Haproxy(Box<Haproxy>),
    Nginx(Balancer),
}

impl Reader {
    fn of(kind: &str, dir: &Path) -> Reader {
        match kind {
            "haproxy" => Reader::Haproxy(Box::new(Haproxy::new(HaproxyConfig {
                config: dir.join("teal.cfg"),
                socket: dir.join("admin.sock"),
                reload: vec![],
                listen: String::new(),
                binary: "haproxy".into(),
                global: vec![],
                https: String::new(),
                tls: TlsFiles { dir: dir.join("tls") },
            }))),
            _ => Reader::Nginx(Balancer::in_dir(dir)),
        }
    }

    /// Totals per service and color.
    async fn read(&self) -> Result<Counts, String> {
        let counters = match self {
            Reader::Haproxy(h) => h.counters().await,
            Reader::Nginx(b) => b.counters().await,
        }
        .map_err(|e| e.to_string())?;
        let mut out = Counts::new();
        for (service, colors) in counters {
            for color in Color::ALL {
                out.insert((service.clone(), color.to_string()), colors.get(color).total());
            }
        }
        Ok(out)
    }
}
