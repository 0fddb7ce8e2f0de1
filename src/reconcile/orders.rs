//! ACME orders in the background, one at a time per service: a pass asks
//! for a certificate and goes on at once (the route serves plain HTTP, or
//! its old certificate, meanwhile); the order runs in a task, answers its
//! HTTP-01 challenges through the proxy teal runs, and stores what it got
//! in `state_dir/acme/certs` (0600, atomic), where the next pass finds and
//! installs it. A failed order waits (1 min, doubling to 6 h) before it is
//! tried again, so a CA that is down or a name that does not resolve here
//! costs one order per wait, never a deploy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::acme::AcmeConfig;
use crate::drivers::acme::{self, AcmeSettings, Challenges};
use crate::drivers::proxy::ProxyDriver;
use crate::drivers::tls::{check, Material, Store};

/// The first wait after a failed order; each failure doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(60);
/// The longest wait between two orders of one certificate.
const MAX_WAIT: Duration = Duration::from_secs(6 * 3600);
/// Bounds each call to the CA, and separately the polling of one order.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where a service's order stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderView {
    /// An order is running.
    Running,
    /// The last order failed; the next is not tried before `retry_at`.
    Waiting { error: String, retry_at: i64 },
}

#[derive(Debug, Default)]
struct State {
    names: Vec<String>,
    running: bool,
    failures: u32,
    error: Option<String>,
    retry_at: i64,
}

type Wake = Arc<dyn Fn() + Send + Sync>;

/// The orders of one host.
#[derive(Clone)]
pub struct Orders {
    settings: AcmeSettings,
    renew_before: Duration,
    store: Arc<Store>,
    proxy: Arc<ProxyDriver>,
    state: Arc<Mutex<BTreeMap<String, State>>>,
    /// Called when an order ends (the daemon runs a pass to install it).
    wake: Arc<Mutex<Option<Wake>>>,
}

impl Orders {
    /// Orders from `config` (Let's Encrypt by default), with the account
    /// and certificates under `state_dir/acme`.
    pub fn new(config: Option<&AcmeConfig>, state_dir: &std::path::Path, proxy: Arc<ProxyDriver>) -> Orders {
        let config = config.cloned().unwrap_or_default();
        let dir = state_dir.join("acme");
        Orders {
            settings: AcmeSettings {
                directory: config.directory,
                email: config.email,
                ca_file: config.ca_file,
                dir: dir.clone(),
                timeout: TIMEOUT,
            },
            renew_before: config.renew_before,
            store: Arc::new(Store::new(dir.join("certs"))),
            proxy,
            state: Arc::default(),
            wake: Arc::default(),
        }
    }

    /// `wake` is called each time an order ends.
    pub fn on_done(&self, wake: impl Fn() + Send + Sync + 'static) {
        *self.wake.lock().expect("wake lock") = Some(Arc::new(wake));
    }

    /// How long before expiry a certificate is renewed.
    pub fn renew_before(&self) -> Duration {
        self.renew_before
    }

    /// The certificate stored for `service`, expired or not.
    pub async fn stored(&self, service: &str) -> Result<Option<Material>, String> {
        let (store, name) = (self.store.clone(), service.to_string());
        tokio::task::spawn_blocking(move || store.get(&name, None))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Starts an order of `names` for `service` unless one runs or the
    /// last failure's wait has not passed (new names start at once).
    pub fn request(&self, service: &str, names: &[String], now: i64) -> OrderView {
        let mut all = self.state.lock().expect("orders lock");
        let s = all.entry(service.to_string()).or_default();
        if s.names != names {
            *s = State {
                names: names.to_vec(),
                running: s.running,
                ..State::default()
            };
        }
        if s.running {
            return OrderView::Running;
        }
        if let Some(error) = s.error.clone().filter(|_| now < s.retry_at) {
            return OrderView::Waiting {
                error,
                retry_at: s.retry_at,
            };
        }
        s.running = true;
        tracing::info!(service, names = %names.join(" "), directory = %self.settings.directory, "ordering a certificate");
        tokio::spawn(self.clone().run(service.to_string(), names.to_vec()));
        OrderView::Running
    }

    /// Forgets the orders of services that no longer ask for one (a
    /// running order still ends, and its certificate is kept).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.state
            .lock()
            .expect("orders lock")
            .retain(|k, s| s.running || keep(k));
    }

    /// Whether any order is running.
    pub fn busy(&self) -> bool {
        self.state.lock().expect("orders lock").values().any(|s| s.running)
    }

    /// Waits (at most `bound`) until no order runs: `teal apply` ends
    /// only once its orders have.
    pub async fn settle(&self, bound: Duration) {
        let until = tokio::time::Instant::now() + bound;
        while self.busy() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn run(self, service: String, names: Vec<String>) {
        let challenges = ProxyChallenges(self.proxy.clone());
        let got = match acme::issue(&self.settings, &names, &challenges).await {
            Ok(issued) => self.keep(&service, &names, issued).await,
            Err(e) => Err(e.to_string()),
        };
        let now = unix_now();
        {
            let mut all = self.state.lock().expect("orders lock");
            let s = all.entry(service.clone()).or_default();
            s.running = false;
            match &got {
                Ok(()) => {
                    s.failures = 0;
                    s.error = None;
                }
                Err(e) => {
                    s.failures += 1;
                    s.error = Some(e.clone());
                    s.retry_at = now + wait(s.failures).as_secs() as i64;
                }
            }
        }
        match got {
            Ok(()) => tracing::info!(service = %service, "certificate issued"),
            Err(e) => tracing::warn!(service = %service, error = %e, "certificate order failed"),
        }
        let wake = self.wake.lock().expect("wake lock").clone();
        if let Some(w) = wake {
            w();
        }
    }

    /// Checks what the CA sent (chain, key, names, dates) and stores it.
    async fn keep(&self, service: &str, names: &[String], issued: acme::Issued) -> Result<(), String> {
        let (store, service, names) = (self.store.clone(), service.to_string(), names.to_vec());
        tokio::task::spawn_blocking(move || {
            let origin = format!("the ACME order for {}", names.join(", "));
            let m =
                check(&issued.chain_pem, &issued.key_pem, &names, unix_now(), &origin).map_err(|e| e.to_string())?;
            store.put(&service, &m).map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The wait after `failures` failed orders in a row.
fn wait(failures: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_WAIT)
}

/// HTTP-01 answers served by the proxy teal runs.
struct ProxyChallenges(Arc<ProxyDriver>);

impl Challenges for ProxyChallenges {
    fn publish<'a>(&'a self, token: &'a str, key_authorization: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.0
                .acme_challenge(token, Some(key_authorization))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn withdraw<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.acme_challenge(token, None).await.map_err(|e| e.to_string()) })
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_a_minute_to_six_hours() {
        let w: Vec<u64> = [1, 2, 3, 10, 40].iter().map(|f| wait(*f).as_secs()).collect();
        assert_eq!(w, vec![60, 120, 240, 6 * 3600, 6 * 3600]);
    }
}
