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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    kind: &'static str,
    dir: PathBuf,
    totals: Arc<Mutex<Totals>>,
    task: tokio::task::JoinHandle<()>,
}

impl Counted {
    /// Follows the counters of the managed proxy in `dir`, every 200 ms.
    pub fn start(kind: &'static str, dir: &Path) -> Counted {
        let totals = Arc::new(Mutex::new(Totals::default()));
        let (t, d) = (totals.clone(), dir.to_path_buf());
        let task = tokio::spawn(async move {
            loop {
                // While the proxy is down there is nothing to count.
                if let Ok(now) = read(kind, &d).await {
                    t.lock().unwrap().add(now);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Counted {
            kind,
            dir: dir.to_path_buf(),
            totals,
            task,
        }
    }

    /// The responses of each service's colors since the soak began,
    /// counted from a fresh sample.
    pub async fn totals(&self) -> Result<Counts, String> {
        let now = read(self.kind, &self.dir).await?;
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

async fn read(kind: &str, dir: &Path) -> Result<Counts, String> {
    match kind {
        "haproxy" => {
            let rt = teal::drivers::haproxy::Runtime::new(&dir.join("admin.sock"));
            let stat = rt.call(&["show stat".to_string()]).await.map_err(|e| e.to_string())?;
            Ok(haproxy_counts(&stat))
        }
        _ => nginx_counts(&dir.join("balancer.sock")).await,
    }
}

/// HAProxy's `show stat` CSV: every response of the servers `<color>_<n>`
/// of the backends `teal_<service>` (and its per-color backends), by class.
pub fn haproxy_counts(stat: &str) -> Counts {
    let mut lines = stat.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let at = |name: &str| header.iter().position(|h| *h == name);
    let classes: Vec<usize> = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"]
        .into_iter()
        .filter_map(at)
        .collect();
    let (Some(px), Some(sv)) = (at("pxname"), at("svname")) else {
        return Counts::new();
    };
    let mut out = Counts::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(backend), Some(server)) = (f.get(px), f.get(sv)) else {
            continue;
        };
        let Some(service) = backend.strip_prefix("teal_") else {
            continue;
        };
        let service = service
            .strip_suffix("_blue")
            .or_else(|| service.strip_suffix("_green"))
            .unwrap_or(service);
        let Some((color, _)) = server.split_once('_') else {
            continue;
        };
        if service.contains('_') || !matches!(color, "blue" | "green") {
            continue;
        }
        let n: u64 = classes.iter().filter_map(|i| f.get(*i)?.parse::<u64>().ok()).sum();
        *out.entry((service.to_string(), color.to_string())).or_default() += n;
    }
    out
}

/// The balancer's `GET /counters`: lines `<pool> <color> <class> <n>`.
async fn nginx_counts(socket: &Path) -> Result<Counts, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let talk = async {
        let mut s = tokio::net::UnixStream::connect(socket).await?;
        s.write_all(b"GET /counters HTTP/1.0\r\nHost: teal\r\n\r\n").await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok::<String, std::io::Error>(out)
    };
    let text = tokio::time::timeout(Duration::from_secs(5), talk)
        .await
        .map_err(|_| format!("{}: no answer within 5 s", socket.display()))?
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{}: {}", socket.display(), head.lines().next().unwrap_or("")));
    }
    let mut out = Counts::new();
    for line in body.lines() {
        if let [pool, color, _class, n] = line.split_whitespace().collect::<Vec<_>>()[..] {
            if let Ok(n) = n.parse::<u64>() {
                *out.entry((pool.to_string(), color.to_string())).or_default() += n;
            }
        }
    }
    Ok(out)
}
