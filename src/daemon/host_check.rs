//! The names the status API answers to. A web page can point a name of its
//! own at 127.0.0.1 (DNS rebinding) and then read `/status`, `/events` and
//! `/metrics` from the operator's browser as same-origin. Such a request
//! carries the page's name in its Host header, so only names of this host
//! are answered: any IP address (a page served from an IP is that IP's own
//! origin, not an attacker's), `localhost`, and `host.names`; others get
//! 421. The webhook is answered whatever the name: a forge reaches it by
//! a public name, and without the HMAC key nothing comes of a request.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Whether `authority` (the Host header, with or without a port) names this
/// host. A request without one (HTTP/1.0) comes from no browser and passes.
pub fn allowed(authority: Option<&str>, names: &[String]) -> bool {
    let Some(authority) = authority else { return true };
    let Some(host) = hostname(authority) else { return false };
    host.parse::<IpAddr>().is_ok() || host == "localhost" || names.iter().any(|n| normal(n) == host)
}

/// The host part of `host[:port]` or `[v6][:port]`, lower case, without a
/// trailing dot; `None` when it is malformed.
fn hostname(authority: &str) -> Option<String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        return (after.is_empty() || port(after.strip_prefix(':')?)).then(|| v6.to_string());
    }
    if authority.parse::<IpAddr>().is_ok() {
        return Some(authority.to_string());
    }
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if port(p) => h,
        Some(_) => return None,
        None => authority,
    };
    (!host.is_empty()).then(|| normal(host))
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Answers 421 to a request for a name that is not this host's.
pub async fn require_own_name(
    State(names): State<Arc<Vec<String>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = match req.uri().authority() {
        Some(a) => Some(a.as_str().to_string()),
        None => match req.headers().get("host").map(|v| v.to_str()) {
            Some(Ok(h)) => Some(h.to_string()),
            Some(Err(_)) => Some(String::new()),
            None => None,
        },
    };
    if req.uri().path() == "/hooks/git" || allowed(host.as_deref(), &names) {
        return next.run(req).await;
    }
    let host = host.unwrap_or_default();
    tracing::debug!(host = %host.escape_debug(), "status API: a request for another name: 421");
    let body = format!(
        "this teal daemon does not answer to the name {host:?} (a web page can point any name at it: DNS rebinding); \
         if this host is reached by that name, add it to host.names in the host config and restart teal\n"
    );
    (StatusCode::MISDIRECTED_REQUEST, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_localhost_and_listed_names_pass_any_other_name_does_not() {
        let names = vec!["Teal.Example.com".to_string(), "peer.example.".to_string()];
        let table = [
            (None, true),
            (Some("127.0.0.1"), true),
            (Some("127.0.0.1:9470"), true),
            (Some("10.0.0.11:9470"), true),
            (Some("[::1]"), true),
            (Some("[::1]:9470"), true),
            (Some("::1"), true),
            (Some("localhost"), true),
            (Some("LocalHost.:9470"), true),
            (Some("teal.example.com"), true),
            (Some("teal.example.com.:443"), true),
            (Some("peer.example"), true),
            (Some("attacker.example"), false),
            (Some("attacker.example:9470"), false),
            (Some("localhost.attacker.example"), false),
            (Some("teal.example.com.attacker.example"), false),
            (Some("127.0.0.1.nip.io"), false),
            (Some(""), false),
            (Some("[::1]x"), false),
            (Some("localhost:http"), false),
            (Some("[::1"), false),
        ];
        for (host, want) in table {
            assert_eq!(allowed(host, &names), want, "{host:?}");
        }
    }
}
