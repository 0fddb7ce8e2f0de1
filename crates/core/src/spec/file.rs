//! The config files exactly as users write them. These types are the source
//! of the JSON Schemas in `schemas/`; keep doc comments user-facing, they end
//! up as schema descriptions shown by editors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::prometheus::PrometheusFile;
pub use super::route::{RouteFile, TlsFile, TlsFilesFile};
pub use super::strategy_file::{AnalysisFile, CanaryFile, CanaryStepFile, PercentStr, RollingFile, StrategyName};
pub use super::traffic::{BlueGreenFile, MaintenanceFile, MatchFile, StickyName};
use super::{Color, PullPolicy, RestartPolicy};

/// `services/<name>.yaml`: one service; its name is the file stem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "teal service")]
pub struct ServiceFile {
    /// The color that must serve traffic: blue or green.
    pub active: Option<Color>,
    /// The blue slot. A color with no image has no containers.
    #[serde(default)]
    pub blue: Option<ColorFile>,
    /// The green slot. A color with no image has no containers.
    #[serde(default)]
    pub green: Option<ColorFile>,
    /// The port the app listens on inside the container (1-65535).
    pub port: Option<i64>,
    /// Containers per color, 1-64. Default 1.
    #[serde(default)]
    pub replicas: Option<i64>,
    /// Environment variables for both colors.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Overrides the image's command.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Bind mounts or named volumes, `source:target[:ro]`.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Extra container labels (keys starting with `teal.` are reserved).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Docker restart policy. Default unless-stopped.
    #[serde(default)]
    pub restart: Option<RestartPolicy>,
    /// `missing` (default): a color keeps the digest its tag had at the
    /// first pull. `always`: a tag moved in the registry is followed and
    /// the color redeployed (engine mode).
    #[serde(default)]
    pub pull: Option<PullPolicy>,
    /// Docker network to join; overrides `teal.yaml`. Default: the host's managed network.
    #[serde(default)]
    pub network: Option<String>,
    /// Where the proxy sends traffic for the active color.
    pub route: Option<RouteFile>,
    /// Makes the idle color reachable for testing before a switch.
    #[serde(default)]
    pub preview: Option<PreviewFile>,
    /// Checks that gate every switch; fields override `teal.yaml`.
    #[serde(default)]
    pub health: Option<HealthFile>,
    /// How traffic moves; fields override `teal.yaml`.
    #[serde(default)]
    pub switch: Option<SwitchFile>,
    /// How a new version takes traffic: blue-green (default: all at once
    /// after its checks pass), canary (a growing share of requests, judged
    /// by analysis at each step) or rolling (one color, replicas replaced a
    /// few at a time).
    #[serde(default)]
    pub strategy: Option<StrategyName>,
    /// The steps of a canary (`strategy: canary`), whether a client keeps
    /// one color, and which requests of testers go to the new color.
    #[serde(default)]
    pub canary: Option<CanaryFile>,
    /// Options of the default strategy: testers' requests to the new color.
    #[serde(default, rename = "blue-green")]
    pub blue_green: Option<BlueGreenFile>,
    /// Promotes a rollout waiting for it (`hold: until_promoted`,
    /// `blue-green: {promote: manual}`): a commit; the rollout that was
    /// under way at that commit goes on. `teal promote` writes it.
    #[serde(default)]
    pub promote: Option<String>,
    /// Aborts a rollout under way at this commit: all traffic back on the
    /// old color, as a failed analysis would. `teal abort` writes it.
    #[serde(default)]
    pub abort: Option<String>,
    /// The proxy answers the route with a 503 page and `Retry-After`; the
    /// containers keep running (preview and checks still reach them).
    #[serde(default)]
    pub maintenance: Option<MaintenanceFile>,
    /// How a rolling update replaces replicas (`strategy: rolling`).
    #[serde(default)]
    pub rolling: Option<RollingFile>,
    /// Judges the new version on the responses the proxy counts for it;
    /// above the error budget, all traffic goes back at once.
    #[serde(default)]
    pub analysis: Option<AnalysisFile>,
    /// The hosts (of `teal.yaml`'s `hosts`) the service runs on: each
    /// label here must match the host's. Default: every host.
    #[serde(default)]
    pub placement: Option<BTreeMap<String, String>>,
    /// How a new commit of this service reaches the fleet.
    #[serde(default)]
    pub rollout: Option<RolloutFile>,
    /// Values that never sit in git in plain text, by name: age-encrypted
    /// here or in `secrets/<service>.yaml` (`teal secret set`), or read
    /// from a file on the host. The container gets each as the read-only
    /// file `/run/secrets/<NAME>`, or with `as: env` as a variable.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretFile>,
    /// Environment variables read from files on the host (under the
    /// host's `policy.secret_files`), e.g. `{DATABASE_URL:
    /// /etc/teal/secrets/web/database_url}`: secrets delivered as env.
    #[serde(default)]
    pub env_from_files: BTreeMap<String, String>,
    /// A one-off container of the new image run once per commit before the
    /// new color starts (database migrations); a failure stops the deploy.
    #[serde(default)]
    pub release: Option<ReleaseFile>,
}

/// One secret of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretFile {
    /// The value encrypted with age, ASCII-armored (`age -a -r ...`, or
    /// `teal secret set`). Neither `age` nor `file`: the value is in
    /// `secrets/<service>.yaml`.
    #[serde(default)]
    pub age: Option<String>,
    /// A file on the host holding the value, under the host's
    /// `policy.secret_files`, e.g. `/etc/teal/secrets/web/api_token`.
    #[serde(default)]
    pub file: Option<String>,
    /// How the container gets it: `file` (default), the read-only file
    /// `/run/secrets/<NAME>`; `env`, an environment variable, which
    /// anyone who may run `docker inspect` on the host can read.
    #[serde(default, rename = "as")]
    pub delivery: Option<crate::spec::secret::Delivery>,
}

/// `secrets/<service>.yaml`: age-encrypted values by name, written by
/// `teal secret set`; names stay readable, values do not.
pub type SecretsFile = BTreeMap<String, SecretValueFile>;

/// One encrypted value of `secrets/<service>.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValueFile {
    /// The recipients (names in teal.yaml's `secrets.recipients`) it was
    /// encrypted to, for `teal secret ls`; what can decrypt it is the
    /// ciphertext's business.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The value encrypted with age, ASCII-armored.
    pub age: Option<String>,
}

/// `release:` of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    /// The command, run in a container of the new image, e.g. `[bin/migrate]`.
    pub command: Option<Vec<String>>,
    /// Past it the release has failed and its container is killed, e.g.
    /// `5m`. Default 5m.
    #[serde(default)]
    pub timeout: Option<DurationStr>,
    /// `inherit` (default): the color's env and secrets; `none`: neither.
    #[serde(default)]
    pub env: Option<crate::spec::release::ReleaseEnv>,
    /// Run it also when a commit goes back to an image released before
    /// (a `git revert`). Default false: migrations rarely run backwards.
    #[serde(default)]
    pub on_rollback: Option<bool>,
    /// In a fleet, the host (a name of teal.yaml's `hosts`) that runs it;
    /// the others deploy once that host serves the commit. Default: the
    /// first host, by wave then name, of those the service runs on.
    #[serde(default)]
    pub on: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutFile {
    /// `wave`: hosts deploy in the order of their `wave` label; a host of
    /// wave N deploys a commit only once every earlier wave serves it
    /// healthy. Default: every host at once.
    #[serde(default)]
    pub by: Option<RolloutBy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RolloutBy {
    Wave,
}

/// One host of the fleet in `teal.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// Labels that services' `placement` selects on, e.g. `{role: web, wave: "1"}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The host's status API, e.g. `https://10.0.0.11:9470`, read by the
    /// hosts of later waves and by `teal status --fleet`: only by hosts
    /// whose host config lists it in `fleet.peers`.
    #[serde(default)]
    pub status: Option<String>,
}

/// `teal.yaml`: optional repo-wide defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "teal repo defaults")]
pub struct RepoFile {
    /// Default health checks for every service.
    #[serde(default)]
    pub health: Option<HealthFile>,
    /// Default switch behaviour for every service.
    #[serde(default)]
    pub switch: Option<SwitchFile>,
    /// Docker network for every service; default: the host's managed network (`docker.network` in the host config).
    #[serde(default)]
    pub network: Option<String>,
    /// The fleet, by host name (`host.name` in each host's daemon.yaml).
    /// With a list, a daemon whose name is not in it applies nothing.
    #[serde(default)]
    pub hosts: Option<BTreeMap<String, HostFile>>,
    /// Who can read the repo's secrets.
    #[serde(default)]
    pub secrets: Option<RepoSecretsFile>,
}

/// `secrets:` of teal.yaml.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoSecretsFile {
    /// The age recipients `teal secret set` encrypts to, by name: each
    /// host's (its `secrets.identity_file`), and each person's who sets
    /// secrets. `age1...` (age-keygen) or `ssh-ed25519 AAAA...` (a
    /// host's /etc/ssh/ssh_host_ed25519_key.pub).
    #[serde(default)]
    pub recipients: BTreeMap<String, String>,
}

/// One color's slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColorFile {
    /// Image reference, e.g. `registry.example.com/shop/web:1.4.2`.
    #[serde(default)]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewFile {
    /// Host name that reaches the idle color.
    pub host: Option<String>,
    /// CIDRs allowed to reach the preview, e.g. `10.0.0.0/8`. Empty: everyone.
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// HTTP GET probe.
    #[serde(default)]
    pub http: Option<HttpProbeFile>,
    /// TCP connect probe on the service port.
    #[serde(default)]
    pub tcp: Option<TcpProbeFile>,
    /// Command run inside the container; exit 0 passes.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// Time between probes, e.g. `1s`. Default 1s.
    #[serde(default)]
    pub interval: Option<DurationStr>,
    /// Time one probe may take, e.g. `2s`. Default 2s.
    #[serde(default)]
    pub timeout: Option<DurationStr>,
    /// Consecutive passes needed on every replica. Default 3.
    #[serde(default)]
    pub successes: Option<i64>,
    /// Past it the deploy has failed, e.g. `60s`. Default 60s.
    #[serde(default)]
    pub deadline: Option<DurationStr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeFile {
    /// Path to GET, starting with `/`.
    pub path: Option<String>,
    /// Expected status code. Default 200.
    #[serde(default)]
    pub status: Option<i64>,
    /// Substring the response body must contain.
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpProbeFile {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchFile {
    /// Time in-flight requests get to finish on the old color. Default 5s.
    #[serde(default)]
    pub drain: Option<DurationStr>,
    /// Keep the old color running so a revert is instant. Default true.
    #[serde(default)]
    pub keep_idle: Option<bool>,
    /// Hold new requests (up to this long, e.g. `5s`) while the release
    /// command runs; they go on at once when it ends. Only for a service
    /// with `release:`; at most 60s. Default: no pause.
    #[serde(default)]
    pub pause: Option<DurationStr>,
}

/// A human duration such as `500ms`, `2s` or `1m`. Kept as text here so that
/// a bad value becomes a located validation error rather than a parse abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DurationStr(pub String);

impl JsonSchema for DurationStr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as 500ms, 2s or 1m.",
            "pattern": "^\\s*[0-9]+\\s*(ns|us|ms|s|m|h|d|w|y)(\\s*[0-9]+\\s*(ns|us|ms|s|m|h|d|w|y))*\\s*$"
        })
    }
}
