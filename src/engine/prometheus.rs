//! Evaluates a rollout's Prometheus query in the background, now and each
//! `interval`, so a slow or silent Prometheus (up to its 5 s timeout)
//! never delays the 250 ms ticks that judge the proxy's counters. Each
//! tick takes the newest reading once; the pure judgement does the rest.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::drivers::prometheus;
use crate::spec::{Analysis, Color};
use crate::strategy::PromReading;

/// A running evaluation; it stops when dropped.
pub(super) struct PromPoller {
    latest: Arc<Mutex<Option<PromReading>>>,
    task: JoinHandle<()>,
}

impl PromPoller {
    /// Starts evaluating the query of `analysis.prometheus`, rendered for
    /// `service`, its new `color` and the `commit` rolled out; `None`
    /// without one.
    pub(super) fn start(analysis: Option<&Analysis>, service: &str, color: Color, commit: &str) -> Option<PromPoller> {
        let check = analysis?.prometheus.clone()?;
        let query = check.render(service, color, commit);
        let latest = Arc::new(Mutex::new(None));
        let slot = latest.clone();
        let service = service.to_string();
        let task = tokio::spawn(async move {
            let client = prometheus::client();
            let mut every = tokio::time::interval(check.interval);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut was_ok = None;
            loop {
                every.tick().await;
                let at_ms = super::clock::now_ms();
                let value = prometheus::query(&client, &check.url, &query).await;
                // One log line per change between a value and none.
                match (&value, was_ok) {
                    (Ok(v), Some(false) | None) => {
                        info!(service = %service, color = %color, value = %v, query = %query, "prometheus: value")
                    }
                    (Err(e), Some(true) | None) => {
                        warn!(service = %service, color = %color, error = %e, query = %query, "prometheus: no value")
                    }
                    _ => {}
                }
                was_ok = Some(value.is_ok());
                let reading = PromReading {
                    at_ms,
                    value: value.map_err(|e| e.to_string()),
                };
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading);
            }
        });
        Some(PromPoller { latest, task })
    }

    /// The newest reading not taken yet.
    pub(super) fn take(&self) -> Option<PromReading> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Drop for PromPoller {
    fn drop(&mut self) {
        self.task.abort();
    }
}
