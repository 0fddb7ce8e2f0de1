//! A color's secrets as Docker Swarm secrets: each value a Swarm secret
//! of its own, named after the service, the secret and a keyed digest of
//! the value (`teal-web-DB-3f9c0a1b2c4d`), so a rotation makes a new one
//! rather than changing one a running task uses (Swarm secrets cannot be
//! changed). Tasks get it as the read-only file `/run/secrets/<NAME>`,
//! as containers do in engine mode; the value is never in the service's
//! spec. Secrets no Swarm service of this teal names any more are
//! removed at the next observation.

use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use bollard::models::{SecretSpec, TaskSpecContainerSpecFile, TaskSpecContainerSpecSecrets};
use bollard::query_parameters::ListSecretsOptions;
use sha2::Digest;

use super::SwarmDriver;
use crate::drivers::docker::{api_error, call, is_not_found, DockerError};
use crate::spec::container::{labels, ContainerSpec};
use crate::spec::secret::{Delivery, MOUNT_DIR};

/// Swarm takes names up to 64 characters.
const MAX_NAME: usize = 64;

/// The Swarm secret's name for secret `key` of `spec`: the service, the
/// key and 12 hex digits of the value's keyed digest (the same digest the
/// `teal.spec.json` label holds; without a key, of the value's SHA-256).
pub(super) fn secret_name(spec: &ContainerSpec, key: &str, value: &str) -> String {
    let digest = match spec.env_key {
        Some(k) => k.seal(&format!("secret:{key}"), value),
        None => hex::encode(sha2::Sha256::digest(value.as_bytes())),
    };
    let sum = hex::encode(sha2::Sha256::digest(digest.as_bytes()));
    let mut stem = format!("teal-{}-{key}", spec.service);
    stem.truncate(MAX_NAME - 13);
    format!("{stem}-{}", &sum[..12])
}

impl SwarmDriver {
    /// Creates the Swarm secrets `spec`'s file secrets need (those that
    /// exist are kept as they are) and returns the references the task
    /// template names them by.
    pub(super) async fn ensure_secrets(
        &self,
        spec: &ContainerSpec,
    ) -> Result<Vec<TaskSpecContainerSpecSecrets>, DockerError> {
        let client = self.docker.client();
        let mut refs = vec![];
        for (key, mount) in spec.secrets.iter().filter(|(_, m)| m.delivery == Delivery::File) {
            let name = secret_name(spec, key, mount.value.expose());
            let id = match client.inspect_secret(&name).await {
                Ok(s) => s.id.unwrap_or_default(),
                Err(e) if is_not_found(&e) => {
                    let body = SecretSpec {
                        name: Some(name.clone()),
                        labels: Some(HashMap::from([
                            (labels::OWNER.to_string(), self.owner().to_string()),
                            (labels::SERVICE.to_string(), spec.service.clone()),
                        ])),
                        data: Some(base64::engine::general_purpose::STANDARD.encode(mount.value.expose())),
                        ..Default::default()
                    };
                    call("create secret", &name, client.create_secret(body)).await?.id
                }
                Err(e) => return Err(api_error("inspect secret", &name, &e)),
            };
            refs.push(TaskSpecContainerSpecSecrets {
                file: Some(TaskSpecContainerSpecFile {
                    name: Some(key.clone()),
                    uid: Some("0".into()),
                    gid: Some("0".into()),
                    mode: Some(0o400),
                }),
                secret_id: Some(id),
                secret_name: Some(name),
            });
        }
        debug_assert!(MOUNT_DIR == "/run/secrets", "Swarm mounts secrets at /run/secrets");
        Ok(refs)
    }

    /// Removes this teal's Swarm secrets that none of its Swarm services
    /// (`services`, all of them) names any more. One still in use (a task
    /// being replaced) stays for a later pass. Run at each observation.
    pub(super) async fn sweep_secrets(&self, services: &[bollard::models::Service]) -> Result<(), DockerError> {
        let client = self.docker.client();
        let opts = ListSecretsOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![format!("{}={}", labels::OWNER, self.owner())],
            )])),
        };
        let secrets = call("list secrets", "owned by this teal", client.list_secrets(Some(opts))).await?;
        if secrets.is_empty() {
            return Ok(());
        }
        let used: BTreeSet<&str> = services
            .iter()
            .filter_map(|s| {
                s.spec
                    .as_ref()?
                    .task_template
                    .as_ref()?
                    .container_spec
                    .as_ref()?
                    .secrets
                    .as_ref()
            })
            .flatten()
            .filter_map(|r| r.secret_name.as_deref())
            .collect();
        for s in &secrets {
            let Some(name) = s.spec.as_ref().and_then(|s| s.name.as_deref()) else {
                continue;
            };
            if used.contains(name) {
                continue;
            }
            if let Err(e) = client.delete_secret(name).await {
                if !is_not_found(&e) {
                    tracing::debug!(secret = %name, error = %e, "Swarm secret kept for now");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::spec::{Color, RestartPolicy};

    #[test]
    fn names_are_short_and_change_with_the_value_only() {
        let spec = ContainerSpec {
            service: "web".into(),
            color: Color::Blue,
            image: "web:1".into(),
            port: 8080,
            env: BTreeMap::new(),
            command: None,
            volumes: vec![],
            labels: BTreeMap::new(),
            restart: RestartPolicy::UnlessStopped,
            network: None,
            secrets: Default::default(),
            env_key: None,
            run_image: None,
            digest: None,
        };
        let a = secret_name(&spec, "DB", "postgres://u:hunter2@db/x");
        assert!(
            a.starts_with("teal-web-DB-") && a.len() == "teal-web-DB-".len() + 12,
            "{a}"
        );
        assert_eq!(
            a,
            secret_name(
                &ContainerSpec {
                    color: Color::Green,
                    ..spec.clone()
                },
                "DB",
                "postgres://u:hunter2@db/x"
            )
        );
        assert_ne!(a, secret_name(&spec, "DB", "postgres://u:other@db/x"));
        let long = ContainerSpec {
            service: "s".repeat(60),
            ..spec
        };
        assert!(secret_name(&long, "DATABASE_URL", "v").len() <= MAX_NAME);
    }
}
