//! `acme:` in the host config: the CA that issues the certificates of
//! routes with `tls: acme` (RFC 8555, HTTP-01 answered by teal's proxy).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `acme:` in the host config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL. Default: Let's Encrypt.
    #[serde(default = "default_directory")]
    pub directory: String,
    /// Contact address the CA writes to about expiring certificates.
    #[serde(default)]
    pub email: Option<String>,
    /// A PEM file of CA certificates to trust for the directory's own TLS
    /// (a private CA such as step-ca or pebble). Default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Renew a certificate this long before it expires. Default 30d.
    #[serde(default = "default_renew_before", with = "crate::spec::duration::serde_human")]
    pub renew_before: Duration,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            directory: default_directory(),
            email: None,
            ca_file: None,
            renew_before: default_renew_before(),
        }
    }
}

fn default_directory() -> String {
    LETS_ENCRYPT.into()
}

fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 86_400)
}
