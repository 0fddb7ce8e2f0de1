//! What can go wrong getting a certificate, each said with the directory
//! or the domain, the cause, and what to do. No variant ever carries a key.

use std::path::PathBuf;
use std::time::Duration;

use instant_acme::Problem;

use super::http::{Transport, TransportKind};

/// A failed `issue`.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("no host names to put in the certificate; a route with tls: acme needs a host")]
    NoNames,
    #[error(
        "{name}: a wildcard cannot be validated over HTTP-01; list each host name, \
         or give the route certificate files (tls: {{cert, key}})"
    )]
    Wildcard { name: String },
    #[error(
        "acme.ca_file {}: not a usable PEM certificate: {cause}; \
         point acme.ca_file at the PEM root of the ACME server's TLS",
        path.display()
    )]
    CaFile { path: PathBuf, cause: String },
    #[error(
        "ACME directory {directory} is unreachable: {cause}; \
         check acme.directory in the host config"
    )]
    Unreachable { directory: String, cause: String },
    #[error(
        "ACME directory {directory}: its TLS certificate is not trusted: {cause}; \
         set acme.ca_file in the host config to the PEM root that signed it"
    )]
    Untrusted { directory: String, cause: String },
    #[error(
        "ACME directory {directory} answered unexpectedly: {cause}; \
         check that acme.directory is an ACME (RFC 8555) directory URL"
    )]
    Protocol { directory: String, cause: String },
    #[error(
        "ACME directory {directory} no longer knows the account in {}: {cause}; \
         remove that file to create a new account",
        path.display()
    )]
    UnknownAccount {
        directory: String,
        path: PathBuf,
        cause: String,
    },
    #[error(
        "ACME order at {directory} failed for {domain}: {problem}; check that {domain} \
         resolves to this host and that port 80 on it reaches teal's proxy"
    )]
    Invalid {
        directory: String,
        domain: String,
        problem: String,
    },
    #[error(
        "ACME order at {directory} for {names} was not done after {}; the server \
         may be slow or stuck, teal tries again later",
        humantime::format_duration(*after)
    )]
    Timeout {
        directory: String,
        names: String,
        after: Duration,
    },
    #[error(
        "publishing the HTTP-01 challenge for {domain} failed: {cause}; \
         the proxy must serve /.well-known/acme-challenge/ for it"
    )]
    Publish { domain: String, cause: String },
    #[error(
        "{}: {cause}; teal keeps the ACME account there, check that state_dir \
         is writable by teal",
        path.display()
    )]
    State { path: PathBuf, cause: String },
    #[error("making the certificate key and request for {names} failed: {cause}")]
    Key { names: String, cause: String },
}

/// The problem type ACME servers send for an account they do not know.
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// An instant-acme error from talking to `directory`, said for a person.
pub(crate) fn from_acme(directory: &str, err: instant_acme::Error) -> AcmeError {
    let directory = directory.to_string();
    match err {
        instant_acme::Error::Other(inner) => match inner.downcast_ref::<Transport>() {
            Some(t) => from_transport(directory, t),
            None => AcmeError::Protocol {
                directory,
                cause: inner.to_string(),
            },
        },
        instant_acme::Error::Api(problem) => AcmeError::Protocol {
            directory,
            cause: problem_text(&problem),
        },
        instant_acme::Error::Json(e) => AcmeError::Protocol {
            directory,
            cause: format!("not an ACME answer ({e})"),
        },
        other => AcmeError::Protocol {
            directory,
            cause: other.to_string(),
        },
    }
}

/// Whether `err` says the server does not know the account.
pub(crate) fn is_unknown_account(err: &instant_acme::Error) -> bool {
    matches!(err, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST))
}

fn from_transport(directory: String, t: &Transport) -> AcmeError {
    let cause = t.cause.clone();
    match t.kind {
        TransportKind::Untrusted => AcmeError::Untrusted { directory, cause },
        TransportKind::Unreachable => AcmeError::Unreachable { directory, cause },
        TransportKind::TooLarge => AcmeError::Protocol { directory, cause },
    }
}

/// A problem document as "detail (type)", the type without its URN prefix.
pub(crate) fn problem_text(p: &Problem) -> String {
    let kind = p
        .r#type
        .as_deref()
        .map(|t| t.trim_start_matches("urn:ietf:params:acme:error:"));
    let mut out = match (&p.detail, kind) {
        (Some(d), Some(k)) => format!("{d} ({k})"),
        (Some(d), None) => d.clone(),
        (None, Some(k)) => k.to_string(),
        (None, None) => "no detail given".to_string(),
    };
    for sub in &p.subproblems {
        out.push_str(&format!("; {sub}"));
    }
    out
}
