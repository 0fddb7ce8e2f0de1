//! The rules of `strategy`, `canary`, `rolling` and `analysis` in a service
//! file: each problem located at the value at fault.

use std::time::Duration;

use super::file::{AnalysisFile, ServiceFile, StrategyName};
use super::validate::{duration_field, Ctx, From};
use super::{defaults, duration, Analysis, CanaryStep, Color, Strategy};

/// The resolved strategy, or `None` after pushing its errors.
pub(super) fn resolve_strategy(ctx: &mut Ctx<'_>, f: &ServiceFile, active: Option<Color>) -> Option<Strategy> {
    let name = f.strategy.unwrap_or(StrategyName::BlueGreen);
    let shown = |n: StrategyName| match n {
        StrategyName::BlueGreen => "blue-green",
        StrategyName::Canary => "canary",
        StrategyName::Rolling => "rolling",
    };
    if f.canary.is_some() && name != StrategyName::Canary {
        ctx.err(
            From::Service,
            &["canary"],
            format!(
                "canary is set but the strategy is {}: set strategy: canary, or remove canary",
                shown(name)
            ),
        );
    }
    if f.rolling.is_some() && name != StrategyName::Rolling {
        ctx.err(
            From::Service,
            &["rolling"],
            format!(
                "rolling is set but the strategy is {}: set strategy: rolling, or remove rolling",
                shown(name)
            ),
        );
    }
    match name {
        StrategyName::BlueGreen => Some(Strategy::BlueGreen),
        StrategyName::Canary => canary_steps(ctx, f).map(|steps| Strategy::Canary { steps }),
        StrategyName::Rolling => rolling(ctx, f, active),
    }
}

fn canary_steps(ctx: &mut Ctx<'_>, f: &ServiceFile) -> Option<Vec<CanaryStep>> {
    let Some(files) = f.canary.as_ref().and_then(|c| c.steps.as_ref()) else {
        return Some(
            defaults::CANARY_STEPS
                .iter()
                .map(|(weight, hold)| CanaryStep {
                    weight: *weight,
                    hold: *hold,
                    manual: false,
                })
                .collect(),
        );
    };
    if files.is_empty() {
        ctx.err(
            From::Service,
            &["canary", "steps"],
            "canary.steps is empty: give at least one step, e.g. { weight: 10, hold: 30s }",
        );
        return None;
    }
    let mut steps = vec![];
    let mut ok = true;
    let mut last = 0;
    for (i, s) in files.iter().enumerate() {
        let n = i.to_string();
        let weight = match s.weight {
            None => {
                ctx.err(
                    From::Service,
                    &["canary", "steps", &n],
                    "missing weight: the percent of requests for the new version, 1-99",
                );
                None
            }
            Some(w) if !(1..=99).contains(&w) => {
                ctx.err(
                    From::Service,
                    &["canary", "steps", &n, "weight"],
                    format!("weight {w} is out of range: use 1-99 (after the last step the new version gets 100 %)"),
                );
                None
            }
            Some(w) if w as u32 <= last => {
                ctx.err(
                    From::Service,
                    &["canary", "steps", &n, "weight"],
                    format!("weight {w} does not increase: the step before has {last}"),
                );
                None
            }
            Some(w) => Some(w as u32),
        };
        let manual = s.hold.as_ref().is_some_and(|h| h.0 == super::promote::UNTIL_PROMOTED);
        let hold = match s.hold.as_ref().filter(|_| !manual) {
            None if manual => Some(Duration::ZERO),
            None => {
                ctx.err(
                    From::Service,
                    &["canary", "steps", &n],
                    "missing hold: how long the step lasts, e.g. 30s",
                );
                None
            }
            Some(h) => match duration::parse(&h.0) {
                Err(e) => {
                    ctx.err(
                        From::Service,
                        &["canary", "steps", &n, "hold"],
                        format!("{e}; write e.g. 30s or 2m, or until_promoted"),
                    );
                    None
                }
                Ok(d) if d < Duration::from_secs(1) => {
                    ctx.err(
                        From::Service,
                        &["canary", "steps", &n, "hold"],
                        format!(
                            "hold {} is under 1s: a step must last long enough to be judged",
                            duration::format(d)
                        ),
                    );
                    None
                }
                Ok(d) => Some(d),
            },
        };
        last = weight.unwrap_or(last);
        match (weight, hold) {
            (Some(weight), Some(hold)) => steps.push(CanaryStep { weight, hold, manual }),
            _ => ok = false,
        }
    }
    ok.then_some(steps)
}

/// Rolling runs one color: the other has no image, no preview exists, and
/// keeping an idle color is a contradiction.
fn rolling(ctx: &mut Ctx<'_>, f: &ServiceFile, active: Option<Color>) -> Option<Strategy> {
    let before = ctx.diags.len();
    let max_surge = match f.rolling.as_ref().and_then(|r| r.max_surge) {
        None => defaults::MAX_SURGE,
        Some(m) if !(1..=64).contains(&m) => {
            ctx.err(
                From::Service,
                &["rolling", "max_surge"],
                format!("max_surge {m} is out of range: use 1-64"),
            );
            1
        }
        Some(m) => m as u32,
    };
    let hold = match f.rolling.as_ref().and_then(|r| r.hold.as_ref()) {
        None => defaults::ROLLING_HOLD,
        Some(h) => match duration::parse(&h.0) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            Ok(d) => {
                ctx.err(
                    From::Service,
                    &["rolling", "hold"],
                    format!(
                        "hold {} is under 1s: a batch must last long enough to be judged",
                        duration::format(d)
                    ),
                );
                defaults::ROLLING_HOLD
            }
            Err(e) => {
                ctx.err(
                    From::Service,
                    &["rolling", "hold"],
                    format!("{e}; write e.g. 10s or 1m"),
                );
                defaults::ROLLING_HOLD
            }
        },
    };
    if let Some(a) = active {
        let idle = a.other();
        let idle_file = if idle == Color::Blue { &f.blue } else { &f.green };
        if idle_file.as_ref().is_some_and(|c| c.image.is_some()) {
            ctx.err(
                From::Service,
                &[idle.as_str(), "image"],
                format!("a rolling service runs one color: remove {idle}.image (rolling replaces the replicas of {a} in place)"),
            );
        }
    }
    if f.switch.as_ref().is_some_and(|s| s.keep_idle.is_some()) {
        ctx.err(
            From::Service,
            &["switch", "keep_idle"],
            "keep_idle does not apply to strategy: rolling, which keeps no idle color: remove it",
        );
    }
    if f.preview.is_some() {
        ctx.err(
            From::Service,
            &["preview"],
            "a rolling service has no idle color to preview: remove preview, or use strategy: blue-green or canary",
        );
    }
    (ctx.diags.len() == before).then_some(Strategy::Rolling { max_surge, hold })
}

/// The analysis, when declared; its errors are pushed.
pub(super) fn resolve_analysis(ctx: &mut Ctx<'_>, f: &ServiceFile) -> Option<Analysis> {
    let a: &AnalysisFile = f.analysis.as_ref()?;
    // Resolved first, so its errors show beside the others.
    let prometheus = a.prometheus.as_ref().map(|p| super::prometheus::resolve(ctx, p));
    // Prometheus alone judges without the counters (which a proxy that
    // cannot count, nginx with reloads, would not have).
    let counters = prometheus.is_none() || a.max_errors.is_some() || a.min_requests.is_some();
    let max_errors = match &a.max_errors {
        None => counters.then_some(defaults::MAX_ERRORS_PERCENT),
        Some(p) => match parse_percent(&p.0) {
            Ok(v) if (0.0..=100.0).contains(&v) => Some(v),
            Ok(v) => {
                ctx.err(
                    From::Service,
                    &["analysis", "max_errors"],
                    format!("max_errors {v} % is out of range: use 0-100 %"),
                );
                return None;
            }
            Err(e) => {
                ctx.err(From::Service, &["analysis", "max_errors"], e);
                return None;
            }
        },
    };
    let min_requests = match a.min_requests {
        None => defaults::MIN_REQUESTS,
        Some(n) if !(1..=1_000_000_000).contains(&n) => {
            ctx.err(
                From::Service,
                &["analysis", "min_requests"],
                format!("min_requests {n} is out of range: use 1 or more"),
            );
            return None;
        }
        Some(n) => n as u64,
    };
    let verify = match &a.verify {
        None => None,
        Some(v) => {
            let (d, _) = duration_field(ctx, Some(v), None, &["analysis", "verify"], Duration::ZERO)?;
            if d > Duration::from_secs(24 * 3600) {
                ctx.err(
                    From::Service,
                    &["analysis", "verify"],
                    "verify is longer than 24h: judge for minutes, not days",
                );
                return None;
            }
            Some(d)
        }
    };
    Some(Analysis {
        max_errors,
        min_requests,
        verify,
        prometheus: match prometheus {
            Some(p) => Some(p?),
            None => None,
        },
    })
}

/// `1%`, `0.5 %` -> 1.0, 0.5.
fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let Some(n) = t.strip_suffix('%') else {
        return Err(format!("max_errors {s:?} needs a % sign, e.g. 1% or 0.5%"));
    };
    n.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("max_errors {s:?} is not a percentage: write e.g. 1% or 0.5%"))
}

#[cfg(test)]
mod tests {
    use crate::spec::load::RepoFiles;
    use crate::spec::tests::service_with as check;
    use crate::spec::{load, Strategy};

    #[test]
    fn strategies_resolve_with_defaults() {
        assert_eq!(check("").unwrap().strategy, Strategy::BlueGreen);
        let s = check("strategy: canary\n").unwrap();
        let Strategy::Canary { steps } = &s.strategy else {
            panic!("{:?}", s.strategy)
        };
        assert_eq!(steps.iter().map(|s| s.weight).collect::<Vec<_>>(), [10, 50]);
        let s = check("strategy: canary\ncanary:\n  steps:\n    - {weight: 5, hold: 1s}\nanalysis: {max_errors: 2.5%, min_requests: 3, verify: 10s}\n").unwrap();
        let a = s.analysis.unwrap();
        assert_eq!(
            (a.max_errors, a.min_requests, a.verify),
            (Some(2.5), 3, Some(std::time::Duration::from_secs(10)))
        );
        let rolling = "active: blue\nblue:\n  image: web:1\nport: 8080\nroute: {host: shop.example.com}\nhealth:\n  http: {path: /healthz}\nstrategy: rolling\nrolling: {max_surge: 2}\n";
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), rolling.into());
        assert_eq!(
            load(&f).unwrap().services["web"].strategy,
            Strategy::Rolling {
                max_surge: 2,
                hold: std::time::Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn every_bad_strategy_input_is_located() {
        let cases = [
            ("strategy: canery\n", "services/web.yaml:10:11: strategy: unknown variant \"canery\", expected one of \"blue-green\", \"canary\", \"rolling\""),
            ("strategy: canary\ncanary:\n  steps:\n    - {weight: 0, hold: 1s}\n", "services/web.yaml:13:16: weight 0 is out of range: use 1-99 (after the last step the new version gets 100 %)"),
            ("strategy: canary\ncanary:\n  steps:\n    - {weight: 100, hold: 1s}\n", "services/web.yaml:13:16: weight 100 is out of range: use 1-99 (after the last step the new version gets 100 %)"),
            ("strategy: canary\ncanary:\n  steps:\n    - {weight: 50, hold: 1s}\n    - {weight: 20, hold: 1s}\n", "services/web.yaml:14:16: weight 20 does not increase: the step before has 50"),
            ("strategy: canary\ncanary:\n  steps:\n    - {weight: 10, hold: 500ms}\n", "services/web.yaml:13:26: hold 500ms is under 1s: a step must last long enough to be judged"),
            ("strategy: canary\ncanary:\n  steps: []\n", "services/web.yaml:12:3: canary.steps is empty: give at least one step, e.g. { weight: 10, hold: 30s }"),
            ("canary:\n  steps:\n    - {weight: 10, hold: 1s}\n", "services/web.yaml:10:1: canary is set but the strategy is blue-green: set strategy: canary, or remove canary"),
            ("rolling: {max_surge: 1}\n", "services/web.yaml:10:1: rolling is set but the strategy is blue-green: set strategy: rolling, or remove rolling"),
            ("analysis: {max_errors: 101%}\n", "services/web.yaml:10:24: max_errors 101 % is out of range: use 0-100 %"),
            ("analysis: {max_errors: 5}\n", "services/web.yaml:10:24: max_errors \"5\" needs a % sign, e.g. 1% or 0.5%"),
            ("analysis: {min_requests: 0}\n", "services/web.yaml:10:26: min_requests 0 is out of range: use 1 or more"),
            ("strategy: rolling\n", "services/web.yaml:3:10: a rolling service runs one color: remove blue.image (rolling replaces the replicas of green in place)"),
            ("strategy: rolling\nswitch: {keep_idle: true}\n", "services/web.yaml:11:21: keep_idle does not apply to strategy: rolling, which keeps no idle color: remove it"),
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
