//! No bind source below another read-write bind source. Docker resolves a
//! bind's source path afresh at every container start, so a container that
//! may write to a directory could replace a sub-directory of it with a
//! symlink (to `/`, say), and a bind of that sub-directory would mount
//! wherever the link points at its next start, outside the policy that
//! admitted the path. Read-write binds that sit side by side, or the very
//! same directory mounted twice, give no container a path component of
//! another bind to replace: a mount's own root cannot be renamed or removed
//! from inside the container.

use std::path::PathBuf;

use crate::spec::locate::Locator;
use crate::spec::{Diagnostic, Service};

use super::{normalize, Host};

/// One bind mount of one service, where it is written.
pub(super) struct Bind {
    service: String,
    file: String,
    line: usize,
    col: usize,
    source: String,
    lexical: PathBuf,
    real: PathBuf,
    read_write: bool,
}

impl Bind {
    /// Volume `i` of `svc`, when it is a bind mount (a host path).
    /// `loc` parses the service's file for the position, when asked.
    pub(super) fn of<'l>(svc: &Service, i: usize, loc: impl FnOnce() -> &'l Locator, host: &Host<'_>) -> Option<Bind> {
        let v = svc.volumes.get(i)?;
        let mut parts = v.split(':');
        let source = parts.next()?;
        if !source.starts_with('/') {
            return None;
        }
        let read_write = parts.nth(1) != Some("ro");
        let lexical = normalize(std::path::Path::new(source));
        let (line, col) = loc().pos(&["volumes", &i.to_string()]);
        Some(Bind {
            service: svc.name.clone(),
            file: svc.file.clone(),
            line,
            col,
            source: source.to_string(),
            real: (host.resolve)(&lexical),
            lexical,
            read_write,
        })
    }

    /// Whether `self` is strictly below `other`, as written or resolved.
    fn below(&self, other: &Bind) -> bool {
        let under = |a: &PathBuf, b: &PathBuf| a != b && a.starts_with(b);
        under(&self.lexical, &other.lexical) || under(&self.real, &other.real)
    }
}

/// A diagnostic at each bind that lies below a read-write bind of any
/// service (its own included), naming the first such bind.
pub(super) fn check(binds: &[Bind]) -> Vec<Diagnostic> {
    binds
        .iter()
        .filter_map(|b| {
            let rw = binds.iter().find(|rw| rw.read_write && b.below(rw))?;
            Some(Diagnostic::new(
                &b.file,
                b.line,
                b.col,
                format!(
                    "bind source {} is inside {}, which {}:{}:{} (service {}) mounts read-write: a container of {} could replace a directory there with a symlink, and Docker would mount wherever it points at this container's next start; mount {} read-only ({}:<target>:ro), or use directories side by side instead of one inside the other",
                    b.source, rw.source, rw.file, rw.line, rw.col, rw.service, rw.service, rw.source, rw.source
                ),
            ))
        })
        .collect()
}
