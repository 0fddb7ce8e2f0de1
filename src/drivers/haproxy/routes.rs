//! The routes teal's config file records, parsed once per version of the
//! file: at 500 services the file is 3.6 MiB, and hashing its body (to
//! see a hand edit) and parsing 500 route records took a good part of
//! each pass. A version is known by its first line (which carries its
//! body's hash and the token of its render), its length, inode and
//! mtime: teal's own writes replace the file (a new inode and header), and
//! a hand edit moves the mtime.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use super::render::ROUTE;
use crate::drivers::reload::{read_opt, sha256};
use crate::drivers::route::{ProxyError, RouteSpec};

/// The routes, and whether the body was edited by hand.
pub(crate) type Routes = (BTreeMap<String, RouteSpec>, bool);

#[derive(Debug, Default)]
pub(super) struct Parsed {
    last: Mutex<Option<(Version, Routes)>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    header: String,
    len: u64,
    ino: u64,
    mtime: (i64, i64),
}

impl Parsed {
    /// The routes of the file at `path` as it is now (none when missing).
    pub(super) fn read(&self, path: &Path) -> Result<Routes, ProxyError> {
        Ok(self.read_text(path)?.0)
    }

    /// `read`, and the file's text as read (empty when missing).
    pub(super) fn read_text(&self, path: &Path) -> Result<(Routes, String), ProxyError> {
        let io = |source| ProxyError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(((BTreeMap::new(), false), String::new())),
            Err(e) => return Err(io(e)),
        };
        let Some(text) = read_opt(path)? else {
            return Ok(((BTreeMap::new(), false), String::new()));
        };
        let (header, body) = text.split_once('\n').unwrap_or(("", ""));
        let version = Version {
            header: header.to_string(),
            len: text.len() as u64,
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        };
        // The metadata was read first: a file replaced in between has
        // other metadata at the next read, which parses it again.
        let same_len = meta.len() == version.len;
        let mut last = self.last.lock().expect("routes lock");
        if let Some((_, routes)) = last.as_ref().filter(|(v, _)| same_len && *v == version) {
            return Ok((routes.clone(), text));
        }
        let drifted = header.rsplit("sha256=").next().map(str::trim) != Some(sha256(body).as_str());
        let routes: BTreeMap<String, RouteSpec> = text
            .lines()
            .filter_map(|l| l.strip_prefix(ROUTE))
            .filter_map(|j| serde_json::from_str::<RouteSpec>(j).ok())
            .map(|r| (r.service.clone(), r))
            .collect();
        let parsed = (routes, drifted);
        if same_len {
            *last = Some((version, parsed.clone()));
        }
        Ok((parsed, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(routes: &[&str]) -> String {
        let mut body = String::new();
        for r in routes {
            let spec = serde_json::json!({
                "service": r, "host": format!("{r}.test"), "path": "/",
                "backends": {"blue": {"weight": 100, "addrs": []}, "green": {"weight": 0, "addrs": []}},
                "commit": "c", "route_hash": "h"
            });
            body.push_str(&format!("{ROUTE}{spec}\n"));
        }
        format!("# teal sha256={}\n{body}", sha256(&body))
    }

    #[test]
    fn a_new_version_of_the_file_is_parsed_again_and_a_hand_edit_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("teal.cfg");
        let parsed = Parsed::default();
        assert!(parsed.read(&path).unwrap().0.is_empty());
        crate::drivers::reload::write_atomic(&path, &file(&["a"])).unwrap();
        let (routes, drifted) = parsed.read(&path).unwrap();
        assert_eq!(routes.keys().collect::<Vec<_>>(), ["a"]);
        assert!(!drifted);
        // The same version is not parsed again: an edit that kept the
        // header, length, inode and mtime (the mtime put back by hand)
        // goes unseen, which is what the version stands for.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let same = std::fs::read_to_string(&path).unwrap().replace("a.test", "z.test");
        std::fs::write(&path, same).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(parsed.read(&path).unwrap().0["a"].host, "a.test", "parsed once");
        crate::drivers::reload::write_atomic(&path, &file(&["a", "b"])).unwrap();
        assert_eq!(parsed.read(&path).unwrap().0.len(), 2, "teal's next write");
        // A hand edit in place, header kept, same length.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let text = std::fs::read_to_string(&path).unwrap().replace("a.test", "x.test");
        std::fs::write(&path, text).unwrap();
        let (routes, drifted) = parsed.read(&path).unwrap();
        assert!(drifted, "the edit is seen");
        assert_eq!(routes["a"].host, "x.test");
    }
}
