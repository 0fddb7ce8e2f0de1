//! `events:` in the host config: when `state_dir/events.jsonl` rotates
//! and how many rotated files are kept (`events::rotate`). Sizes are
//! written as people write them: `16MiB`, `512KiB`, or bytes.

use serde::{Deserialize, Serialize};

use crate::events::{Rotation, DEFAULT_KEEP, DEFAULT_MAX_SIZE};

/// `events:` in the host config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The size at which events.jsonl becomes events.jsonl.1. Default 16MiB.
    #[serde(default = "default_max_size", with = "size")]
    pub max_size: u64,
    /// Rotated files kept (events.jsonl.1 ... .keep); older ones are
    /// deleted. Default 5.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for EventsConfig {
    fn default() -> EventsConfig {
        EventsConfig {
            max_size: DEFAULT_MAX_SIZE,
            keep: DEFAULT_KEEP,
        }
    }
}

impl EventsConfig {
    pub fn rotation(&self) -> Rotation {
        Rotation {
            max_size: self.max_size,
            keep: self.keep,
        }
    }
}

fn default_max_size() -> u64 {
    DEFAULT_MAX_SIZE
}
fn default_keep() -> u32 {
    DEFAULT_KEEP
}

const UNITS: [(&str, u64); 4] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];

/// `16MiB` (also `16 MiB`, `1024KiB`, `4096B`, `4096`) in bytes; at least 1 KiB.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = UNITS
        .iter()
        .find_map(|(u, n)| t.strip_suffix(u).map(|rest| (rest.trim_end(), *n)))
        .unwrap_or((t, 1));
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("invalid size {text:?}: write e.g. 16MiB, 512KiB or a number of bytes"))?;
    if bytes < 1024 {
        return Err(format!(
            "size {text:?} is under 1KiB: every few events would rotate the log"
        ));
    }
    Ok(bytes)
}

/// The largest unit that divides `bytes` exactly: `16MiB`, `1536KiB`.
pub fn format_size(bytes: u64) -> String {
    let (unit, n) = UNITS
        .iter()
        .find(|(_, n)| bytes.is_multiple_of(*n) && bytes >= *n)
        .copied()
        .unwrap_or(("B", 1));
    format!("{}{unit}", bytes / n)
}

/// `#[serde(with = "size")]`: a size string, or a bare number of bytes.
mod size {
    pub fn serialize<S: serde::Serializer>(bytes: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_size(*bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        let text = match serde::Deserialize::deserialize(d)? {
            Written::Bytes(n) => n.to_string(),
            Written::Text(t) => t,
        };
        super::parse_size(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("16 MiB"), Ok(16 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("16MB").unwrap_err().contains("write e.g. 16MiB"));
        assert!(parse_size("12").unwrap_err().contains("under 1KiB"));
        assert_eq!(format_size(16 << 20), "16MiB");
        assert_eq!(format_size(1536 << 10), "1536KiB");
        assert_eq!(format_size(1025), "1025B");
        let c: EventsConfig = serde_yaml::from_str("max_size: 2048\n").unwrap();
        assert_eq!((c.max_size, c.keep), (2048, 5));
        let e = serde_yaml::from_str::<EventsConfig>("max_size: lots\n").unwrap_err();
        assert!(e.to_string().contains("invalid size \"lots\""), "{e}");
    }
}
