//! Pulls that pin: the first pull of a tag records the registry digest it
//! resolved to (`crate::pins`); later pulls and every color start of that
//! tag use the recorded digest, pulling it by digest when it is missing.
//! Engine mode only: a Swarm service pins its image itself when created.

use super::{Engine, StepError};
use crate::drivers::runtime::Runtime;
use crate::pins::{has_digest, pinned, Pins};
use crate::spec::container::ContainerSpec;
use crate::spec::{PullPolicy, Service};

impl Engine<'_> {
    fn pins(&self) -> Option<Pins> {
        matches!(self.docker, Runtime::Engine(_)).then(|| Pins::new(self.records.state_dir()))
    }

    /// The `PullImage` step; its note names the digest the color runs.
    pub(super) async fn pull(&self, name: &str, image: &str) -> Result<Option<String>, StepError> {
        let progress = |line: String| (self.on_progress)(name, &line);
        let Some(pins) = self.pins().filter(|_| !has_digest(image)) else {
            self.docker.pull(image, progress).await?;
            return Ok(None);
        };
        if let Some(digest) = pins.get(image) {
            self.docker.pull(&pinned(image, &digest), progress).await?;
            return Ok(Some(format!("pinned to {digest}")));
        }
        let Some(digest) = self.docker.pull(image, progress).await? else {
            return Ok(None);
        };
        if let Err(e) = pins.set(image, &digest) {
            tracing::warn!(image, error = %e, "cannot record the image's digest; it runs by tag");
            return Ok(None);
        }
        Ok(Some(format!("resolved to {digest}")))
    }

    /// What a color of `image` runs: its pinned digest (pulled by digest
    /// when missing, say after a cleanup), or `None`: `image` as written.
    pub(super) async fn pinned(&self, name: &str, image: &str) -> Result<Option<String>, StepError> {
        Ok(self.pin(name, image).await?.map(|(reference, _)| reference))
    }

    /// Pins `spec` as the color runs it: the reference to create from and,
    /// with `pull: always`, the digest its spec carries (so the label's
    /// hash is the one the planner computes with the pin).
    pub(super) async fn pin_spec(&self, svc: &Service, spec: &mut ContainerSpec) -> Result<(), StepError> {
        let pin = self.pin(&svc.name, &spec.image).await?;
        if svc.pull == PullPolicy::Always {
            spec.digest = pin.as_ref().map(|(_, d)| d.clone());
        }
        spec.run_image = pin.map(|(reference, _)| reference);
        Ok(())
    }

    async fn pin(&self, name: &str, image: &str) -> Result<Option<(String, String)>, StepError> {
        let Some(digest) = self.pins().and_then(|p| p.get(image)) else {
            return Ok(None);
        };
        let reference = pinned(image, &digest);
        self.docker
            .pull(&reference, |line| (self.on_progress)(name, &line))
            .await?;
        Ok(Some((reference, digest)))
    }
}
