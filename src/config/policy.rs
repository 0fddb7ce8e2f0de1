//! `policy:` in the host config: its types live in the core
//! (`teal_core::policy`), which checks commits against them; here, the
//! mistakes of the host config itself.

use crate::policy::{prometheus, Policy};
use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// Located mistakes of `policy:`: a `prometheus` entry that is no plain
/// http(s) URL (it would match nothing, and the owner would not know).
pub(super) fn check(path: &str, text: &str, policy: &Policy) -> Vec<Diagnostic> {
    let loc = Locator::new(text);
    let prefixes = policy.prometheus.as_deref().unwrap_or_default();
    prefixes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let why = prometheus::check_prefix(p).err()?;
            let (line, col) = loc.pos(&["policy", "prometheus", &i.to_string()]);
            Some(Diagnostic::new(
                path,
                line,
                col,
                format!("policy.prometheus[{i}]: {why}"),
            ))
        })
        .collect()
}
