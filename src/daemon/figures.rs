//! Health for people, beyond what the planner needs: how many running
//! replicas of each color pass one probe of the commit's health check
//! now. Probed for the status document and the dashboard after a pass
//! that changed something, and at most every `PROBE_EVERY` otherwise (a
//! host of 500 services would else probe 500 replicas each poll);
//! nothing decides on it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::status::Shared;
use crate::drivers::runtime::Runtime;
use crate::health::{self, Target};
use crate::plan::Observed;
use crate::spec::{Color, Desired, Health, PerColor};

/// How often an idle host probes its replicas for the status.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// Whether a pass probes: after a change, or when the last round is
/// `PROBE_EVERY` old (or there was none).
pub fn probe_due(changed: bool, last: Option<Instant>, now: Instant) -> bool {
    changed || last.is_none_or(|t| now.duration_since(t) >= PROBE_EVERY)
}

/// The replicas of one color of one service to probe.
struct Job {
    service: String,
    color: Color,
    health: Health,
    port: u16,
    targets: Vec<Target>,
}

/// Starts probing the running replicas in the background (the loop does
/// not wait for slow apps); the counts land in the status when done. A
/// probe round still in flight is not doubled.
pub fn probe_health(shared: &Shared, docker: &Runtime, desired: &Desired, observed: &Observed) {
    if shared.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    let jobs = jobs(desired, observed);
    let (shared, docker) = (shared.clone(), docker.clone());
    tokio::spawn(async move {
        let _done = Reset(shared.probing.clone());
        let healthy = probe(&jobs, &docker).await;
        let mut status = shared.status.write().expect("status lock");
        for (name, counts) in healthy {
            if let Some(s) = status.services.get_mut(&name) {
                s.healthy = counts;
            }
        }
    });
}

/// Clears the in-flight flag when the round ends, also by a panic.
struct Reset(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Reset {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Every running replica with an address, per service and color, with the
/// check of the service's commit.
fn jobs(desired: &Desired, observed: &Observed) -> Vec<Job> {
    let mut out = vec![];
    for (name, obs) in &observed.services {
        let Some(svc) = desired.services.get(name) else {
            continue;
        };
        for color in Color::ALL {
            let targets = obs
                .containers
                .get(color)
                .iter()
                .filter(|c| c.running)
                .filter_map(|c| {
                    c.addr.map(|addr| Target {
                        container: c.name.clone(),
                        addr,
                        port: c.port,
                    })
                })
                .collect();
            out.push(Job {
                service: name.clone(),
                color,
                health: svc.health.clone(),
                port: svc.port,
                targets,
            });
        }
    }
    out
}

/// Replicas that passed one probe, per service and color (0 for a color
/// with none running).
async fn probe(jobs: &[Job], docker: &Runtime) -> BTreeMap<String, PerColor<u32>> {
    let client = &health::http_client();
    let runs = jobs.iter().flat_map(|j| {
        j.targets.iter().map(move |t| {
            let h = &j.health;
            async move {
                let once = health::probe_once(&h.probe, j.port, t, h.timeout, docker, client);
                let ok = matches!(tokio::time::timeout(h.timeout, once).await, Ok(Ok(())));
                (j, ok)
            }
        })
    });
    let results = futures_util::future::join_all(runs).await;
    let mut out: BTreeMap<String, PerColor<u32>> =
        jobs.iter().map(|j| (j.service.clone(), PerColor::default())).collect();
    for (j, ok) in results {
        if ok {
            *out.entry(j.service.clone()).or_default().get_mut(j.color) += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_host_probes_on_its_own_slower_clock_and_a_change_probes_at_once() {
        let t0 = Instant::now();
        assert!(probe_due(false, None, t0), "the first pass probes");
        assert!(!probe_due(false, Some(t0), t0 + Duration::from_secs(5)));
        assert!(probe_due(true, Some(t0), t0 + Duration::from_secs(5)));
        assert!(probe_due(false, Some(t0), t0 + PROBE_EVERY));
    }
}
