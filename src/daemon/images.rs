//! Image cleanup in the daemon: after a pass that converged, and only
//! when a deploy ran since the last cleanup (or none ran yet since the
//! start), `Host::cleanup` removes the deployed images no longer needed;
//! the status and metrics show what it kept and freed, and the space left.

use tracing::warn;

use super::Daemon;
use crate::reconcile::Revision;
use crate::status::ImagesStatus;

/// How often the registry is asked whether pinned tags moved (besides
/// the first pass and after each deploy).
const MOVED_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl Daemon {
    /// Asks the registries whether the tags this host pinned moved, when
    /// due, and shows it per color in the status (and once in the log).
    pub(super) async fn moved(&mut self, rev: &Revision) {
        let due = self.images_due || self.moved_at.is_none_or(|t| t.elapsed() >= MOVED_EVERY);
        if !due {
            return;
        }
        self.moved_at = Some(std::time::Instant::now());
        let moved = crate::reconcile::moved::follow(&self.host.config, &rev.desired).await;
        let mut status = self.shared.status.write().expect("status lock");
        for (name, s) in status.services.iter_mut() {
            for c in crate::spec::Color::ALL {
                let now = moved
                    .iter()
                    .find(|m| &m.service == name && m.color == c)
                    .map(|m| m.now.clone());
                if now.is_some() && s.moved.get(c) != &now {
                    if let Some(m) = moved.iter().find(|m| &m.service == name && m.color == c) {
                        tracing::info!(service = %name, "{}; the color keeps running what it pinned", m.line());
                    }
                }
                *s.moved.get_mut(c) = now;
            }
        }
    }

    /// Cleans up when due; `converged`: the pass met no problem.
    pub(super) async fn images(&mut self, rev: &Revision, converged: bool) {
        if !(converged && self.images_due) {
            return;
        }
        let st = match self.host.cleanup(&rev.desired, false).await {
            Ok(c) => {
                self.images_due = false;
                let mut m = self.shared.metrics.write().expect("metrics lock");
                m.images_kept_bytes = Some(c.kept_bytes);
                m.docker_disk_free_bytes = c.disk_free;
                ImagesStatus {
                    kept: c.kept,
                    kept_bytes: c.kept_bytes,
                    removed: c.removed.into_iter().map(|r| r.1).collect(),
                    disk_free_bytes: c.disk_free,
                    error: None,
                }
            }
            Err(e) => {
                warn!(error = %e, "image cleanup did not run through; tried again after the next pass");
                ImagesStatus {
                    error: Some(e.to_string()),
                    ..Default::default()
                }
            }
        };
        self.shared.status.write().expect("status lock").images = Some(st);
    }
}
