//! Observed state: what Docker and the proxy report, as plain data. The
//! drivers fill it on a live host; `diff` synthesises it from the base
//! revision as if that revision were fully converged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::spec::container::ContainerSpec;
use crate::spec::{Color, Desired, PerColor};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observed {
    pub services: BTreeMap<String, ObservedService>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ObservedService {
    /// The color the proxy sends traffic to; `None` when not routed.
    pub live: Option<Color>,
    /// Containers teal labelled for this service, per color, sorted by replica.
    pub containers: PerColor<Vec<ObservedContainer>>,
    /// Hash of the route the proxy serves for this service (see
    /// `plan::route_hash`); `None` when the proxy has no entry. A value that
    /// differs from the desired one means the route must be rewritten.
    pub route_hash: Option<String>,
    /// The proxy's entry was edited by hand: it is rewritten.
    pub route_drifted: bool,
    /// A color that takes traffic is served by other addresses than its
    /// running replicas (a container restarted with a new address).
    pub stale_peers: bool,
    /// Share of requests per color as the proxy reports it (100/0 outside
    /// a canary).
    pub weights: PerColor<u32>,
    /// The last rollout of this service that analysis rolled back, as
    /// recorded in the state dir: the same service is not tried again.
    pub rolled_back: Option<RolledBack>,
}

/// A rollout that analysis aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    pub commit: String,
    /// `plan::service_hash` of the desired service that was rolled back.
    pub service_hash: String,
    /// The measured figures, e.g. "5xx 23.1 % of 212 responses > 5 %".
    pub figures: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObservedContainer {
    pub name: String,
    pub replica: u32,
    pub image: String,
    /// The `teal.spec` label.
    pub spec_hash: String,
    pub running: bool,
    /// The `teal.commit` label.
    pub commit: Option<String>,
    /// Address on the managed network, when running; for a Swarm task,
    /// the address of its node.
    pub addr: Option<IpAddr>,
    /// A Swarm task's port published on its node (`mode=host`); `None`:
    /// the service's own port at `addr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The Swarm node a task runs on; `None` in engine mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The spec it was created from (the `teal.spec.json` label), so a
    /// refusal can name the fields that changed; `None` when absent.
    #[serde(skip)]
    pub spec: Option<ContainerSpec>,
    /// A task of the Swarm service a rolling update brings up beside the
    /// color's own (the role of engine mode's `-next` containers).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub twin: bool,
}

impl ObservedContainer {
    /// Where requests for this replica go: its address and the service's
    /// port, or a Swarm task's published port on its node.
    pub fn endpoint(&self, service_port: u16) -> Option<std::net::SocketAddr> {
        self.addr
            .map(|a| std::net::SocketAddr::new(a, self.port.unwrap_or(service_port)))
    }

    /// A replica at rest: under its canonical name (not the `-next` twin a
    /// rolling update creates), or a task of the color's own Swarm service
    /// (not of the twin service a rolling update brings up).
    pub fn at_rest(&self, service: &str, color: Color) -> bool {
        !self.twin
            && (self.node.is_some()
                || self.name == crate::spec::container::container_name(service, color, self.replica))
    }
}

impl Observed {
    /// What a host would report after fully converging `desired`: each color
    /// with an image has its replicas (the idle one stopped unless
    /// `keep_idle`), and the proxy routes to the active color.
    pub fn converged(desired: &Desired) -> Observed {
        let mut services = BTreeMap::new();
        for (name, svc) in &desired.services {
            let mut obs = ObservedService {
                live: Some(svc.active),
                route_hash: Some(super::route_hash(svc)),
                ..Default::default()
            };
            *obs.weights.get_mut(svc.active) = 100;
            for color in Color::ALL {
                let running = color == svc.active || svc.switch.keep_idle;
                let Some(spec) = ContainerSpec::of(svc, color) else {
                    continue;
                };
                let hash = spec.hash();
                *obs.containers.get_mut(color) = (0..svc.replicas)
                    .map(|n| ObservedContainer {
                        name: spec.container_name(n),
                        replica: n,
                        image: spec.image.clone(),
                        spec_hash: hash.clone(),
                        running,
                        commit: None,
                        addr: None,
                        port: None,
                        node: None,
                        spec: Some(spec.clone()),
                        twin: false,
                    })
                    .collect();
            }
            services.insert(name.clone(), obs);
        }
        Observed { services }
    }
}
