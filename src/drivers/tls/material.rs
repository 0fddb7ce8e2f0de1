//! The checked certificate material and what the rest of teal shows of it.

use serde::{Deserialize, Serialize};

/// A certificate chain and its key, checked (see [`super::check`]).
///
/// Both texts are in a canonical form whatever the input looked like: the
/// chain is the certificates' PEM only, leaf first; the key is PKCS#8 PEM.
#[derive(Clone)]
pub struct Material {
    pub chain_pem: String,
    pub key_pem: String,
    pub info: CertInfo,
}

/// Never prints the key: a `Material` ends up in logs through `{:?}`.
impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Material {{ info: {:?}, key: <redacted> }}", self.info)
    }
}

/// What status, the dashboard and metrics show of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// The leaf's subject, e.g. `CN=shop.example.com`.
    pub subject: String,
    /// The leaf's issuer, e.g. `CN=Pebble Intermediate CA 1a2b3c`.
    pub issuer: String,
    /// The DNS names the leaf covers (its DNS SANs, lowercased; its CN if it
    /// has none). A name may be a wildcard, `*.example.com`.
    pub names: Vec<String>,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Hex SHA-256 of the leaf's DER: tells two certificates apart.
    pub sha256: String,
}
