//! The file types of how a new version takes traffic and is judged:
//! `strategy`, `canary`, `rolling` and `analysis` of a service file, as
//! users write them (re-exported by `file`, the source of the JSON
//! Schemas: keep doc comments user-facing). `strategy` resolves them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::DurationStr;
use super::prometheus::PrometheusFile;
use super::traffic::{MatchFile, StickyName};

/// The ways to ship a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyName {
    BlueGreen,
    Canary,
    Rolling,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryFile {
    /// Shares of requests for the new version, each held while analysis
    /// runs; after the last one, 100 %. Default: 10 % then 50 %, 30s each.
    #[serde(default)]
    pub steps: Option<Vec<CanaryStepFile>>,
    /// `cookie` (default): each client keeps one color for the whole
    /// rollout, by a cookie `teal_<service>` the proxy sets, and as the
    /// weight grows only the newly moved share switches. `none`: every
    /// request is split on its own.
    #[serde(default)]
    pub sticky: Option<StickyName>,
    /// Requests that match go to the new color during the rollout, e.g.
    /// `{header: {X-Canary: "1"}}` or `{cookie: {beta: "yes"}}`.
    #[serde(default, rename = "match")]
    pub matches: Option<MatchFile>,
    /// A rollout waiting for promotion longer than this is aborted, e.g.
    /// `1h`. Default: it waits.
    #[serde(default)]
    pub progress_deadline: Option<DurationStr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryStepFile {
    /// Percent of requests for the new version, 1-99, increasing from step to step.
    pub weight: Option<i64>,
    /// How long the step lasts at least, e.g. `30s` (1s or more), or
    /// `until_promoted`: until a commit promotes it (`teal promote`).
    pub hold: Option<DurationStr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollingFile {
    /// New replicas started at a time, each checked before an old one
    /// drains (1-64). Default 1.
    #[serde(default)]
    pub max_surge: Option<i64>,
    /// With analysis: how long each batch is judged before the next one
    /// starts, e.g. `10s` (1s or more). Default 10s.
    #[serde(default)]
    pub hold: Option<DurationStr>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisFile {
    /// Largest share of 5xx responses of the new version, e.g. `1%`.
    /// Default 1%, or not judged when only prometheus is set.
    #[serde(default)]
    pub max_errors: Option<PercentStr>,
    /// Responses a step needs before it is judged; a step waits for them
    /// at most 3 x its hold, then aborts. Default 20.
    #[serde(default)]
    pub min_requests: Option<i64>,
    /// After a full switch, keep judging the new version this long, e.g.
    /// `60s`; above the error budget, traffic goes back. Default: off.
    #[serde(default)]
    pub verify: Option<DurationStr>,
    /// A PromQL query judged each interval beside (or, without
    /// max_errors and min_requests, instead of) the proxy's counters.
    #[serde(default)]
    pub prometheus: Option<PrometheusFile>,
}

/// A percentage such as `1%` or `0.5%`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PercentStr(pub String);

impl JsonSchema for PercentStr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Percent".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A percentage such as 1% or 0.5%.",
            "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%\\s*$"
        })
    }
}
