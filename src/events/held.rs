//! Lines the disk could not take yet. When `state_dir` is full, an append
//! fails: a part of the line may have been written, and the event would be
//! lost. The writer cuts the file back to where the line began (no torn
//! line sits in the middle of the log), keeps the line in memory, and the
//! next append (or the daemon's next pass, `EventLog::flush_held`) writes
//! every held line first, in order. Memory is bounded: past `MAX_HELD`
//! bytes, newer lines are counted and dropped, and the count is logged once
//! the disk takes lines again.

use std::io::Write;
use std::path::Path;

use super::rotate::{self, Rotation};

/// The most held in memory: about 3,000 events.
pub const MAX_HELD: usize = 1 << 20;

/// The lines not written yet, in order, and how many were dropped.
#[derive(Debug, Default)]
pub struct Held {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Held {
    /// Holds `line` (ending in a newline) to be written next, if it fits.
    pub fn push(&mut self, line: &[u8]) {
        if self.bytes.len() + line.len() > MAX_HELD {
            self.dropped += 1;
        } else {
            self.bytes.extend_from_slice(line);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends the held lines to `path` with one write, rotating first when
    /// they would take it past its size. A failed write is cut off and the
    /// lines stay held; written, they are let go.
    pub fn write(&mut self, path: &Path, rotation: &Rotation) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        if rotation.due(len, self.bytes.len() as u64) {
            // A file rotates as its next line would pass `max_size`: one
            // far longer was not written by this rotation (see `rotate`).
            rotate::rotate(path, rotation.keep, rotation.max_size.saturating_mul(2))?;
        }
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        if let Err(e) = f.write_all(&self.bytes).and_then(|()| f.flush()) {
            // What went in of it is cut off again. Should that fail too,
            // the reader skips the torn line and `EventLog::open` fences it.
            let _ = f.set_len(len);
            return Err(e);
        }
        if self.dropped > 0 {
            tracing::warn!(
                path = %path.display(),
                dropped = self.dropped,
                "the event log could not be written for a while: events past the first {MAX_HELD} bytes were dropped"
            );
        }
        *self = Held::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_lines_are_written_in_order_once_the_file_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        // A directory in the way: every write fails, as on a full disk.
        std::fs::create_dir(&path).unwrap();
        let mut held = Held::default();
        held.push(b"one\n");
        assert!(held.write(&path, &Rotation::default()).is_err());
        held.push(b"two\n");
        assert!(held.write(&path, &Rotation::default()).is_err());
        std::fs::remove_dir(&path).unwrap();
        held.write(&path, &Rotation::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert!(held.is_empty());
    }

    #[test]
    fn past_the_bound_new_lines_are_counted_not_held() {
        let mut held = Held::default();
        let line = vec![b'x'; 1000];
        for _ in 0..MAX_HELD / 1000 + 5 {
            held.push(&line);
        }
        assert!(held.bytes.len() <= MAX_HELD);
        assert_eq!(held.dropped, 5);
    }
}
