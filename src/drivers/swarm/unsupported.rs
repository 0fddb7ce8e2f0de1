//! What a color's spec may not ask in swarm mode, refused before any
//! Swarm service is made.

use crate::drivers::docker::DockerError;
use crate::spec::container::ContainerSpec;

/// What a color's spec asks that its Swarm tasks cannot have: a network
/// of its own (tasks publish their port instead), or a bind mount (a task
/// runs on whichever node Swarm picks, where the manager cannot check the
/// path against the host policy; the policy refuses them at admission), or
/// a secret as env (it would be in the service's spec).
pub(super) fn unsupported(spec: &ContainerSpec) -> Result<(), DockerError> {
    let refuse = |message: String| DockerError::Swarm {
        service: spec.service.clone(),
        color: spec.color.to_string(),
        message,
    };
    if let Some(net) = &spec.network {
        return Err(refuse(format!("network: {net} is not supported in docker.mode: swarm (tasks publish their port on their node instead); remove it")));
    }
    let as_env = spec
        .secrets
        .iter()
        .find(|(_, m)| m.delivery == crate::spec::secret::Delivery::Env);
    if let Some((name, _)) = as_env {
        return Err(refuse(format!("secret {name} with as: env is not supported in docker.mode: swarm (its value would be in the service's spec); drop as: env to get it as the file /run/secrets/{name}, a Swarm secret")));
    }
    match spec.volumes.iter().find(|v| v.starts_with('/')) {
        Some(v) => Err(refuse(format!("bind mount {v} is not supported in docker.mode: swarm (a task runs on any node, where teal cannot check the path); use a named volume"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{Color, RestartPolicy};

    #[test]
    fn bind_mounts_networks_and_secrets_are_refused_in_swarm_mode() {
        let spec = |volumes: &[&str], network: Option<&str>| ContainerSpec {
            service: "web".into(),
            color: Color::Green,
            image: "web:1".into(),
            port: 8080,
            env: BTreeMap::new(),
            command: None,
            volumes: volumes.iter().map(|v| v.to_string()).collect(),
            labels: BTreeMap::new(),
            restart: RestartPolicy::UnlessStopped,
            network: network.map(String::from),
            secrets: Default::default(),
            env_key: None,
            run_image: None,
            digest: None,
        };
        assert!(unsupported(&spec(&["web-data:/data"], None)).is_ok());
        let bind = unsupported(&spec(&["web-data:/data", "/srv/web:/w:ro"], None)).unwrap_err();
        assert_eq!(
            bind.to_string(),
            "web/green: bind mount /srv/web:/w:ro is not supported in docker.mode: swarm (a task runs on any node, where teal cannot check the path); use a named volume"
        );
        assert!(unsupported(&spec(&[], Some("shop")))
            .unwrap_err()
            .to_string()
            .contains("network: shop"));
        // A secret as a file is a Swarm secret; as env it would be in the
        // service's spec: refused, naming it but not its value.
        let mut secret = spec(&[], None);
        let mount = |delivery| crate::spec::container::SecretMount {
            value: crate::spec::secret::SecretText::new("postgres://u:hunter2@db/x"),
            delivery,
        };
        secret.secrets.insert("DATABASE_URL".into(), mount(Default::default()));
        assert!(unsupported(&secret).is_ok());
        secret
            .secrets
            .insert("TOKEN".into(), mount(crate::spec::secret::Delivery::Env));
        let e = unsupported(&secret).unwrap_err().to_string();
        assert!(
            e.starts_with("web/green: secret TOKEN with as: env is not supported in docker.mode: swarm"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
