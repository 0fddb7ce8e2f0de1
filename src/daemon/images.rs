//! Image cleanup in the daemon: after a pass that converged, and only
//! when a deploy ran since the last cleanup (or none ran yet since the
//! start), `Host::cleanup` removes the deployed images no longer needed;
//! the status and metrics show what it kept and freed, and the space left.

use tracing::warn;

use super::Daemon;
use crate::reconcile::Revision;
use crate::status::ImagesStatus;

impl Daemon {
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
