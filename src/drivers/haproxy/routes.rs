//! The routes teal's config file records, parsed once per version of the
//! file: at 500 services hashing its body (to see a hand edit) and
//! parsing 500 route records took a good part of each pass. A version is
//! known by its length, inode and mtime: teal's own writes replace the
//! file (a new inode), and a hand edit moves the mtime. What teal wrote
//! itself is kept as written, not read back.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::render::ROUTE;
use crate::drivers::reload::{read_opt, sha256};
use crate::drivers::route::{ProxyError, RouteSpec};

/// The routes, and whether the body was edited by hand.
pub(crate) type Routes = (BTreeMap<String, RouteSpec>, bool);

#[derive(Debug, Default)]
pub(super) struct Parsed {
    last: Mutex<Option<Cached>>,
}

/// One version of the file: its routes and text, and whether this teal
/// wrote it (then a switch may splice into it: `splice`).
#[derive(Debug, Clone)]
struct Cached {
    version: Version,
    routes: Routes,
    text: Arc<str>,
    own: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    /// The first line: the body's hash (and so a new header for each of
    /// teal's renders), where inode and mtime could repeat (an inode
    /// reused, two writes within one tick of the file clock).
    header: String,
    len: u64,
    ino: u64,
    mtime: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata, header: &str) -> Version {
        Version {
            header: header.to_string(),
            len: meta.len(),
            ino: meta.ino(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// The first line of the file at `path` (its first 256 bytes at most).
fn first_line(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut head = [0u8; 256];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = String::from_utf8_lossy(&head[..n]);
    Ok(head.split('\n').next().unwrap_or_default().to_string())
}

/// The file as read: its routes, its text, and whether this teal wrote it.
pub(super) struct Read {
    pub routes: BTreeMap<String, RouteSpec>,
    pub drifted: bool,
    pub text: Arc<str>,
    pub own: bool,
}

impl Parsed {
    /// The routes of the file at `path` as it is now (none when missing).
    pub(super) fn read(&self, path: &Path) -> Result<Routes, ProxyError> {
        let r = self.read_text(path)?;
        Ok((r.routes, r.drifted))
    }

    /// `read`, with the file's text (empty when missing).
    pub(super) fn read_text(&self, path: &Path) -> Result<Read, ProxyError> {
        self.load(path, false)
    }

    /// `read_text` for a change that will write the file (and say so with
    /// `wrote`): the routes are moved out of the cache, not copied.
    pub(super) fn take_text(&self, path: &Path) -> Result<Read, ProxyError> {
        self.load(path, true)
    }

    fn load(&self, path: &Path, take: bool) -> Result<Read, ProxyError> {
        let io = |source| ProxyError::Io {
            path: path.display().to_string(),
            source,
        };
        let none = || Read {
            routes: BTreeMap::new(),
            drifted: false,
            text: Arc::from(""),
            own: false,
        };
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(none()),
            Err(e) => return Err(io(e)),
        };
        let header = match first_line(path) {
            Ok(h) => h,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(none()),
            Err(e) => return Err(io(e)),
        };
        let version = Version::of(&meta, &header);
        let mut last = self.last.lock().expect("routes lock");
        if last.as_ref().is_some_and(|c| c.version == version) {
            let c = match take {
                true => last.take().expect("checked above"),
                false => last.clone().expect("checked above"),
            };
            return Ok(Read {
                routes: c.routes.0,
                drifted: c.routes.1,
                text: c.text,
                own: c.own,
            });
        }
        let Some(text) = read_opt(path)? else {
            return Ok(none());
        };
        let (first, body) = text.split_once('\n').unwrap_or(("", ""));
        let drifted = first.rsplit("sha256=").next().map(str::trim) != Some(sha256(body).as_str());
        let same = version.len == text.len() as u64 && first == header;
        let routes: BTreeMap<String, RouteSpec> = text
            .lines()
            .filter_map(|l| l.strip_prefix(ROUTE))
            .filter_map(|j| serde_json::from_str::<RouteSpec>(j).ok())
            .map(|r| (r.service.clone(), r))
            .collect();
        let text: Arc<str> = Arc::from(text);
        // The metadata was read first: a file replaced in between has
        // other metadata at the next read, which parses it again.
        if same && !take {
            *last = Some(Cached {
                version,
                routes: (routes.clone(), drifted),
                text: text.clone(),
                own: false,
            });
        }
        Ok(Read {
            routes,
            drifted,
            text,
            own: false,
        })
    }

    /// Remembers what this teal just wrote to `path`: `text`, recording
    /// `routes`. The next read takes them without reading the file, as long
    /// as the file is still that version.
    pub(super) fn wrote(&self, path: &Path, text: Arc<str>, routes: BTreeMap<String, RouteSpec>) {
        let mut last = self.last.lock().expect("routes lock");
        *last = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == text.len() as u64 => Some(Cached {
                version: Version::of(&meta, text.split('\n').next().unwrap_or_default()),
                routes: (routes, false),
                text,
                own: true,
            }),
            _ => None,
        };
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
        // length, inode and mtime (the mtime put back by hand) goes
        // unseen, which is what the version stands for.
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

    #[test]
    fn what_teal_wrote_is_its_own_until_someone_else_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("teal.cfg");
        let parsed = Parsed::default();
        let text = file(&["a"]);
        crate::drivers::reload::write_atomic(&path, &text).unwrap();
        assert!(!parsed.read_text(&path).unwrap().own, "read, not written");
        let routes = parsed.read(&path).unwrap().0;
        parsed.wrote(&path, Arc::from(text.as_str()), routes);
        let r = parsed.read_text(&path).unwrap();
        assert!(r.own && !r.drifted);
        assert_eq!(&*r.text, text.as_str());
        // A change takes the routes out; until it says what it wrote, the
        // file is read again and is nobody's own.
        let taken = parsed.take_text(&path).unwrap();
        assert!(taken.own && taken.routes.contains_key("a"));
        assert!(!parsed.read_text(&path).unwrap().own);
        parsed.wrote(&path, taken.text, taken.routes);
        assert!(parsed.read_text(&path).unwrap().own);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, text.replace("a.test", "x.test")).unwrap();
        let r = parsed.read_text(&path).unwrap();
        assert!(!r.own && r.drifted, "a hand edit is nobody's to splice into");
        assert_eq!(r.routes["a"].host, "x.test");
    }
}
