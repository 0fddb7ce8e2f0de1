//! Reading what runs: every container teal labelled, as plain observed
//! data per service and color. Containers of other owners are invisible.

use std::collections::HashMap;
use std::net::IpAddr;

use bollard::models::{ContainerSummary, EndpointSettings};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};

use super::{call, is_not_found, message, Containers, DockerDriver, DockerError};
use crate::plan::ObservedContainer;
use crate::spec::container::{container_name, labels, read_labels};
use crate::spec::{Color, PerColor};

/// Each color's replicas in replica order.
fn by_replica(per: &mut PerColor<Vec<ObservedContainer>>) {
    per.blue.sort_by_key(|c| c.replica);
    per.green.sort_by_key(|c| c.replica);
}

impl DockerDriver {
    /// Every container teal labelled, in any state, as Docker lists them now.
    pub async fn observe(&self) -> Result<Containers, DockerError> {
        let mark = self.watch.as_ref().map(|w| w.mark());
        let mut out = Containers::new();
        for c in self.list(&[]).await? {
            if let Some((service, color, obs)) = self.observed(&c) {
                out.entry(service).or_default().get_mut(color).push(obs);
            }
        }
        out.values_mut().for_each(by_replica);
        if let (Some(w), Some(m)) = (&self.watch, mark) {
            w.keep(m, &out);
        }
        Ok(out)
    }

    /// One service's containers, listed by its label alone: what a step
    /// needs. With 500 services, listing every container for each step
    /// was most of a switch's time and made a cold converge quadratic.
    pub async fn observe_service(&self, service: &str) -> Result<PerColor<Vec<ObservedContainer>>, DockerError> {
        let mut out = PerColor::<Vec<ObservedContainer>>::default();
        for c in self.list(&[(labels::SERVICE, service)]).await? {
            if let Some((_, color, obs)) = self.observed(&c).filter(|(s, _, _)| s == service) {
                out.get_mut(color).push(obs);
            }
        }
        by_replica(&mut out);
        Ok(out)
    }

    /// `observe`, or the last listing while no event of teal's containers
    /// came since and it is under a minute old (with `with_watch`).
    pub async fn observe_idle(&self) -> Result<Containers, DockerError> {
        match self.watch.as_ref().and_then(|w| w.reuse()) {
            Some(listed) => Ok(listed),
            None => self.observe().await,
        }
    }

    /// teal-labelled containers matching extra `label=value` filters.
    pub(super) async fn list(&self, extra: &[(&str, &str)]) -> Result<Vec<ContainerSummary>, DockerError> {
        let mut label = vec![
            labels::SERVICE.to_string(),
            format!("{}={}", labels::OWNER, self.network),
        ];
        label.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
        let opts = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), label)])),
            ..Default::default()
        };
        call(
            "list containers",
            "owned by this teal",
            self.client.list_containers(Some(opts)),
        )
        .await
    }

    pub(super) fn observed(&self, c: &ContainerSummary) -> Option<(String, Color, ObservedContainer)> {
        let name = c.names.as_ref()?.first()?;
        let networks = c.network_settings.as_ref().and_then(|n| n.networks.as_ref());
        let running = c.state.as_ref().is_some_and(|s| s.to_string() == "running");
        self.read(c.labels.as_ref()?, name, networks, running, c.image.as_ref())
    }

    /// The replicas `0..replicas` of each color of `service` that exist,
    /// inspected by name: Docker finds a name at once, where a listing
    /// (even filtered) goes over every container (at 500 services, most
    /// of a switch's time). Containers of other owners are left out.
    pub async fn replicas(
        &self,
        service: &str,
        replicas: u32,
    ) -> Result<PerColor<Vec<ObservedContainer>>, DockerError> {
        let names = Color::ALL
            .iter()
            .flat_map(|c| (0..replicas).map(move |n| container_name(service, *c, n)));
        let found = futures_util::future::join_all(names.map(|name| async move {
            match self
                .client
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await
            {
                Ok(c) => Ok(Some(c)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(DockerError::Api {
                    action: "inspect container",
                    target: name,
                    message: message(&e),
                }),
            }
        }))
        .await;
        let mut out = PerColor::<Vec<ObservedContainer>>::default();
        for c in found.into_iter().collect::<Result<Vec<_>, _>>()?.into_iter().flatten() {
            let (Some(labels), Some(name)) = (c.config.as_ref().and_then(|c| c.labels.as_ref()), c.name.as_ref())
            else {
                continue;
            };
            let networks = c.network_settings.as_ref().and_then(|n| n.networks.as_ref());
            let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
            let owned = labels.get(labels::OWNER) == Some(&self.network);
            if let Some((_, color, obs)) = self
                .read(labels, name, networks, running, c.image.as_ref())
                .filter(|(s, _, _)| owned && s == service)
            {
                out.get_mut(color).push(obs);
            }
        }
        by_replica(&mut out);
        Ok(out)
    }

    /// A container as observed data, from its labels, name, networks and state.
    fn read(
        &self,
        l: &HashMap<String, String>,
        name: &str,
        networks: Option<&HashMap<String, EndpointSettings>>,
        running: bool,
        image: Option<&String>,
    ) -> Option<(String, Color, ObservedContainer)> {
        let service = l.get(labels::SERVICE)?.clone();
        let color: Color = l.get(labels::COLOR)?.parse().ok()?;
        let replica = l.get(labels::REPLICA).and_then(|r| r.parse().ok()).unwrap_or(u32::MAX);
        let name = name.trim_start_matches('/').to_string();
        let addr = networks
            .and_then(|n| {
                // The managed network, else the one the spec named.
                let ip = |e: &EndpointSettings| e.ip_address.clone().filter(|ip| !ip.is_empty());
                n.get(&self.network).and_then(ip).or_else(|| n.values().find_map(ip))
            })
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let (spec_hash, spec) = read_labels(
            l.get(labels::SPEC_JSON),
            l.get(labels::SPEC).map_or("", |h| h),
            &self.env_key,
        );
        let obs = ObservedContainer {
            name,
            replica,
            image: l.get(labels::IMAGE).or(image).cloned().unwrap_or_default(),
            spec_hash,
            running,
            commit: l.get(labels::COMMIT).cloned(),
            addr: addr.filter(|_| running),
            port: None,
            node: None,
            spec,
            twin: false,
        };
        Some((service, color, obs))
    }

    pub(super) async fn of_color(
        &self,
        service: &str,
        color: Option<Color>,
    ) -> Result<Vec<(String, u32, bool)>, DockerError> {
        let c = color.map(|c| c.to_string());
        let mut filters = vec![(labels::SERVICE, service)];
        if let Some(c) = &c {
            filters.push((labels::COLOR, c.as_str()));
        }
        let found = self.list(&filters).await?;
        Ok(found
            .iter()
            .filter_map(|s| self.observed(s))
            .map(|(_, _, o)| (o.name, o.replica, o.running))
            .collect())
    }
}
