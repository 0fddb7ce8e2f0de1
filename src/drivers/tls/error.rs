//! What can go wrong reading, checking or storing a certificate. Each
//! message starts with where the text came from (a file, or an ACME order)
//! and never quotes a line of a key: a key file's lines are the secret.

/// An error about certificate material, naming its origin.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{path}: larger than 1 MiB, the most teal reads for a certificate or key file; \
         is this the PEM file?"
    )]
    TooBig { path: String },
    #[error("{origin}: not PEM: {detail}")]
    NotPem { origin: String, detail: String },
    #[error(
        "{origin}: no certificate found (expected PEM \"-----BEGIN CERTIFICATE-----\", \
         the leaf first, then its intermediates)"
    )]
    NoCertificate { origin: String },
    #[error("{origin}: the certificate at line {line} cannot be read: {detail}")]
    BadCertificate {
        origin: String,
        line: usize,
        detail: String,
    },
    #[error(
        "{origin}: no private key found (expected PEM \"-----BEGIN PRIVATE KEY-----\", \
         \"-----BEGIN RSA PRIVATE KEY-----\" or \"-----BEGIN EC PRIVATE KEY-----\")"
    )]
    NoKey { origin: String },
    #[error("{origin}: {count} private keys found, expected one")]
    KeyCount { origin: String, count: usize },
    #[error(
        "{origin}: the private key at line {line} is encrypted; teal needs it unencrypted \
         (e.g. `openssl pkey -in KEY -out PLAIN`, then keep PLAIN mode 0600)"
    )]
    EncryptedKey { origin: String, line: usize },
    #[error("{origin}: the private key at line {line} cannot be read ({detail})")]
    BadKey {
        origin: String,
        line: usize,
        detail: String,
    },
    #[error("{origin}: the private key is {kind}; teal serves RSA, EC or Ed25519 keys")]
    UnsupportedKey { origin: String, kind: String },
    #[error(
        "{origin}: the key{} does not match the certificate (subject {subject}); \
         use the key the certificate was issued for",
        key_in(.key)
    )]
    KeyMismatch {
        origin: String,
        key: Option<String>,
        subject: String,
    },
    #[error(
        "{origin}: certificate {index} in the chain ({issuer}) did not sign certificate {} \
         ({subject}); put the leaf first, then each certificate's issuer",
        .index - 1
    )]
    ChainOrder {
        origin: String,
        index: usize,
        subject: String,
        issuer: String,
    },
    #[error("{origin}: the certificate expired on {at}; renew it")]
    Expired { origin: String, at: String },
    #[error("{origin}: the certificate is not valid before {at}; check the host's clock")]
    NotYetValid { origin: String, at: String },
    #[error(
        "{origin}: the certificate covers {} but not {}",
        .covers.join(", "),
        .missing.join(", ")
    )]
    NotCovered {
        origin: String,
        covers: Vec<String>,
        missing: Vec<String>,
    },
    #[error(
        "{name:?}: not a name teal stores a certificate under: use 1 to 101 lowercase \
         letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    BadName { name: String },
    #[error("{what}: {detail}")]
    Failed { what: String, detail: String },
}

fn key_in(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" in {k}")).unwrap_or_default()
}

/// The reasons in an OpenSSL error stack, without its data fields: those
/// can hold parts of the input, which may be a key.
pub(super) fn reasons(e: &openssl::error::ErrorStack) -> String {
    let mut out: Vec<&str> = e.errors().iter().filter_map(|e| e.reason()).collect();
    out.dedup();
    if out.is_empty() {
        "openssl gave no reason".into()
    } else {
        out.join(": ")
    }
}
