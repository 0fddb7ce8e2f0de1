//! A pull's progress summed over its layers, from the engine's stream of
//! per-layer messages (`Pulling fs layer`, `Downloading` with bytes,
//! `Download complete`, `Pull complete`, `Already exists`, and the
//! image's `Digest: sha256:...`). A pure fold: the caller passes the
//! clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// At most one bytes line this often; a finished layer is always told.
const EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy)]
struct Layer {
    current: u64,
    total: u64,
    done: bool,
    /// `Already exists`: nothing was downloaded.
    cached: bool,
}

/// What a pull's stream said so far.
#[derive(Debug, Default)]
pub struct Progress {
    layers: BTreeMap<String, Layer>,
    digest: Option<String>,
    last: Option<Instant>,
}

impl Progress {
    /// Takes one message; returns a line to show when there is news.
    pub fn take(
        &mut self,
        id: Option<&str>,
        status: &str,
        current: Option<i64>,
        total: Option<i64>,
        now: Instant,
    ) -> Option<String> {
        if let Some(d) = status.strip_prefix("Digest: ") {
            self.digest = Some(d.trim().to_string());
            return None;
        }
        let id = id?;
        let bytes = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
        let layer_done = match status {
            "Pulling fs layer" | "Waiting" | "Verifying Checksum" | "Extracting" => {
                self.layers.entry(id.to_string()).or_default();
                false
            }
            "Downloading" => {
                let l = self.layers.entry(id.to_string()).or_default();
                l.current = bytes(current).unwrap_or(l.current);
                l.total = bytes(total).unwrap_or(l.total);
                false
            }
            "Download complete" => {
                let l = self.layers.entry(id.to_string()).or_default();
                l.current = l.total.max(l.current);
                false
            }
            "Pull complete" | "Already exists" => {
                let l = self.layers.entry(id.to_string()).or_default();
                let news = !l.done;
                l.done = true;
                l.cached = status == "Already exists";
                l.current = l.total.max(l.current);
                news
            }
            _ => return None,
        };
        let due = self.last.is_none_or(|t| now.duration_since(t) >= EVERY);
        if layer_done || (status == "Downloading" && due) {
            self.last = Some(now);
            return Some(self.line());
        }
        None
    }

    /// `pulling: 2 of 5 layers done, 12.3 MB of 50.1 MB`.
    pub fn line(&self) -> String {
        let done = self.layers.values().filter(|l| l.done).count();
        let (got, of) = self.bytes();
        format!(
            "pulling: {done} of {} layers done, {} of {}",
            self.layers.len(),
            mb(got),
            mb(of)
        )
    }

    /// `5 layers (1 already here), 50.1 MB downloaded`.
    pub fn summary(&self) -> String {
        let cached = self.layers.values().filter(|l| l.cached).count();
        let here = if cached > 0 {
            format!(" ({cached} already here)")
        } else {
            String::new()
        };
        format!("{} layers{here}, {} downloaded", self.layers.len(), mb(self.bytes().0))
    }

    /// The image's digest, when the engine said it.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    fn bytes(&self) -> (u64, u64) {
        self.layers
            .values()
            .filter(|l| !l.cached)
            .fold((0, 0), |(g, o), l| (g + l.current, o + l.total))
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_and_bytes_add_up_and_lines_come_per_layer_or_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Progress::default();
        assert_eq!(p.take(Some("1.4"), "Pulling from shop/web", None, None, at(0)), None);
        for id in ["a", "b", "c"] {
            assert_eq!(p.take(Some(id), "Pulling fs layer", None, None, at(0)), None);
        }
        let l = p.take(Some("a"), "Already exists", None, None, at(1));
        assert_eq!(l.as_deref(), Some("pulling: 1 of 3 layers done, 0.0 MB of 0.0 MB"));
        // Within a second of the last line: no line.
        assert_eq!(
            p.take(Some("b"), "Downloading", Some(1_000_000), Some(4_000_000), at(2)),
            None
        );
        assert_eq!(
            p.take(Some("c"), "Downloading", Some(500_000), Some(1_000_000), at(500)),
            None
        );
        let l = p.take(Some("b"), "Downloading", Some(3_000_000), Some(4_000_000), at(1_100));
        assert_eq!(l.as_deref(), Some("pulling: 1 of 3 layers done, 3.5 MB of 5.0 MB"));
        assert_eq!(p.take(Some("b"), "Download complete", None, None, at(1_200)), None);
        assert_eq!(
            p.take(Some("b"), "Extracting", Some(10), Some(4_000_000), at(1_300)),
            None
        );
        let l = p.take(Some("b"), "Pull complete", None, None, at(1_400));
        assert_eq!(l.as_deref(), Some("pulling: 2 of 3 layers done, 4.5 MB of 5.0 MB"));
        let l = p.take(Some("c"), "Pull complete", None, None, at(1_500));
        assert_eq!(l.as_deref(), Some("pulling: 3 of 3 layers done, 5.0 MB of 5.0 MB"));
        // A repeated "complete" is no news.
        assert_eq!(p.take(Some("c"), "Pull complete", None, None, at(3_000)), None);
        assert_eq!(p.take(None, "Digest: sha256:abc", None, None, at(3_000)), None);
        assert_eq!(
            p.take(None, "Status: Downloaded newer image for x", None, None, at(3_000)),
            None
        );
        assert_eq!(p.digest(), Some("sha256:abc"));
        assert_eq!(p.summary(), "3 layers (1 already here), 5.0 MB downloaded");
    }
}
