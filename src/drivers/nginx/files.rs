//! Reading teal's nginx files back: each carries a header with the sha256
//! of its body, so a hand edit shows as drift.

use std::path::Path;

use super::render::{Meta, HEADER};
use super::LEGACY_SHARED;
use crate::drivers::reload::{sha256, write_atomic};
use crate::drivers::route::ProxyError;

pub(super) fn put(path: &Path, text: Option<&str>) -> Result<(), ProxyError> {
    match text {
        Some(t) => write_atomic(path, t),
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProxyError::Io {
                path: path.display().to_string(),
                source,
            }),
        },
    }
}

/// A shared file an older teal wrote under a name a service file may now
/// have: it has no service header.
pub(super) fn is_legacy_shared(name: &str, text: &str) -> bool {
    LEGACY_SHARED.contains(&name) && parse_header(text).is_none()
}

/// The text after the header line.
pub(super) fn body_of(text: &str) -> Option<&str> {
    text.split_once('\n').map(|(_, b)| b)
}

/// True when the file is absent or its body matches its header's hash.
pub(super) fn verified(text: &Option<String>) -> bool {
    let Some(text) = text else { return true };
    let Some((header, body)) = text.split_once('\n') else {
        return false;
    };
    header.rsplit("sha256=").next().map(str::trim) == Some(sha256(body).as_str())
}

/// The servers file with its reload token blanked, to compare structure.
pub(super) fn without_token(text: &str) -> String {
    let mut out: Vec<&str> = text.lines().skip(1).collect();
    out.retain(|l| !l.trim_start().starts_with("return 200 "));
    out.join("\n")
}

/// The header's record, whether or not the body still matches it.
pub(super) fn parse_header(text: &str) -> Option<Meta> {
    let header = text.lines().next()?;
    serde_json::from_str(header.strip_prefix(HEADER)?).ok()
}
