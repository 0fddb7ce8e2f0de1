//! Traffic for people: rules the proxy applies to requests besides the
//! weights. A canary keeps each client on one color (`canary.sticky`),
//! testers reach the new color by a header or cookie (`match`), and a
//! service in maintenance answers 503 with `Retry-After` from the proxy
//! while its containers keep running. The values written here end up in
//! proxy configs and runtime commands, so each is held to a narrow
//! alphabet at load.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;
use super::file::{DurationStr, ServiceFile, StrategyName};
use super::validate::{Ctx, From};

/// `canary.sticky`: how a canary assigns requests to colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StickyName {
    /// Each client keeps one color for the whole rollout, by a cookie
    /// `teal_<service>` the proxy sets (the default).
    Cookie,
    /// Every request is split by weight on its own.
    None,
}

/// Requests of testers: a header or a cookie with an exact value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    /// One header and its exact value, e.g. `{X-Canary: "1"}`.
    #[serde(default)]
    pub header: Option<BTreeMap<String, String>>,
    /// One cookie and its exact value, e.g. `{beta: "yes"}`.
    #[serde(default)]
    pub cookie: Option<BTreeMap<String, String>>,
}

/// `blue-green:` options of the default strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueGreenFile {
    /// Requests that match go to the new color while a rollout is under
    /// way (its canary steps), beside the preview host.
    #[serde(default, rename = "match")]
    pub matches: Option<MatchFile>,
    /// `manual`: the new color, checked, waits before the switch until a
    /// commit promotes it (`teal promote`). Default `auto`.
    #[serde(default)]
    pub promote: Option<super::promote::PromoteMode>,
    /// A rollout waiting for promotion longer than this is aborted, e.g.
    /// `1h`. Default: it waits.
    #[serde(default)]
    pub progress_deadline: Option<DurationStr>,
}

/// `maintenance:` the proxy answers the route with a 503 page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceFile {
    /// The text of the page, e.g. `Back at 14:00` (up to 200 of letters,
    /// digits, spaces and `.,:!?()'/@+-`).
    pub message: Option<String>,
    /// Sent as `Retry-After`, e.g. `10m`. Default 5m.
    #[serde(default)]
    pub retry_after: Option<DurationStr>,
}

/// A request that sends testers to the new color.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Match {
    Header { name: String, value: String },
    Cookie { name: String, value: String },
}

/// A route in maintenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub message: String,
    /// Seconds, for `Retry-After`.
    pub retry_after: u64,
}

/// The rules of one service's route besides weights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Each client keeps one color by the cookie [`Traffic::cookie`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub sticky: bool,
    /// Requests that go to the new color during a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub testers: Option<Match>,
    /// The route answers 503 from the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
    /// `switch.pause`: the proxy holds the route's new requests, up to
    /// this long, while the release command runs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::duration::serde_human_opt"
    )]
    pub pause: Option<Duration>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Traffic {
    /// No rule: the route is split by weight alone.
    pub fn is_plain(&self) -> bool {
        *self == Traffic::default()
    }

    /// The name of the cookie that keeps a client of `service` on a color.
    pub fn cookie(service: &str) -> String {
        format!("teal_{service}")
    }
}

pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Header and cookie names: an HTTP token, narrowed.
fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !s.starts_with('-')
}

/// Header and cookie values: no space, quote, backslash or anything a
/// proxy config or command treats specially.
fn is_value(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~+/=:-".contains(&b))
}

/// The text of a maintenance page.
pub fn is_message(s: &str) -> bool {
    (1..=200).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || ".,:!?()'/@+-".contains(c))
        && s.trim() == s
}

/// The longest `switch.pause`: a held request waits in the proxy, and
/// clients and load balancers in front give up after tens of seconds.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);

/// `switch.pause` of a service (or of `teal.yaml`, for a service with a
/// release command); errors are pushed.
fn resolve_pause(ctx: &mut Ctx<'_>, f: &ServiceFile, repo: Option<&DurationStr>) -> Option<Duration> {
    let own = f.switch.as_ref().and_then(|s| s.pause.as_ref());
    if own.is_some() && f.release.is_none() {
        ctx.err(
            From::Service,
            &["switch", "pause"],
            "switch.pause holds requests while the release command runs, and this service has no release: add release: {command: [...]} or remove pause",
        );
        return None;
    }
    let (text, from) = match (own, repo) {
        (Some(t), _) => (t, From::Service),
        (None, Some(t)) if f.release.is_some() => (t, From::Repo),
        _ => return None,
    };
    match duration::parse(&text.0) {
        Ok(d) if d >= Duration::from_millis(100) && d <= MAX_PAUSE => Some(d),
        Ok(_) => {
            ctx.err(from, &["switch", "pause"], "pause must be between 100ms and 60s");
            None
        }
        Err(e) => {
            ctx.err(from, &["switch", "pause"], format!("{e}; write e.g. 5s"));
            None
        }
    }
}

/// The resolved traffic rules of a service; errors are pushed. `repo` is
/// `teal.yaml`'s `switch.pause`.
pub(super) fn resolve_traffic(ctx: &mut Ctx<'_>, f: &ServiceFile, repo: Option<&DurationStr>) -> Traffic {
    let strategy = f.strategy.unwrap_or(StrategyName::BlueGreen);
    if f.blue_green.is_some() && strategy != StrategyName::BlueGreen {
        ctx.err(
            From::Service,
            &["blue-green"],
            "blue-green is set but the strategy is not blue-green: remove it, or use canary's own options",
        );
    }
    let canary = f.canary.as_ref().filter(|_| strategy == StrategyName::Canary);
    let sticky = strategy == StrategyName::Canary && canary.and_then(|c| c.sticky) != Some(StickyName::None);
    let testers = match (canary, &f.blue_green) {
        (Some(c), _) => c.matches.as_ref().and_then(|m| resolve_match(ctx, m, "canary")),
        (None, Some(b)) => b.matches.as_ref().and_then(|m| resolve_match(ctx, m, "blue-green")),
        _ => None,
    };
    if testers.is_some() && strategy == StrategyName::Rolling {
        ctx.err(
            From::Service,
            &["blue-green", "match"],
            "a rolling service has no second color for testers",
        );
    }
    Traffic {
        sticky,
        testers,
        maintenance: f.maintenance.as_ref().and_then(|m| resolve_maintenance(ctx, m)),
        pause: resolve_pause(ctx, f, repo),
    }
}

fn resolve_match(ctx: &mut Ctx<'_>, m: &MatchFile, key: &str) -> Option<Match> {
    let mut found = vec![];
    for (kind, entries) in [("header", &m.header), ("cookie", &m.cookie)] {
        for (name, value) in entries.iter().flatten() {
            found.push((kind, name, value));
        }
    }
    let [(kind, name, value)] = found[..] else {
        ctx.err(
            From::Service,
            &[key, "match"],
            format!(
                "{key}.match needs exactly one header or one cookie, e.g. {{header: {{X-Canary: \"1\"}}}}; it has {}",
                found.len()
            ),
        );
        return None;
    };
    let mut ok = true;
    // nginx drops request headers with '_' (underscores_in_headers off).
    if kind == "header" && (!is_name(name) || name.contains('_')) {
        ctx.err(
            From::Service,
            &[key, "match", kind],
            format!("header name {name:?}: use 1-64 of A-Z, a-z, 0-9 and '-'"),
        );
        ok = false;
    } else if !is_name(name) {
        ctx.err(
            From::Service,
            &[key, "match", kind],
            format!("cookie name {name:?}: use 1-64 of A-Z, a-z, 0-9, '-' and '_'"),
        );
        ok = false;
    }
    if !is_value(value) {
        ctx.err(
            From::Service,
            &[key, "match", kind, name],
            format!("{kind} value {value:?}: use 1-128 of A-Z, a-z, 0-9 and ._~+/=:-"),
        );
        ok = false;
    }
    let (name, value) = (name.clone(), value.clone());
    ok.then_some(match kind {
        "header" => Match::Header { name, value },
        _ => Match::Cookie { name, value },
    })
}

fn resolve_maintenance(ctx: &mut Ctx<'_>, m: &MaintenanceFile) -> Option<Maintenance> {
    let message = match m.message.as_deref() {
        None => {
            ctx.err(
                From::Service,
                &["maintenance"],
                "maintenance needs a message, e.g. message: Back at 14:00",
            );
            return None;
        }
        Some(s) if !is_message(s) => {
            ctx.err(
                From::Service,
                &["maintenance", "message"],
                format!("message {s:?}: use up to 200 of letters, digits, spaces and .,:!?()'/@+- (no leading or trailing space)"),
            );
            return None;
        }
        Some(s) => s.to_string(),
    };
    let retry_after = match &m.retry_after {
        None => DEFAULT_RETRY_AFTER,
        Some(d) => match duration::parse(&d.0) {
            Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(7 * 24 * 3600) => d,
            Ok(_) => {
                ctx.err(
                    From::Service,
                    &["maintenance", "retry_after"],
                    "retry_after must be between 1s and 7d",
                );
                return None;
            }
            Err(e) => {
                ctx.err(
                    From::Service,
                    &["maintenance", "retry_after"],
                    format!("{e}; write e.g. 10m"),
                );
                return None;
            }
        },
    };
    Some(Maintenance {
        message,
        retry_after: retry_after.as_secs(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: &str) -> Result<Traffic, Vec<String>> {
        crate::spec::tests::service_with(extra).map(|s| s.traffic)
    }

    #[test]
    fn a_canary_is_sticky_unless_told_otherwise() {
        assert!(check("strategy: canary\n").unwrap().sticky);
        assert!(!check("strategy: canary\ncanary: {sticky: none}\n").unwrap().sticky);
        assert!(check("").unwrap().is_plain(), "blue-green: plain");
        let t = check("strategy: canary\ncanary:\n  match: {header: {X-Canary: \"1\"}}\n").unwrap();
        assert_eq!(
            t.testers,
            Some(Match::Header {
                name: "X-Canary".into(),
                value: "1".into()
            })
        );
        let t = check("blue-green:\n  match: {cookie: {beta: yes-please}}\n").unwrap();
        assert_eq!(
            t.testers,
            Some(Match::Cookie {
                name: "beta".into(),
                value: "yes-please".into()
            })
        );
        let t = check("maintenance: {message: \"Back at 14:00\", retry_after: 10m}\n").unwrap();
        assert_eq!(
            t.maintenance,
            Some(Maintenance {
                message: "Back at 14:00".into(),
                retry_after: 600
            })
        );
    }

    #[test]
    fn a_pause_needs_a_release_to_hold_requests_for() {
        let t = check("release: {command: [bin/migrate]}\nswitch: {pause: 5s}\n").unwrap();
        assert_eq!(t.pause, Some(Duration::from_secs(5)));
        assert!(!t.is_plain(), "the proxy needs its hold rule");
        assert_eq!(check("release: {command: [bin/migrate]}\n").unwrap().pause, None);
    }

    #[test]
    fn values_bound_for_a_proxy_config_are_refused_at_their_line() {
        let cases = [
            ("strategy: canary\ncanary:\n  match: {header: {X-Canary: \"1\\\" }\"}}\n", "services/web.yaml:12:30: header value \"1\\\" }\": use 1-128 of A-Z, a-z, 0-9 and ._~+/=:-"),
            ("strategy: canary\ncanary:\n  match: {header: {\"X Can\": \"1\"}}\n", "services/web.yaml:12:11: header name \"X Can\": use 1-64 of A-Z, a-z, 0-9 and '-'"),
            ("strategy: canary\ncanary:\n  match: {header: {a: \"1\", b: \"2\"}}\n", "services/web.yaml:12:3: canary.match needs exactly one header or one cookie, e.g. {header: {X-Canary: \"1\"}}; it has 2"),
            ("maintenance: {message: \"<script>\"}\n", "services/web.yaml:10:24: message \"<script>\": use up to 200 of letters, digits, spaces and .,:!?()'/@+- (no leading or trailing space)"),
            ("maintenance: {message: \"50% off $HOME\"}\n", "services/web.yaml:10:24: message \"50% off $HOME\": use up to 200 of letters, digits, spaces and .,:!?()'/@+- (no leading or trailing space)"),
            ("maintenance: {retry_after: 1m}\n", "services/web.yaml:10:1: maintenance needs a message, e.g. message: Back at 14:00"),
            ("maintenance: {message: x, retry_after: 30d}\n", "services/web.yaml:10:40: retry_after must be between 1s and 7d"),
            ("strategy: canary\nblue-green: {}\n", "services/web.yaml:11:1: blue-green is set but the strategy is not blue-green: remove it, or use canary's own options"),
            ("switch: {pause: 5s}\n", "services/web.yaml:10:17: switch.pause holds requests while the release command runs, and this service has no release: add release: {command: [...]} or remove pause"),
            ("release: {command: [m]}\nswitch: {pause: 2m}\n", "services/web.yaml:11:17: pause must be between 100ms and 60s"),
            ("release: {command: [m]}\nswitch: {pause: soon}\n", "services/web.yaml:11:17: invalid duration \"soon\": expected number at 0; write e.g. 5s"),
        ];
        for (extra, want) in cases {
            let got = check(extra).map(|_| vec![]).unwrap_or_else(|e| e);
            assert!(
                got.contains(&want.to_string()),
                "input:\n{extra}\ngot {got:#?}\nwant {want}"
            );
        }
    }
}
