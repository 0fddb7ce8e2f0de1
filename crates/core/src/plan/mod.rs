//! The planner: `plan(desired, observed) -> Plan`, a pure function (no IO, no
//! async). `diff`, `plan`, `apply` and `daemon` all go through it; they differ
//! only in where `Observed` comes from and whether the plan is executed.

pub mod observed;
mod refusal;
pub mod render;
mod service;
pub mod tasks;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_release;
#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_strategy;

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::spec::{Color, Desired, Health, PerColor, Service};

pub use observed::{Observed, ObservedContainer, ObservedService, RolledBack};

/// Everything a reconcile pass (or a merge) would do, service by service,
/// sorted by service name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// True when any service has a step or a refusal.
    pub fn has_changes(&self) -> bool {
        self.services.iter().any(|s| s.change != Change::None)
    }
}

/// What happens to one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServicePlan {
    pub service: String,
    pub change: Change,
    /// The color serving traffic before and after.
    pub active: Transition<Option<Color>>,
    /// The image of each color before and after (`None`: no containers).
    pub images: PerColor<Transition<Option<String>>>,
    /// The checks that must pass before traffic moves, when it moves.
    pub gate: Option<Health>,
    /// Ordered; empty when unchanged or refused.
    pub steps: Vec<Step>,
    /// Why nothing will be done for this service, when the change is unsafe.
    pub refused: Option<String>,
    /// The hosts of the fleet this service runs on (after the change; for a
    /// removed service, none is known). Empty without a fleet.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Secrets the change adds, changes or removes, by name only:
    /// `DATABASE_URL: changed (secret)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Nothing to do.
    None,
    /// A service that does not run yet.
    Create,
    /// A running service that changes.
    Update,
    /// A running service no longer in the repo.
    Delete,
    /// A change that would be unsafe; see `ServicePlan::refused`.
    Refused,
    /// The desired service was rolled back by analysis on this host and
    /// is not tried again until a commit changes it; see `refused`.
    #[serde(rename = "rolled_back")]
    RolledBack,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition<T> {
    pub from: T,
    pub to: T,
}

impl<T: PartialEq> Transition<T> {
    pub fn changed(&self) -> bool {
        self.from != self.to
    }
}

/// One idempotent step. The engine looks up the service's full desired spec
/// by name; steps carry only what a reader of the plan needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Make `image` present locally (pull only when missing).
    PullImage { color: Color, image: String },
    /// Ensure `replicas` running containers of `color` with spec `spec_hash`:
    /// create missing ones, replace ones with another spec, start stopped ones.
    StartColor {
        color: Color,
        image: String,
        replicas: u32,
        spec_hash: String,
    },
    /// Run the service's release command once in a container of `image`
    /// before `color` starts (once per commit: a recorded success is not
    /// run again); a failure stops the deploy before any traffic moves.
    Release { color: Color, image: String },
    /// Run the declared checks on every replica of `color`; fail the deploy
    /// (and stop here) past the deadline.
    WaitHealthy { color: Color },
    /// Point the proxy at `to`. `from` is `None` on a first deploy.
    Switch { from: Option<Color>, to: Color },
    /// Move traffic from `from` to `to` step by step, each step held (and
    /// judged by analysis); a failed judgement puts all traffic back.
    Canary {
        from: Color,
        to: Color,
        steps: Vec<crate::spec::CanaryStep>,
    },
    /// Replace the replicas of the live `color` in place, `max_surge` at a
    /// time: each new one is checked and takes traffic before an old one
    /// drains (strategy: rolling).
    Roll {
        color: Color,
        image: String,
        replicas: u32,
        max_surge: u32,
    },
    /// After the switch, judge `color` for `duration`; errors above the
    /// budget switch back to `from`.
    Verify {
        color: Color,
        from: Color,
        #[serde(with = "crate::spec::duration::serde_human")]
        duration: Duration,
    },
    /// Rewrite the proxy entry without moving traffic to another color
    /// (route or preview changed, replicas changed, drifted config).
    Reroute { color: Color },
    /// Let in-flight requests finish on `color`.
    Drain {
        color: Color,
        #[serde(with = "crate::spec::duration::serde_human")]
        duration: Duration,
    },
    /// Remove replicas of `color` with index >= `keep`.
    RemoveReplicas { color: Color, keep: u32 },
    /// Stop (but keep) the containers of `color` (`keep_idle: false`).
    StopColor { color: Color },
    /// Remove every container of `color` (its image was removed).
    RemoveColor { color: Color },
    /// Remove the proxy entry and every container of a deleted service,
    /// waiting `drain` in between when the proxy routed it (requests in
    /// flight finish before their containers go).
    RemoveService {
        #[serde(
            with = "crate::spec::duration::serde_human_opt",
            skip_serializing_if = "Option::is_none"
        )]
        drain: Option<Duration>,
    },
}

impl Step {
    /// The color a step acts on, when it acts on one.
    pub fn color(&self) -> Option<Color> {
        match self {
            Step::PullImage { color, .. }
            | Step::Release { color, .. }
            | Step::StartColor { color, .. }
            | Step::WaitHealthy { color }
            | Step::Reroute { color }
            | Step::Drain { color, .. }
            | Step::RemoveReplicas { color, .. }
            | Step::StopColor { color }
            | Step::RemoveColor { color } => Some(*color),
            Step::Switch { to, .. } | Step::Canary { to, .. } => Some(*to),
            Step::Verify { color, .. } | Step::Roll { color, .. } => Some(*color),
            Step::RemoveService { .. } => None,
        }
    }
}

/// Plans every service in `desired` and every service in `observed` that is
/// no longer desired.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let names: std::collections::BTreeSet<&String> = desired.services.keys().chain(observed.services.keys()).collect();
    let services = names
        .into_iter()
        .map(|name| {
            let svc = desired.services.get(name);
            let mut sp = service::plan_service(name, svc, observed.services.get(name));
            sp.hosts = svc.map_or(vec![], |s| desired.hosts_of(s).into_iter().map(String::from).collect());
            sp
        })
        .collect();
    Plan { services }
}

/// Identity of a desired service: sha256 of all it resolves to, env
/// values as keyed digests (the hash is shown in status). A commit that
/// leaves it alone keeps it; one that changes it (or a repo default it
/// uses) does not.
pub fn service_hash(svc: &Service) -> String {
    let sealed = Service {
        env: svc
            .env
            .iter()
            .map(|(k, v)| (k.clone(), svc.env_key.seal(k, v)))
            .collect(),
        ..svc.clone()
    };
    let mut json = serde_json::to_string(&sealed).expect("a service serialises");
    // Secret values as digests, after the rest: a service without
    // secrets hashes as before there were any.
    for (k, s) in &svc.secrets {
        json.push_str(&svc.env_key.seal(&format!("secret:{k}"), &s.identity()));
    }
    hex::encode(Sha256::digest(json.as_bytes()))
}

/// Whether a recorded `service_hash` (of a rollout, of a rollback) names
/// this service: as this teal hashes it, or as an older one did (env
/// values in plain text), so an upgrade of teal neither restarts a rollout
/// nor retries a commit analysis rolled back.
pub fn is_service(recorded: &str, svc: &Service) -> bool {
    let older = || {
        let json = serde_json::to_string(svc).expect("a service serialises");
        hex::encode(Sha256::digest(json.as_bytes()))
    };
    recorded == service_hash(svc) || recorded == older()
}

/// sha256 of what the proxy needs to know about a service's route (host,
/// path, port, preview), so a changed route is detected without comparing
/// rendered config text.
pub fn route_hash(svc: &Service) -> String {
    let mut key = serde_json::json!({
        "host": svc.route.host,
        "path": svc.route.path,
        "port": svc.port,
        "preview": svc.preview,
    });
    // Only when set, so a plain route hashes as it did before TLS.
    if !svc.route.aliases.is_empty() {
        key["aliases"] = serde_json::json!(svc.route.aliases);
    }
    if let Some(tls) = &svc.route.tls {
        key["tls"] = serde_json::json!(tls);
    }
    if !svc.traffic.is_plain() {
        key["traffic"] = serde_json::json!(svc.traffic);
    }
    hex::encode(Sha256::digest(key.to_string().as_bytes()))
}
