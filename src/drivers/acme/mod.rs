//! Certificates from an ACME (RFC 8555) server over HTTP-01: `issue` runs
//! one order end to end. The account lives in `AcmeSettings::dir`; the
//! challenge answers go out through a caller's [`Challenges`] (the proxy
//! teal already runs serves them). Nothing here logs or returns a key
//! except the new certificate's own, in [`Issued`].
//!
//! `http` is instant-acme's transport (reqwest, bounded), `account` the
//! stored account, `order` one order's steps, `key` the key and CSR.

mod account;
mod error;
mod http;
mod key;
mod order;
mod types;

use std::time::Duration;

pub use error::AcmeError;
pub use types::{AcmeSettings, Challenges, Issued};

/// Orders a certificate for `names` (the first is the primary name),
/// answering HTTP-01 through `challenges`, and returns the chain with
/// its new private key. Creates the account on first use and reuses it
/// after; withdraws every published challenge before returning.
pub async fn issue(
    settings: &AcmeSettings,
    names: &[String],
    challenges: &dyn Challenges,
) -> Result<Issued, AcmeError> {
    check_names(names)?;
    let http = client(settings).await?;
    let published = order::Published::default();
    let result = attempt(settings, &http, names, challenges, &published).await;
    withdraw(challenges, published.take(), settings.timeout).await;
    result
}

/// One order, and a second with a new account when the server forgot
/// the stored one (a test server restarted, an account deactivated).
async fn attempt(
    settings: &AcmeSettings,
    http: &http::Client,
    names: &[String],
    challenges: &dyn Challenges,
    published: &order::Published,
) -> Result<Issued, AcmeError> {
    let account = account::load_or_create(settings, http).await?;
    match order::run(settings, &account, names, challenges, published).await {
        Err(AcmeError::UnknownAccount { cause, .. }) => {
            tracing::warn!(directory = %settings.directory, %cause, "the ACME server forgot the account; creating a new one");
            let account = account::create(settings, http).await?;
            order::run(settings, &account, names, challenges, published).await
        }
        other => other,
    }
}

/// HTTP-01 proves control of one host name, never of all under a domain.
fn check_names(names: &[String]) -> Result<(), AcmeError> {
    if names.is_empty() {
        return Err(AcmeError::NoNames);
    }
    match names.iter().find(|n| n.contains('*')) {
        Some(name) => Err(AcmeError::Wildcard { name: name.clone() }),
        None => Ok(()),
    }
}

async fn client(settings: &AcmeSettings) -> Result<http::Client, AcmeError> {
    let ca = match &settings.ca_file {
        Some(path) => Some(tokio::fs::read(path).await.map_err(|e| AcmeError::CaFile {
            path: path.clone(),
            cause: e.to_string(),
        })?),
        None => None,
    };
    http::Client::new(ca.as_deref(), settings.timeout).map_err(|cause| match &settings.ca_file {
        Some(path) => AcmeError::CaFile {
            path: path.clone(),
            cause,
        },
        None => AcmeError::Protocol {
            directory: settings.directory.clone(),
            cause: format!("no HTTP client: {cause}"),
        },
    })
}

/// Stops serving every published token; a failure only leaves a stale
/// token the proxy serves, so it is logged, not returned.
async fn withdraw(challenges: &dyn Challenges, tokens: Vec<String>, timeout: Duration) {
    for token in tokens {
        match tokio::time::timeout(timeout, challenges.withdraw(&token)).await {
            Ok(Ok(())) => {}
            Ok(Err(cause)) => tracing::warn!(%token, %cause, "withdrawing an ACME challenge failed"),
            Err(_) => tracing::warn!(%token, "withdrawing an ACME challenge timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon runs orders in spawned tasks: the future must be Send.
    #[allow(dead_code)]
    fn issue_is_send(s: &AcmeSettings, names: &[String], c: &dyn Challenges) {
        fn send<T: Send>(_: T) {}
        send(issue(s, names, c));
    }

    #[test]
    fn wildcards_and_empty_lists_are_refused() {
        let names = vec!["a.example".to_string(), "*.example".to_string()];
        let err = check_names(&names).unwrap_err().to_string();
        assert!(
            err.starts_with("*.example: a wildcard cannot be validated over HTTP-01"),
            "{err}"
        );
        assert!(matches!(check_names(&[]), Err(AcmeError::NoNames)));
        assert!(check_names(&["a.example".to_string()]).is_ok());
    }
}
