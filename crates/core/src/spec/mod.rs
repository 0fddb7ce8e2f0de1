//! Desired state: the types users commit, loading them from a directory or a
//! git tree, validation with `path:line:col` diagnostics, and JSON Schema.
//!
//! Two layers: `file` holds the serde types exactly as written in YAML (with
//! `deny_unknown_fields`, options left unresolved, so the schema matches what
//! users type); this module holds the resolved model the planner consumes,
//! with repo-wide defaults from `teal.yaml` already applied.

pub mod container;
pub mod diag;
pub mod duration;
pub mod edit;
pub mod env_seal;
pub mod file;
pub mod fleet;
mod health_rules;
pub mod limits;
pub mod load;
pub mod locate;
pub mod names;
pub mod prometheus;
pub mod promote;
pub mod release;
pub mod route;
pub mod schema;
pub mod secret;
mod strategy;
mod strategy_file;
pub mod traffic;
pub mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prometheus;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_route;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use diag::{Diagnostic, Diagnostics};
pub use load::{load, RepoFiles};
pub use promote::Promotion;
pub use route::{Route, RouteTls, TlsSource};
pub use traffic::{Maintenance, Match, Traffic};

/// One of the two slots a service can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    /// The other color.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Color {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blue" => Ok(Color::Blue),
            "green" => Ok(Color::Green),
            other => Err(format!("unknown color {other:?}, expected blue or green")),
        }
    }
}

/// A value per color.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerColor<T> {
    pub blue: T,
    pub green: T,
}

impl<T> PerColor<T> {
    pub fn get(&self, c: Color) -> &T {
        match c {
            Color::Blue => &self.blue,
            Color::Green => &self.green,
        }
    }
    pub fn get_mut(&mut self, c: Color) -> &mut T {
        match c {
            Color::Blue => &mut self.blue,
            Color::Green => &mut self.green,
        }
    }
}

/// The whole desired state of one revision of the config repo.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Desired {
    /// Keyed by service name (the file stem of `services/<name>.yaml`).
    pub services: BTreeMap<String, Service>,
    /// The fleet from `teal.yaml`; empty: a single host, no list.
    pub hosts: BTreeMap<String, FleetHost>,
    /// Problems worth saying that do not stop the commit (a placement that
    /// matches no host).
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

/// A host of the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetHost {
    pub labels: BTreeMap<String, String>,
    pub status: Option<String>,
}

/// One service with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// Path of the file it came from, relative to the repo root (for messages).
    pub file: String,
    pub active: Color,
    /// The image of each color; `None` means the color has no containers.
    pub images: PerColor<Option<String>>,
    pub port: u16,
    pub replicas: u32,
    pub env: BTreeMap<String, String>,
    pub command: Option<Vec<String>>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    /// Whether a moved tag is followed (`pull: always`).
    pub pull: PullPolicy,
    /// With `pull: always`: the digest each color's tag is pinned to on
    /// this host, handed in by the caller before planning (never from the
    /// repo); part of the color's spec, so a new pin is a change.
    pub digests: PerColor<Option<String>>,
    /// Docker network the containers join; `None`: the host's managed
    /// network (`docker.network` in the host config).
    pub network: Option<String>,
    pub route: Route,
    pub preview: Option<Preview>,
    pub health: Health,
    pub switch: Switch,
    /// How a new version takes traffic.
    pub strategy: Strategy,
    /// Judgement of the new version (the proxy's counters, a Prometheus
    /// query), if declared.
    pub analysis: Option<Analysis>,
    /// Stickiness, testers and maintenance: rules of the route.
    #[serde(skip_serializing_if = "Traffic::is_plain")]
    pub traffic: Traffic,
    /// Manual promotion: the gates and what the repo said about them.
    #[serde(skip)]
    pub promotion: Promotion,
    /// Label selector over the fleet's hosts; empty: every host.
    pub placement: BTreeMap<String, String>,
    /// Hosts deploy a new commit wave by wave.
    pub by_wave: bool,
    /// Secrets by name; their values are read by the host.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, secret::SecretSpec>,
    /// The one-off container run before a new color starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<release::Release>,
    /// Why this host cannot read a secret of the service (not a
    /// recipient, a damaged value, no identity): it is not deployed, and
    /// what runs keeps running.
    #[serde(skip)]
    pub secret_error: Option<String>,
    /// The key that seals env values in labels and hashes: the host's
    /// (`Desired::set_env_key`), or a public one where no host is involved.
    #[serde(skip)]
    pub env_key: env_seal::EnvKey,
}

/// `pull:` of a service: what a color does when its tag moves in the
/// registry after this host pinned it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Keep running the digest the tag had at its first pull (the default).
    #[default]
    Missing,
    /// Follow the tag: a moved tag is pinned anew and its color is
    /// redeployed like any change of that color (the idle color restaged
    /// and checked; the live one only by a rolling service, else refused).
    Always,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    Always,
    #[default]
    UnlessStopped,
    OnFailure,
}

impl RestartPolicy {
    /// The name Docker uses for this policy.
    pub fn as_docker(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure => "on-failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub host: String,
    /// CIDRs allowed to reach the preview; empty means everyone.
    pub allow: Vec<ipnet::IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub probe: Probe,
    #[serde(with = "duration::serde_human")]
    pub interval: Duration,
    #[serde(with = "duration::serde_human")]
    pub timeout: Duration,
    /// Consecutive passes needed on every replica.
    pub successes: u32,
    /// Past it the deploy has failed and traffic stays where it is.
    #[serde(with = "duration::serde_human")]
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    Http {
        path: String,
        status: u16,
        /// Optional substring the body must contain.
        body: Option<String>,
    },
    Tcp,
    Exec(Vec<String>),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Http { path, status, body } => {
                write!(f, "http GET {path} -> {status}")?;
                if let Some(b) = body {
                    write!(f, " containing {b:?}")?;
                }
                Ok(())
            }
            Probe::Tcp => f.write_str("tcp connect"),
            Probe::Exec(cmd) => write!(f, "exec {}", cmd.join(" ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switch {
    #[serde(with = "duration::serde_human")]
    pub drain: Duration,
    pub keep_idle: bool,
}

/// How a new version takes traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// All traffic at once, after the new color's checks pass.
    #[default]
    BlueGreen,
    /// A growing share of requests, each step held (and judged).
    Canary { steps: Vec<CanaryStep> },
    /// One color; replicas replaced `max_surge` at a time, each batch
    /// judged for `hold` when analysis is declared.
    Rolling {
        max_surge: u32,
        #[serde(with = "duration::serde_human")]
        hold: Duration,
    },
}

impl Strategy {
    /// The name users write: `blue-green`, `canary`, `rolling`.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary { .. } => "canary",
            Strategy::Rolling { .. } => "rolling",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanaryStep {
    /// Percent of requests for the new version, 1-99 (0: a blue-green
    /// rollout waiting for promotion before its switch).
    pub weight: u32,
    #[serde(with = "duration::serde_human")]
    pub hold: Duration,
    /// `hold: until_promoted`: the step lasts until a commit promotes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Largest 5xx share of the new version's responses, in percent;
    /// `None`: the proxy's counters are not judged (Prometheus only).
    pub max_errors: Option<f64>,
    /// Responses a step needs before the counters judge it.
    pub min_requests: u64,
    /// Blue-green and canary: judge this long after all traffic moved.
    #[serde(with = "duration::serde_human_opt")]
    pub verify: Option<Duration>,
    /// A Prometheus query judged beside the counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<prometheus::PromCheck>,
}

/// Defaults used when neither the service nor `teal.yaml` says otherwise.
pub mod defaults {
    use std::time::Duration;
    pub const REPLICAS: u32 = 1;
    pub const NETWORK: &str = "teal";
    pub const ROUTE_PATH: &str = "/";
    pub const HTTP_STATUS: u16 = 200;
    pub const INTERVAL: Duration = Duration::from_secs(1);
    pub const TIMEOUT: Duration = Duration::from_secs(2);
    pub const SUCCESSES: u32 = 3;
    pub const DEADLINE: Duration = Duration::from_secs(60);
    pub const DRAIN: Duration = Duration::from_secs(5);
    pub const KEEP_IDLE: bool = true;
    /// Canary steps when `canary.steps` is not given: (percent, hold).
    pub const CANARY_STEPS: [(u32, Duration); 2] = [(10, Duration::from_secs(30)), (50, Duration::from_secs(30))];
    pub const MAX_SURGE: u32 = 1;
    pub const ROLLING_HOLD: Duration = Duration::from_secs(10);
    pub const MAX_ERRORS_PERCENT: f64 = 1.0;
    pub const MIN_REQUESTS: u64 = 20;
}
