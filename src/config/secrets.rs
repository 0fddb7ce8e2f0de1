//! `secrets:` in the host config: the key this host decrypts the repo's
//! age-encrypted secrets with.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `secrets:` in the host config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// This host's age identity: an `age-keygen` file (AGE-SECRET-KEY-1...)
    /// or an unencrypted OpenSSH ed25519 key (the host key,
    /// /etc/ssh/ssh_host_ed25519_key), mode 0600. Its recipient goes into
    /// teal.yaml's `secrets.recipients`. Default: none (a service with
    /// age-encrypted secrets then fails to deploy, saying so).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
}
