//! The summary file next to each rotated file of the log,
//! `events.jsonl.<n>.summary.json` (a `history::summary::FileSummary` as
//! JSON): written when the file is rotated aside, moved and dropped with
//! it, and read by `history --since` instead of the file. It is read as
//! untrusted: bounded, and any doubt (missing, too long, not parsing,
//! another version, not the file's length) reads as no summary.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::history::summary::FileSummary;

/// The most of a summary file read: far more than any real one (a few
/// lines per service) yet bounded.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// `events.jsonl.<n>` -> `events.jsonl.<n>.summary.json`.
pub fn path_of(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(".summary.json");
    file.with_file_name(name)
}

/// Sums up `file` and writes its summary next to it (through a temporary
/// file and a rename, so a reader never sees half of one).
pub fn write(file: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(file)?;
    let log = super::parse(&String::from_utf8_lossy(&bytes));
    let summary = FileSummary::of(&log.events, bytes.len() as u64);
    let json = serde_json::to_vec(&summary).map_err(std::io::Error::other)?;
    crate::atomic::write(&path_of(file), &json)
}

/// The summary of `file` when there is a sound one for it as it is now.
pub fn read(file: &Path) -> Option<FileSummary> {
    let len = std::fs::metadata(file).ok()?.len();
    let mut buf = Vec::new();
    std::fs::File::open(path_of(file))
        .ok()?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .ok()?;
    if buf.len() as u64 > MAX_BYTES {
        return None;
    }
    let summary: FileSummary = serde_json::from_slice(&buf).ok()?;
    (summary.bytes == len && summary.is_sound()).then_some(summary)
}
