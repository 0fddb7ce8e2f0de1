//! The names teal gives HAProxy backends.

/// A service's backend: its name as it is. Service names cannot contain
/// `_`, which every name teal adds (`_preview`, `_pv`, `teal_no_route`)
/// carries, so no service name can take another's backend or teal's own.
pub(super) fn backend(service: &str) -> String {
    format!("teal_{service}")
}
