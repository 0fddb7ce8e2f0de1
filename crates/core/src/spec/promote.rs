//! Manual promotion: a rollout that waits, with traffic as it is, until
//! the repo says so. The gates are a canary step's `hold: until_promoted`
//! and `blue-green: {promote: manual}`; the word is a commit in the
//! service file, `promote:` or `abort:` (written by `teal promote` and
//! `teal abort`), so every promotion is a reviewed, signed, auditable
//! commit. Which rollout such a commit covers is the host's business: it
//! knows the rollout's commit and the repo's history (`promoted`,
//! `aborted`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;
use super::file::{DurationStr, ServiceFile, StrategyName};
use super::validate::{Ctx, From};

/// The `hold` of a canary step that waits for a promotion.
pub const UNTIL_PROMOTED: &str = "until_promoted";

/// `blue-green.promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromoteMode {
    /// The switch follows the checks (the default).
    Auto,
    /// The checked new color waits for `promote:` before the switch.
    Manual,
}

/// A service's promotion gates and what the repo said about them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Promotion {
    /// Blue-green: the switch waits for a promotion.
    pub manual: bool,
    /// A rollout waiting longer than this is aborted.
    pub deadline: Option<Duration>,
    /// `promote:` and `abort:` as written: a commit (7-40 hex digits).
    pub promote: Option<String>,
    pub abort: Option<String>,
    /// The commit of the rollout `promote:` covers, resolved by the host
    /// (that rollout's commit is `promote:`'s or one of its ancestors).
    pub promoted: Option<String>,
    /// The same for `abort:`.
    pub aborted: Option<String>,
}

impl Promotion {
    /// What the repo says about the rollout of `commit`.
    pub fn gate(&self, commit: &str) -> Gate {
        if self.aborted.as_deref() == Some(commit) {
            Gate::Aborted
        } else if self.promoted.as_deref() == Some(commit) {
            Gate::Promoted
        } else {
            Gate::Closed
        }
    }
}

/// A waiting rollout's word from the repo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gate {
    #[default]
    Closed,
    Promoted,
    Aborted,
}

fn is_commit(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The promotion gates of a service; errors are pushed.
pub(super) fn resolve_promotion(ctx: &mut Ctx<'_>, f: &ServiceFile) -> Promotion {
    let strategy = f.strategy.unwrap_or(StrategyName::BlueGreen);
    let mut commit = |key: &str, v: &Option<String>| -> Option<String> {
        let v = v.as_ref()?;
        if !is_commit(v) {
            ctx.err(
                From::Service,
                &[key],
                format!("{key} {v:?} is not a commit: write 7-40 hex digits (teal {key} writes it)"),
            );
            return None;
        }
        Some(v.to_ascii_lowercase())
    };
    let promote = commit("promote", &f.promote);
    let abort = commit("abort", &f.abort);
    let bg = f.blue_green.as_ref().filter(|_| strategy == StrategyName::BlueGreen);
    let deadline_file = match strategy {
        StrategyName::Canary => f.canary.as_ref().and_then(|c| c.progress_deadline.as_ref()),
        _ => bg.and_then(|b| b.progress_deadline.as_ref()),
    };
    let key = if strategy == StrategyName::Canary {
        "canary"
    } else {
        "blue-green"
    };
    let deadline = deadline_file.and_then(|d| deadline(ctx, d, key));
    Promotion {
        manual: bg.and_then(|b| b.promote) == Some(PromoteMode::Manual),
        deadline,
        promote,
        abort,
        promoted: None,
        aborted: None,
    }
}

fn deadline(ctx: &mut Ctx<'_>, d: &DurationStr, key: &str) -> Option<Duration> {
    match duration::parse(&d.0) {
        Ok(v) if v >= Duration::from_secs(1) => Some(v),
        Ok(_) => {
            ctx.err(
                From::Service,
                &[key, "progress_deadline"],
                "progress_deadline is under 1s: give a rollout time to be promoted, e.g. 1h",
            );
            None
        }
        Err(e) => {
            ctx.err(
                From::Service,
                &[key, "progress_deadline"],
                format!("{e}; write e.g. 1h"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Strategy;

    use crate::spec::tests::service_with as check;

    #[test]
    fn gates_and_words_resolve() {
        let s = check("strategy: canary\ncanary:\n  steps:\n    - {weight: 20, hold: 5s}\n    - {weight: 50, hold: until_promoted}\n  progress_deadline: 1h\npromote: 3F2A9C1\n").unwrap();
        let Strategy::Canary { steps } = &s.strategy else {
            panic!()
        };
        assert_eq!((steps[0].manual, steps[1].manual), (false, true));
        assert_eq!(s.promotion.deadline, Some(Duration::from_secs(3600)));
        assert_eq!(s.promotion.promote.as_deref(), Some("3f2a9c1"));
        let s = check("blue-green: {promote: manual}\nabort: 0123456789abcdef0123456789abcdef01234567\n").unwrap();
        assert!(s.promotion.manual);
        assert!(s.promotion.abort.is_some());
        // The words are not part of what is deployed: a promotion
        // continues the rollout it promotes.
        let a = check("strategy: canary\n").unwrap();
        let b = check("strategy: canary\npromote: abcdef1\n").unwrap();
        assert_eq!(crate::plan::service_hash(&a), crate::plan::service_hash(&b));
        let mut p = b.promotion.clone();
        p.promoted = Some("c1".into());
        assert_eq!(p.gate("c1"), Gate::Promoted);
        assert_eq!(p.gate("c2"), Gate::Closed);
        p.aborted = Some("c1".into());
        assert_eq!(p.gate("c1"), Gate::Aborted, "abort wins");
    }

    #[test]
    fn bad_words_and_deadlines_are_located() {
        let cases = [
            ("promote: yes\n", "services/web.yaml:10:10: promote \"yes\" is not a commit: write 7-40 hex digits (teal promote writes it)"),
            ("blue-green: {progress_deadline: 10ms}\n", "services/web.yaml:10:33: progress_deadline is under 1s: give a rollout time to be promoted, e.g. 1h"),
            ("strategy: canary\ncanary:\n  steps:\n    - {weight: 20, hold: until_done}\n", "services/web.yaml:13:26: invalid duration \"until_done\": expected number at 0; write e.g. 30s or 2m, or until_promoted"),
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
