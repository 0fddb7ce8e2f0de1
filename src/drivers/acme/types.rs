//! What a caller gives `issue` and gets back.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::BoxFuture;

/// Where and how to order certificates: the host config's `acme` block.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// ACME directory URL, e.g. `https://127.0.0.1:14000/dir`.
    pub directory: String,
    /// Contact for the account (`mailto:` is added).
    pub email: Option<String>,
    /// An extra root CA (PEM) to trust for the directory's TLS.
    pub ca_file: Option<PathBuf>,
    /// `state_dir/acme`: the account's credentials live here (0700 dir,
    /// 0600 file).
    pub dir: PathBuf,
    /// Bounds each HTTP call, and separately the polling of one order.
    pub timeout: Duration,
}

/// Where HTTP-01 key authorizations are published so the proxy serves
/// them at `/.well-known/acme-challenge/<token>`.
pub trait Challenges: Send + Sync {
    /// Serves `key_authorization` for `token` from now on.
    fn publish<'a>(&'a self, token: &'a str, key_authorization: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Stops serving `token`.
    fn withdraw<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// A certificate chain (leaf first) and its private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Shows the chain's size but never the key.
impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("chain_pem", &format_args!("{} bytes", self.chain_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}
