//! The canonical container spec of one color of one service, and its hash.
//!
//! The hash goes on every container as the `teal.spec` label. A running
//! container whose label differs from the desired hash is replaced. Only what
//! changes the container itself is in here: replica count and routing are not
//! (they change how many containers exist and where traffic goes, not what
//! a container is), so a pure scale or route change never restarts anything.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Color, RestartPolicy, Service};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub service: String,
    pub color: Color,
    pub image: String,
    pub port: u16,
    pub env: BTreeMap<String, String>,
    pub command: Option<Vec<String>>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    /// `None`: the host's managed network.
    pub network: Option<String>,
}

impl ContainerSpec {
    /// The spec of `color`, or `None` when that color has no image.
    pub fn of(service: &Service, color: Color) -> Option<ContainerSpec> {
        let image = service.images.get(color).clone()?;
        Some(ContainerSpec {
            service: service.name.clone(),
            color,
            image,
            port: service.port,
            env: service.env.clone(),
            command: service.command.clone(),
            volumes: service.volumes.clone(),
            labels: service.labels.clone(),
            restart: service.restart,
            network: service.network.clone(),
        })
    }

    /// sha256 (hex) of the canonical JSON of this spec. Stable across runs:
    /// every map is a BTreeMap, so the JSON key order is fixed.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("container spec serialises");
        hex::encode(Sha256::digest(&json))
    }

    /// Docker container name of replica `n`: `teal-<service>-<color>-<n>`.
    pub fn container_name(&self, n: u32) -> String {
        container_name(&self.service, self.color, n)
    }
}

/// Docker container name of replica `n`: `teal-<service>-<color>-<n>`.
pub fn container_name(service: &str, color: Color, n: u32) -> String {
    format!("teal-{service}-{color}-{n}")
}

/// Labels teal puts on what it owns.
pub mod labels {
    pub const SERVICE: &str = "teal.service";
    pub const COLOR: &str = "teal.color";
    pub const SPEC: &str = "teal.spec";
    pub const COMMIT: &str = "teal.commit";
    pub const REPLICA: &str = "teal.replica";
    /// Which teal instance owns the container: its managed network's name.
    /// Each teal observes and touches only its own containers, so two
    /// instances on one Docker host (a demo next to production, parallel
    /// tests) never act on each other's services.
    pub const OWNER: &str = "teal.owner";
    /// The image reference as written in the spec (the engine may report a digest).
    pub const IMAGE: &str = "teal.image";
}
