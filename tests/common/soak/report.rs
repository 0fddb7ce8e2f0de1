//! The soak's figures: counted as it runs, judged and printed at the end
//! (the text BENCHMARKS.md records).

use std::collections::BTreeMap;
use std::time::Duration;

use super::faults::Fault;
use super::model::Action;
use super::traffic::{Count, Load};
use super::{Config, Soak};

#[derive(Debug, Default)]
pub struct Figures {
    pub actions: BTreeMap<Action, u32>,
    pub faults: BTreeMap<Fault, u32>,
    /// Push (or end of fault) to every service converged, per step.
    pub converge: Vec<Duration>,
    /// Push of a bad commit to the host saying why while serving the last good.
    pub held: Vec<Duration>,
    /// Proxy killed (or stopped with teal) to serving again.
    pub recover: Vec<Duration>,
    pub steps: u32,
    pub event_lines: usize,
    pub webhooks: u64,
    /// Tasks Docker lost (a dockerd stopped mid-start) that teal ended.
    pub lost_tasks: usize,
    pub requests: BTreeMap<&'static str, Count>,
    /// Steps of bad commits (but failing canaries) whose idle color the
    /// proxy's counters were read for, and the responses they counted
    /// there (must be 0).
    pub idle_windows: u32,
    pub idle_counted: u64,
    /// ... and from the active color over those steps (more than 0, or
    /// the counters are not read right).
    pub active_counted: u64,
}

/// The outcome: the figures printed, and every invariant broken.
pub struct Report {
    pub text: String,
    pub violations: Vec<String>,
    pub seed: u64,
}

impl Soak {
    pub(super) async fn finish(mut self) -> Report {
        let load = std::mem::replace(&mut self.load, Load::start(&self.host.listen, &[], 0));
        self.figures.requests = load.stop().await;
        self.figures.webhooks = self.receiver.got.load(std::sync::atomic::Ordering::Relaxed);
        self.figures.lost_tasks = self.host.log_text().matches("ended the task Docker lost").count();
        for (window, c) in &self.figures.requests.clone() {
            if c.unchecked > 0 {
                self.violations.push(format!(
                    "{} answers from a version whose checks never passed, with {window} (last: {})",
                    c.unchecked,
                    c.last_failure.as_deref().unwrap_or("")
                ));
            }
            let may = Fault::ALL.iter().any(|f| f.name() == *window && f.may_fail_requests());
            if c.failed > 0 && !may {
                self.violations.push(format!(
                    "{} failed requests with {window} (last: {})",
                    c.failed,
                    c.last_failure.as_deref().unwrap_or("")
                ));
            }
        }
        let text = render(&self.cfg, &self.figures, &self.violations);
        println!("{text}");
        if !self.violations.is_empty() {
            let kept = std::env::temp_dir().join(format!("teal-soak-{}-{}.log", self.cfg.kind, self.cfg.seed));
            let _ = std::fs::copy(&self.host.log, &kept);
            let events = kept.with_extension("events.jsonl");
            let _ = std::fs::copy(self.host.state.join("events.jsonl"), &events);
            eprintln!(
                "soak: the daemon log is kept in {}, its event log in {}",
                kept.display(),
                events.display()
            );
        }
        Report {
            text,
            violations: self.violations.clone(),
            seed: self.cfg.seed,
        }
    }
}

fn secs(d: &[Duration]) -> String {
    if d.is_empty() {
        return "-".into();
    }
    let mut v: Vec<f64> = d.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.1} s, max {:.1} s (n={})",
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    )
}

/// The figures, as printed and recorded in BENCHMARKS.md.
pub fn render(cfg: &Config, f: &Figures, violations: &[String]) -> String {
    let mut s = format!(
        "fault soak, {}: {} services ({} loaded, {} keep-alive connections each), {:?}, seed {}\n",
        cfg.kind, cfg.services, cfg.loaded, cfg.conns, cfg.duration, cfg.seed
    );
    let list = |m: Vec<(&str, u32)>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    s += &format!(
        "  steps {}: {}\n",
        f.steps,
        list(f.actions.iter().map(|(a, n)| (a.name(), *n)).collect())
    );
    s += &format!(
        "  faults: {}\n",
        list(f.faults.iter().map(|(a, n)| (a.name(), *n)).collect())
    );
    s += &format!(
        "  converged after each step: {} (bound {:?})\n",
        secs(&f.converge),
        cfg.bound
    );
    s += &format!("  bad commit held with a reason: {}\n", secs(&f.held));
    s += &format!(
        "  proxy down (killed, or stopped with teal) to serving: {}\n",
        secs(&f.recover)
    );
    for (window, c) in &f.requests {
        s += &format!(
            "  requests with {window}: {} ok, {} failed, {} intended 500s of failing canaries, {} from an unchecked color{}\n",
            c.ok,
            c.failed,
            c.intended,
            c.unchecked,
            c.last_failure
                .as_ref()
                .map(|l| format!(" (last failure: {l})"))
                .unwrap_or_default()
        );
    }
    s += &format!(
        "  responses the proxy counted over {} steps of bad commits: {} from the idle color, {} from the active one\n",
        f.idle_windows, f.idle_counted, f.active_counted
    );
    s += &format!(
        "  event log: {} lines, all well-formed and none lost: {}; webhooks received: {}\n",
        f.event_lines,
        !violations
            .iter()
            .any(|v| v.contains("not an event") || v.contains("torn") || v.contains("no deploy line")),
        f.webhooks
    );
    s += &format!(
        "  tasks Docker lost in a restart mid-start, ended by teal: {}\n",
        f.lost_tasks
    );
    s += &format!("  invariants broken: {}\n", violations.len());
    for v in violations {
        s += &format!("    {v}\n");
    }
    s
}
