//! The canonical container spec of one color of one service, and its hash.
//!
//! The hash goes on every container as the `teal.spec` label. A running
//! container whose label differs from the desired hash is replaced. Only what
//! changes the container itself is in here: replica count and routing are not
//! (they change how many containers exist and where traffic goes, not what
//! a container is), so a pure scale or route change never restarts anything.
//! Env values enter the hash and the `teal.spec.json` label only as keyed
//! digests (`env_seal`): labels are public to anyone who can read Docker.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::env_seal::{is_sealed, EnvKey};
use super::secret::{Delivery, SecretText};
use super::{Color, RestartPolicy, Service};

/// A secret as a container gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMount {
    /// The value (a digest once sealed).
    pub value: SecretText,
    #[serde(rename = "as")]
    pub delivery: Delivery,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Secrets by name: the value (sealed like env) and how it is
    /// delivered. Left out of the JSON when empty, so a service without
    /// secrets hashes as before they existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretMount>,
    /// The host's key that seals `env` for the hash and the label; `None`:
    /// `env` holds digests already (a spec read back from a label).
    #[serde(skip)]
    pub env_key: Option<EnvKey>,
    /// `pull: always`: the digest the color's tag is pinned to, part of the
    /// spec (and its hash), so a tag followed to a new digest is a change.
    /// Left out of the JSON when none: other specs hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// What the engine runs when it differs from `image`: the digest
    /// `image` was pinned to at its first pull (`repo@sha256:...`). Not
    /// part of the spec or its hash: the repo asked for `image`.
    #[serde(skip)]
    pub run_image: Option<String>,
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
            secrets: service
                .secrets
                .iter()
                .map(|(k, s)| {
                    let mount = SecretMount {
                        value: SecretText::new(s.identity()),
                        delivery: s.delivery,
                    };
                    (k.clone(), mount)
                })
                .collect(),
            env_key: Some(service.env_key),
            digest: match service.pull {
                super::PullPolicy::Always => service.digests.get(color).clone(),
                super::PullPolicy::Missing => None,
            },
            run_image: None,
        })
    }

    /// This spec with each env value replaced by its digest: what labels
    /// show and what the hash covers.
    pub fn sealed(&self) -> ContainerSpec {
        let Some(key) = self.env_key else {
            return self.clone();
        };
        let secrets = self.secrets.iter().map(|(k, m)| {
            let value = SecretText::new(key.seal(&format!("secret:{k}"), m.value.expose()));
            (k.clone(), SecretMount { value, ..m.clone() })
        });
        ContainerSpec {
            env: self.env.iter().map(|(k, v)| (k.clone(), key.seal(k, v))).collect(),
            secrets: secrets.collect(),
            env_key: None,
            ..self.clone()
        }
    }

    /// sha256 (hex) of the canonical JSON of the sealed spec. Stable across
    /// runs: every map is a BTreeMap, so the JSON key order is fixed. It
    /// changes with any env value, and shows none.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(&self.sealed()).expect("container spec serialises");
        hex::encode(Sha256::digest(&json))
    }

    /// The reference to create containers from: the pinned digest, else `image`.
    pub fn runs(&self) -> &str {
        self.run_image.as_deref().unwrap_or(&self.image)
    }

    /// Docker container name of replica `n`: `teal-<service>-<color>-<n>`.
    pub fn container_name(&self, n: u32) -> String {
        container_name(&self.service, self.color, n)
    }

    /// The name of replica `n`'s second container while a rolling update
    /// replaces it.
    pub fn next_name(&self, n: u32) -> String {
        format!("{}-next", self.container_name(n))
    }

    /// The canonical JSON of the sealed spec, for the `teal.spec.json`
    /// label: a container carries what it was created from, so a refused
    /// change can name the fields that differ (the hash alone says only
    /// that something does).
    pub fn to_label(&self) -> String {
        serde_json::to_string(&self.sealed()).expect("container spec serialises")
    }

    /// The spec in a `teal.spec.json` label, when it parses and matches the
    /// container's `teal.spec` hash (a label edited by hand is not trusted
    /// to say what changed). An older teal's label holds env values in
    /// plain text and a hash of them: its spec comes back sealed with
    /// `key`, so its `hash()` is what this teal computes for the same spec,
    /// and an upgrade of teal restarts nothing.
    pub fn from_label(json: Option<&String>, hash: &str, key: &EnvKey) -> Option<ContainerSpec> {
        let spec: ContainerSpec = serde_json::from_str(json?).ok()?;
        if spec.hash() != hash {
            return None;
        }
        if spec.env.values().all(|v| is_sealed(v)) && spec.secrets.values().all(|m| is_sealed(m.value.expose())) {
            return Some(spec);
        }
        Some(ContainerSpec {
            env_key: Some(*key),
            ..spec
        })
    }

    /// The fields that differ from `self` in `to`, as users write them in a
    /// service file: `image`, `port`, `env.RUST_LOG`, `command`, `volumes`,
    /// `labels.com.example.team`, `restart`, `network`. Env values are not
    /// shown (they may be secrets), only their names.
    pub fn changes(&self, to: &ContainerSpec) -> Vec<String> {
        let (sealed_from, sealed_to) = (self.sealed(), to.sealed());
        let field = |changed: bool, name: &str| if changed { vec![name.to_string()] } else { vec![] };
        [
            field(self.image != to.image, "image"),
            field(self.port != to.port, "port"),
            changed_keys("env", &sealed_from.env, &sealed_to.env),
            changed_keys("secrets", &digests(&sealed_from), &digests(&sealed_to)),
            field(self.command != to.command, "command"),
            field(self.volumes != to.volumes, "volumes"),
            changed_keys("labels", &self.labels, &to.labels),
            field(self.restart != to.restart, "restart"),
            field(self.network != to.network, "network"),
            field(self.digest != to.digest, "digest (pull: always followed a moved tag)"),
        ]
        .concat()
    }
}

impl ContainerSpec {
    /// Each secret added, removed or changed from `self` to `to`, by
    /// name: `DATABASE_URL: changed (secret)`. Never a value.
    pub fn secret_changes(&self, to: &ContainerSpec) -> Vec<String> {
        let (a, b) = (digests(&self.sealed()), digests(&to.sealed()));
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        names
            .into_iter()
            .filter_map(|k| match (a.get(k), b.get(k)) {
                (None, Some(_)) => Some(format!("{k}: added (secret)")),
                (Some(_), None) => Some(format!("{k}: removed (secret)")),
                (Some(x), Some(y)) if x != y => Some(format!("{k}: changed (secret)")),
                _ => None,
            })
            .collect()
    }
}

/// A container's spec hash as this teal computes it, and its spec, from
/// its `teal.spec` and `teal.spec.json` labels (an older teal's label
/// comes back sealed: see `ContainerSpec::from_label`).
pub fn read_labels(json: Option<&String>, hash: &str, key: &EnvKey) -> (String, Option<ContainerSpec>) {
    let spec = ContainerSpec::from_label(json, hash, key);
    (
        spec.as_ref().map_or_else(|| hash.to_string(), ContainerSpec::hash),
        spec,
    )
}

/// Each secret's digest and delivery, to compare two sealed specs.
fn digests(sealed: &ContainerSpec) -> BTreeMap<String, String> {
    let shown = |m: &SecretMount| format!("{}:{:?}", m.value.expose(), m.delivery);
    sealed.secrets.iter().map(|(k, m)| (k.clone(), shown(m))).collect()
}

/// `prefix.KEY` for each key added, removed or changed between two maps.
fn changed_keys(prefix: &str, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{prefix}.{k}"))
        .collect()
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
    /// The canonical spec as JSON (see `ContainerSpec::to_label`).
    pub const SPEC_JSON: &str = "teal.spec.json";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RestartPolicy;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            service: "web".into(),
            color: Color::Blue,
            image: "web:1".into(),
            port: 8080,
            env: BTreeMap::from([("A".into(), "1".into()), ("TOKEN".into(), "s3cret".into())]),
            command: None,
            volumes: vec![],
            labels: BTreeMap::new(),
            restart: RestartPolicy::UnlessStopped,
            network: None,
            secrets: BTreeMap::new(),
            env_key: None,
            run_image: None,
            digest: None,
        }
    }

    #[test]
    fn changes_name_each_field_as_users_write_it_without_env_values() {
        let a = spec();
        assert_eq!(a.changes(&a), Vec::<String>::new());
        let mut b = spec();
        b.port = 9090;
        b.env.insert("TOKEN".into(), "n3w".into());
        b.env.remove("A");
        b.env.insert("B".into(), "2".into());
        b.labels.insert("team".into(), "shop".into());
        b.restart = RestartPolicy::Always;
        assert_eq!(
            a.changes(&b),
            ["port", "env.A", "env.B", "env.TOKEN", "labels.team", "restart"]
        );
        assert!(!a.changes(&b).concat().contains("n3w"));
        let mut c = spec();
        c.image = "web:2".into();
        c.command = Some(vec!["/app".into()]);
        c.volumes = vec!["/srv:/data".into()];
        c.network = Some("shop".into());
        assert_eq!(a.changes(&c), ["image", "command", "volumes", "network"]);
    }

    #[test]
    fn a_label_is_trusted_only_when_it_matches_the_hash() {
        let key = EnvKey::new([1; 32]);
        let a = ContainerSpec {
            env_key: Some(key),
            ..spec()
        };
        let label = a.to_label();
        let back = ContainerSpec::from_label(Some(&label), &a.hash(), &key).unwrap();
        assert_eq!((back.hash(), back.sealed()), (a.hash(), a.sealed()));
        assert_eq!(ContainerSpec::from_label(Some(&label), "other", &key), None);
        assert_eq!(ContainerSpec::from_label(Some(&"{".to_string()), &a.hash(), &key), None);
        assert_eq!(ContainerSpec::from_label(None, &a.hash(), &key), None);
    }

    #[test]
    fn labels_and_hashes_show_env_names_and_digests_never_values() {
        let mut a = spec();
        a.env_key = Some(EnvKey::new([1; 32]));
        let label = a.to_label();
        assert!(
            !label.contains("s3cret") && label.contains("\"TOKEN\":\"hmac-sha256:"),
            "{label}"
        );
        let mut b = a.clone();
        b.env.insert("TOKEN".into(), "s3cret2".into());
        assert_ne!(a.hash(), b.hash(), "a changed value restarts the color");
        let mut c = a.clone();
        c.env_key = Some(EnvKey::new([2; 32]));
        assert_ne!(a.hash(), c.hash(), "digests are keyed");
        // A spec without env hashes as before env values were sealed.
        let mut plain = a.clone();
        plain.env.clear();
        let json = serde_json::to_vec(&ContainerSpec {
            env_key: None,
            ..plain.clone()
        })
        .unwrap();
        assert_eq!(plain.hash(), hex::encode(Sha256::digest(&json)));
    }

    #[test]
    fn an_older_teals_label_reads_as_the_same_spec_sealed() {
        let key = EnvKey::new([3; 32]);
        let mut now = spec();
        now.env_key = Some(key);
        // What an older teal wrote: env in plain text, hashed as it is.
        let old = ContainerSpec {
            env_key: None,
            ..now.clone()
        };
        let (json, hash) = (
            serde_json::to_string(&old).unwrap(),
            hex::encode(Sha256::digest(serde_json::to_vec(&old).unwrap())),
        );
        assert!(json.contains("s3cret"));
        let (read_hash, read) = read_labels(Some(&json), &hash, &key);
        assert_eq!(read_hash, now.hash(), "no restart after an upgrade");
        assert_eq!(read.unwrap().changes(&now), Vec::<String>::new());
        let mut changed = now.clone();
        changed.env.insert("TOKEN".into(), "n3w".into());
        assert_ne!(read_hash, changed.hash());
    }
}
