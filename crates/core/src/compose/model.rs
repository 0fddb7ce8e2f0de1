//! A compose service as serde types, after interpolation and merging.
//! Only the keys teal carries over are typed; every other key of the
//! specification is kept as a value so the report can name it. The list
//! of keys the specification knows (`SERVICE_KEYS`) is checked against
//! its JSON schema by a test (tests/fixtures/compose/compose-spec.json).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

/// Every key of a service in the compose specification's JSON schema.
#[rustfmt::skip]
pub const SERVICE_KEYS: &[&str] = &[
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "entrypoint", "env_file", "environment", "expose", "extends", "external_links", "extra_hosts", "gpus",
    "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation", "label_file", "labels",
    "links", "logging", "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit",
    "models", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "provider", "pull_policy",
    "pull_refresh_after", "read_only", "restart", "runtime", "scale", "secrets", "security_opt", "shm_size",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
    "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
];

/// Top-level keys of a compose file in the specification.
#[rustfmt::skip]
pub const TOP_KEYS: &[&str] = &[
    "configs", "include", "models", "name", "networks", "secrets", "services", "version", "volumes",
];

/// One service; keys teal does not carry over are in `other`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub command: Option<Words>,
    #[serde(default)]
    pub entrypoint: Option<Words>,
    /// `KEY: value`, or `KEY:` (null) for a value from the environment.
    #[serde(default)]
    pub environment: BTreeMap<String, Option<Scalar>>,
    #[serde(default)]
    pub env_file: Option<EnvFiles>,
    #[serde(default)]
    pub labels: BTreeMap<String, Option<Scalar>>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub expose: Vec<Scalar>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub scale: Option<Scalar>,
    #[serde(default)]
    pub restart: Option<String>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// The keys typed in `Service` (the rest land in `other`).
#[rustfmt::skip]
pub const TYPED_KEYS: &[&str] = &[
    "image", "command", "entrypoint", "environment", "env_file", "labels", "ports", "expose", "volumes",
    "deploy", "scale", "restart", "healthcheck", "profiles",
];

/// A string, number or boolean, as compose accepts where a string is meant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }

    /// The value as an integer (an interpolated `"3"` included).
    pub fn int(&self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(*i),
            Scalar::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a boolean (an interpolated `"true"` included).
    pub fn bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) => match s.trim() {
                "true" | "True" | "TRUE" | "yes" => Some(true),
                "false" | "False" | "FALSE" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A command: one string (split like compose splits it) or a list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Words {
    One(String),
    List(Vec<Scalar>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvFiles {
    One(String),
    List(Vec<EnvFile>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum EnvFile {
    Path(String),
    Long {
        path: String,
        #[serde(default)]
        required: Option<Scalar>,
    },
}

impl EnvFiles {
    /// Each file and whether it must exist (compose's default: yes).
    pub fn entries(&self) -> Vec<(String, bool)> {
        match self {
            EnvFiles::One(p) => vec![(p.clone(), true)],
            EnvFiles::List(l) => l
                .iter()
                .map(|e| match e {
                    EnvFile::Path(p) => (p.clone(), true),
                    EnvFile::Long { path, required } => {
                        (path.clone(), required.as_ref().and_then(Scalar::bool).unwrap_or(true))
                    }
                })
                .collect(),
        }
    }
}

/// `"8080:80"`, `80`, `"127.0.0.1:8080:80/tcp"` or the long form.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Short(Scalar),
    Long {
        target: Scalar,
        #[serde(default)]
        published: Option<Scalar>,
        #[serde(default)]
        host_ip: Option<String>,
        #[serde(default)]
        protocol: Option<String>,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    },
}

/// `src:/dst[:mode]`, `/dst` (anonymous) or the long form.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Volume {
    Short(String),
    Long {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        read_only: Option<Scalar>,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Deploy {
    #[serde(default)]
    pub replicas: Option<Scalar>,
    #[serde(default)]
    pub restart_policy: Option<DeployRestart>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DeployRestart {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Option<Words>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retries: Option<Scalar>,
    #[serde(default)]
    pub start_period: Option<String>,
    #[serde(default)]
    pub start_interval: Option<String>,
    #[serde(default)]
    pub disable: Option<Scalar>,
}
