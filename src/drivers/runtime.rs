//! Who runs the replicas (`docker.mode`): containers on this engine, or
//! the tasks of Swarm services. The engine and the observer call this
//! dispatch and never ask which one it is, except for a rolling update,
//! which replaces replicas in a way of each runtime's own.

use std::collections::BTreeMap;
use std::time::Duration;

use super::docker::{Containers, DockerDriver, DockerError};
use super::swarm::SwarmDriver;
use crate::config::DockerMode;
use crate::plan::ObservedContainer;
use crate::spec::container::ContainerSpec;
use crate::spec::{Color, PerColor, Service};

/// The replicas' driver of one host.
#[derive(Debug, Clone)]
pub enum Runtime {
    Engine(DockerDriver),
    Swarm(SwarmDriver),
}

impl Runtime {
    pub fn mode(&self) -> DockerMode {
        match self {
            Runtime::Engine(_) => DockerMode::Engine,
            Runtime::Swarm(_) => DockerMode::Swarm,
        }
    }

    /// The engine connection (images, exec, the demo).
    pub fn docker(&self) -> &DockerDriver {
        match self {
            Runtime::Engine(d) => d,
            Runtime::Swarm(s) => s.docker(),
        }
    }

    /// Every replica teal owns, per service and color.
    pub async fn observe(&self) -> Result<Containers, DockerError> {
        match self {
            Runtime::Engine(d) => d.observe().await,
            Runtime::Swarm(s) => s.observe().await,
        }
    }

    /// One service's replicas, per color, fresh: what a step needs.
    pub async fn observe_service(&self, service: &str) -> Result<PerColor<Vec<ObservedContainer>>, DockerError> {
        match self {
            Runtime::Engine(d) => d.observe_service(service).await,
            Runtime::Swarm(s) => s.observe_service(service).await,
        }
    }

    /// `observe` for an idle pass: an engine's last listing while no
    /// container event came since (`DockerDriver::observe_idle`).
    pub async fn observe_idle(&self) -> Result<Containers, DockerError> {
        match self {
            Runtime::Engine(d) => d.observe_idle().await,
            Runtime::Swarm(s) => s.observe().await,
        }
    }

    /// Follows the engine's container events for `observe_idle` (engine
    /// mode; Swarm lists its tasks each pass).
    pub fn with_watch(self) -> Runtime {
        match self {
            Runtime::Engine(d) => Runtime::Engine(d.with_watch()),
            swarm => swarm,
        }
    }

    /// Pulls `image` on this engine. In swarm mode each node pulls what its
    /// tasks need; the manager's pull only fails early on a bad reference.
    /// Returns the registry digest the local image was pulled at, if any.
    pub async fn pull(&self, image: &str, on_progress: impl FnMut(String)) -> Result<Option<String>, DockerError> {
        self.docker().pull(image, on_progress).await
    }

    /// Makes replicas `0..replicas` of `spec` exist and run.
    pub async fn ensure_color(
        &self,
        spec: &ContainerSpec,
        replicas: u32,
        placement: &BTreeMap<String, String>,
        commit: &str,
    ) -> Result<(), DockerError> {
        match self {
            Runtime::Engine(d) => d.ensure_color(spec, replicas, commit).await.map(|_| ()),
            Runtime::Swarm(s) => s.ensure_color(spec, replicas, placement, commit).await,
        }
    }

    /// Waits (at most `deadline`) until the color's replicas run the
    /// desired spec. Containers run once created; Swarm tasks are
    /// scheduled, pulled and started after the service changed.
    pub async fn settle(&self, svc: &Service, color: Color, deadline: Duration) -> Result<(), DockerError> {
        match (self, ContainerSpec::of(svc, color)) {
            (Runtime::Swarm(s), Some(spec)) => {
                s.settle(&svc.name, color, false, &spec.hash(), svc.replicas, deadline)
                    .await
            }
            _ => Ok(()),
        }
    }

    /// Stops and removes replicas of `color` from index `keep` on.
    pub async fn remove_replicas(&self, service: &str, color: Color, keep: u32) -> Result<(), DockerError> {
        match self {
            Runtime::Engine(d) => d.remove_replicas(service, color, keep).await,
            Runtime::Swarm(s) => s.scale(service, color, keep).await,
        }
    }

    /// Stops every replica of `color`, keeping what a restart needs.
    pub async fn stop_color(&self, service: &str, color: Color) -> Result<(), DockerError> {
        match self {
            Runtime::Engine(d) => d.stop_color(service, color).await,
            Runtime::Swarm(s) => s.scale(service, color, 0).await,
        }
    }

    pub async fn remove_color(&self, service: &str, color: Color) -> Result<(), DockerError> {
        match self {
            Runtime::Engine(d) => d.remove_color(service, color).await,
            Runtime::Swarm(s) => s.remove_color(service, color).await,
        }
    }

    pub async fn remove_service(&self, service: &str) -> Result<(), DockerError> {
        match self {
            Runtime::Engine(d) => d.remove_service(service).await,
            Runtime::Swarm(s) => s.remove_service(service).await,
        }
    }

    /// The running replicas of `color` at rest (no `-next` twins), below
    /// `replicas`: what takes checks and traffic.
    pub async fn serving(&self, svc: &Service, color: Color) -> Result<Vec<ObservedContainer>, DockerError> {
        Ok(std::mem::take(self.serving_both(svc).await?.get_mut(color)))
    }

    /// `serving` of both colors: an engine's replicas inspected by name,
    /// a Swarm service's tasks from one listing.
    pub async fn serving_both(&self, svc: &Service) -> Result<PerColor<Vec<ObservedContainer>>, DockerError> {
        let mut observed = match self {
            Runtime::Engine(d) => d.replicas(&svc.name, svc.replicas).await?,
            Runtime::Swarm(s) => s.observe_service(&svc.name).await?,
        };
        for c in Color::ALL {
            observed
                .get_mut(c)
                .retain(|o| o.running && o.replica < svc.replicas && o.at_rest(&svc.name, c));
        }
        Ok(observed)
    }
}
