//! Rotation of the event log by size: when an append would take
//! `events.jsonl` past `max_size`, it becomes `events.jsonl.1` (the older
//! ones shift to `.2` ... `.keep`, the oldest is dropped) and a new
//! `events.jsonl` starts. Each step is one rename, atomic on its own: a
//! crash between two leaves a gap in the numbers, never an event in two
//! files or a half-written one, and readers go by the numbers they find.
//! Each rotated file gets a summary next to it (`summary`), written once
//! it is `.1` (a few lines, but the file is read and parsed for them), and
//! moved and dropped with it; a crash leaves a file without one at worst.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::summary;

/// When the log rotates and how much of it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The most a file grows to (a single longer line gets a file of its own).
    pub max_size: u64,
    /// Rotated files kept next to the current one.
    pub keep: u32,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation {
            max_size: DEFAULT_MAX_SIZE,
            keep: DEFAULT_KEEP,
        }
    }
}

/// 16 MiB: about 50,000 events, years of deploys for most hosts.
pub const DEFAULT_MAX_SIZE: u64 = 16 * 1024 * 1024;
pub const DEFAULT_KEEP: u32 = 5;

impl Rotation {
    /// Whether a file of `len` bytes rotates before a line of `line` bytes.
    pub fn due(&self, len: u64, line: u64) -> bool {
        len > 0 && len.saturating_add(line) > self.max_size
    }
}

/// `events.jsonl.<n>`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

/// The numbers of the rotated files next to `path`, smallest (newest) first.
fn numbers(path: &Path) -> Vec<u32> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return vec![];
    };
    let prefix = format!("{name}.");
    let mut out: Vec<u32> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// Every file of the log that exists, oldest first: `.N` ... `.1`, then
/// `path` itself.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = numbers(path).into_iter().rev().map(|n| numbered(path, n)).collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

/// Drops the rotated files numbered `keep` and up (the shift would push
/// them past it), shifts the others up by one and renames `path` to `.1`,
/// each with its summary, then writes the summary of the new `.1`. With
/// `keep` 0 the current file is dropped. A file longer than
/// `summarise_up_to` (a log blown up by hand or on purpose, far past
/// `max_size`) gets no summary: it is not read whole to make one, and
/// `history --since` parses it instead.
pub fn rotate(path: &Path, keep: u32, summarise_up_to: u64) -> std::io::Result<()> {
    for n in numbers(path).into_iter().filter(|n| *n >= keep) {
        ignore_missing(std::fs::remove_file(numbered(path, n)))?;
        ignore_missing(std::fs::remove_file(summary::path_of(&numbered(path, n))))?;
    }
    if keep == 0 {
        return ignore_missing(std::fs::remove_file(path));
    }
    for n in (1..keep).rev() {
        shift(&numbered(path, n), &numbered(path, n + 1))?;
    }
    ignore_missing(std::fs::rename(path, numbered(path, 1)))?;
    let first = numbered(path, 1);
    if std::fs::metadata(&first).is_ok_and(|m| m.len() > summarise_up_to) {
        tracing::warn!(file = %first.display(), "event log file too large to summarise; history --since reads it whole");
        return Ok(());
    }
    if let Err(e) = summary::write(&first) {
        // Readers then parse the file itself: slower, the same answer.
        tracing::warn!(file = %first.display(), error = %e, "event log summary not written");
    }
    Ok(())
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames a rotated file and its summary; a summary whose file is
/// missing (a gap left by a crash) is dropped, not moved.
fn shift(from: &Path, to: &Path) -> std::io::Result<()> {
    let (summary_from, summary_to) = (summary::path_of(from), summary::path_of(to));
    match std::fs::rename(from, to) {
        Ok(()) => match std::fs::rename(&summary_from, &summary_to) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ignore_missing(std::fs::remove_file(&summary_to)),
            r => r,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ignore_missing(std::fs::remove_file(&summary_from)),
        Err(e) => Err(e),
    }
}

/// The last `bytes` of the log across its files, oldest first, and
/// whether that window starts on a line (else its first line is cut).
/// Reads only the window (plus one byte), from the files' ends. A file
/// starts on a line: rotation happens between whole lines.
pub fn tail(path: &Path, bytes: u64) -> std::io::Result<(Vec<u8>, bool)> {
    let newest_first: Vec<PathBuf> = files(path).into_iter().rev().collect();
    if newest_first.is_empty() {
        // As reading a missing log would: NotFound.
        std::fs::File::open(path)?;
    }
    let (mut parts, mut left, mut on_line) = (vec![], bytes, true);
    for file in &newest_first {
        if left == 0 {
            break;
        }
        let Ok(mut f) = std::fs::File::open(file) else { continue };
        let len = f.metadata()?.len();
        // One byte early: when it is a newline, the window starts on a line.
        let start = len.saturating_sub(left.saturating_add(1));
        f.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        f.take(len - start).read_to_end(&mut buf)?;
        if start > 0 || buf.len() as u64 > left {
            on_line = buf.first() == Some(&b'\n');
            buf.remove(0);
            parts.push(buf);
            break;
        }
        left -= buf.len() as u64;
        parts.push(buf);
    }
    parts.reverse();
    Ok((parts.concat(), on_line))
}

/// The last byte of the file, read alone (the log may be huge).
pub fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn rotation_shifts_the_files_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        for i in 1..=4 {
            write(&log, &format!("{i}\n"));
            rotate(&log, 2, u64::MAX).unwrap();
        }
        assert!(!log.exists());
        let names: Vec<String> = files(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["events.jsonl.2", "events.jsonl.1"]);
        assert_eq!(std::fs::read_to_string(numbered(&log, 2)).unwrap(), "3\n");
        assert_eq!(std::fs::read_to_string(numbered(&log, 1)).unwrap(), "4\n");
        // A gap left by a crash mid-rotation, and files past a lowered keep.
        write(&log, "5\n");
        write(&numbered(&log, 7), "old\n");
        std::fs::remove_file(numbered(&log, 1)).unwrap();
        let names: Vec<String> = files(&log)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["events.jsonl.7", "events.jsonl.2", "events.jsonl"]);
        rotate(&log, 2, u64::MAX).unwrap();
        assert_eq!(std::fs::read_to_string(numbered(&log, 1)).unwrap(), "5\n");
        // .2 was due to be dropped by this rotation's shift; past keep: dropped.
        assert!(!numbered(&log, 2).exists() && !numbered(&log, 7).exists());
        rotate(&log, 0, u64::MAX).unwrap();
    }

    #[test]
    fn each_rotated_file_gets_a_summary_that_moves_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        let line = |i: u32| {
            format!("{{\"time\":\"2026-12-06T10:00:0{i}.000Z\",\"commit\":\"c{i}\",\"service\":\"web\",\"step\":\"deploy\",\"result\":\"ok\",\"duration_ms\":5}}\n")
        };
        let names = || {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        for i in 1..=3 {
            write(&log, &line(i));
            rotate(&log, 2, u64::MAX).unwrap();
        }
        // keep 2 dropped the first file and its summary.
        let two = numbered(&log, 2);
        assert_eq!(
            names(),
            [
                "events.jsonl.1",
                "events.jsonl.1.summary.json",
                "events.jsonl.2",
                "events.jsonl.2.summary.json"
            ]
        );
        let s = summary::read(&two).expect("a sound summary");
        assert_eq!(s.latest.as_deref(), Some("2026-12-06T10:00:02.000000000Z"));
        // Not the file's (it grew), or not JSON: no summary.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&two)
            .unwrap()
            .write_all(line(4).as_bytes())
            .unwrap();
        assert_eq!(summary::read(&two), None);
        write(&summary::path_of(&numbered(&log, 1)), "{\"version\":1,");
        assert_eq!(summary::read(&numbered(&log, 1)), None);
        // A file rotated without one (an older teal) gets none moved onto it.
        std::fs::remove_file(summary::path_of(&numbered(&log, 1))).unwrap();
        write(&log, &line(5));
        rotate(&log, 3, u64::MAX).unwrap();
        assert_eq!(
            names(),
            [
                "events.jsonl.1",
                "events.jsonl.1.summary.json",
                "events.jsonl.2",
                "events.jsonl.3",
                "events.jsonl.3.summary.json"
            ]
        );
        assert!(summary::read(&numbered(&log, 1)).is_some());
        // A file past the bound is not read to be summed up.
        write(&log, &line(6));
        rotate(&log, 3, 10).unwrap();
        assert!(!summary::path_of(&numbered(&log, 1)).exists());
        rotate(&log, 0, u64::MAX).unwrap();
    }

    #[test]
    fn due_when_the_line_would_pass_the_size_never_for_an_empty_file() {
        let r = Rotation { max_size: 100, keep: 1 };
        assert!(!r.due(60, 40));
        assert!(r.due(61, 40));
        assert!(!r.due(0, 500), "a line longer than max_size gets a file of its own");
    }

    #[test]
    fn the_tail_spans_files_and_reads_only_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.jsonl");
        write(&numbered(&log, 2), "aaaa\n");
        write(&numbered(&log, 1), "bbbb\n");
        write(&log, "cc\n");
        assert_eq!(tail(&log, 4).unwrap(), (b"\ncc\n".to_vec(), false));
        assert_eq!(tail(&log, 5).unwrap(), (b"b\ncc\n".to_vec(), false));
        assert_eq!(tail(&log, 8).unwrap(), (b"bbbb\ncc\n".to_vec(), true));
        assert_eq!(tail(&log, 9).unwrap(), (b"\nbbbb\ncc\n".to_vec(), false));
        assert_eq!(tail(&log, 13).unwrap(), (b"aaaa\nbbbb\ncc\n".to_vec(), true));
        assert_eq!(tail(&log, 100).unwrap(), (b"aaaa\nbbbb\ncc\n".to_vec(), true));
        assert_eq!(last_byte(&log).unwrap(), Some(b'\n'));
        let missing = dir.path().join("none.jsonl");
        assert_eq!(tail(&missing, 10).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}
