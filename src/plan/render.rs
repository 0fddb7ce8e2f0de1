//! Human and machine renderings of a `Plan`: text (coloured on a TTY only),
//! Markdown (GitHub step summary, PR comment) and JSON (stable, documented
//! shape).

use super::Plan;

/// Plain text for a terminal; ANSI colours only when `color` is true.
pub fn text(plan: &Plan, color: bool) -> String {
    let _ = (plan, color);
    todo!("render")
}

/// Markdown for `$GITHUB_STEP_SUMMARY` or a PR comment.
pub fn markdown(plan: &Plan) -> String {
    let _ = plan;
    todo!("render")
}

/// The stable JSON shape documented in docs/json.md.
pub fn json(plan: &Plan) -> serde_json::Value {
    let _ = plan;
    todo!("render")
}
