//! Reading a daemon's `/status` as the typed document: the one client
//! `teal status`, `teal status --fleet` and the waves share, so all keep
//! the same rules. A URL from
//! teal.yaml is contacted only when the host config admits it
//! (`config::fleet`); the token goes only there; redirects are not
//! followed (they would carry the request elsewhere); no environment
//! proxy is used; each read has a timeout, and the body is read in chunks
//! and cut at `MAX_BODY` instead of being taken whole.

use std::time::Duration;

use crate::config::fleet::{status_url, FleetConfig};
use crate::secret::Secret;
use crate::status::Status;

/// The most of a status document read from a peer: thousands of services.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a peer's status was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The host config does not let this host read the URL: never contacted.
    #[error("{0}")]
    NotAllowed(String),
    /// No answer: refused, timed out, unresolvable.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An answer, but not a status document (an error status, too big,
    /// not JSON).
    #[error("{0}")]
    Answer(String),
}

impl PeerError {
    /// Why, without the kind.
    pub fn why(&self) -> &str {
        match self {
            PeerError::NotAllowed(w) | PeerError::Unreachable(w) | PeerError::Answer(w) => w,
        }
    }
}

/// An http client for peers, with the fleet's bearer token.
#[derive(Clone)]
pub struct PeerClient {
    client: reqwest::Client,
    token: Option<std::sync::Arc<Secret>>,
}

impl PeerClient {
    /// A client whose every read (connect, headers and body) ends within `timeout`.
    pub fn new(token: Option<Secret>, timeout: Duration) -> PeerClient {
        PeerClient {
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .build()
                .expect("an http client"),
            token: token.map(std::sync::Arc::new),
        }
    }

    /// The fleet's bearer token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.expose())
    }

    /// `GET <url>/status` with the token, if `fleet` admits `url` (a
    /// peer's URL, from teal.yaml).
    pub async fn status(&self, url: &str, fleet: &FleetConfig) -> Result<Status, PeerError> {
        let base = fleet.admit(url).map_err(PeerError::NotAllowed)?;
        self.read(status_url(&base)).await
    }

    /// `GET <status_url>` with the token, the URL taken as it is: this
    /// host's own daemon (`listen` in the host config).
    pub async fn read(&self, status_url: impl reqwest::IntoUrl) -> Result<Status, PeerError> {
        let mut req = self.client.get(status_url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| PeerError::Unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(PeerError::Answer(format!("status API answered {}", resp.status())));
        }
        let body = capped(resp, MAX_BODY).await.map_err(PeerError::Answer)?;
        serde_json::from_slice(&body).map_err(|e| PeerError::Answer(format!("not a status document: {e}")))
    }
}

/// The body, chunk by chunk, refused as soon as it passes `max` bytes
/// (a declared length past it is refused before any is read).
async fn capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let over = || format!("status body over {}: cut there", size(max));
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(over());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the body: {e}"))? {
        if body.len() + chunk.len() > max {
            return Err(over());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn size(bytes: usize) -> String {
    match bytes {
        b if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        b if b % 1024 == 0 => format!("{} KiB", b / 1024),
        b => format!("{b} bytes"),
    }
}
