//! `policy.prometheus`: the Prometheus servers the repo may have this host
//! query. A service's `analysis.prometheus.url` makes the daemon GET that
//! URL every interval of a rollout; unbounded, a commit could aim each
//! host at whatever it can reach (an admin endpoint on loopback, a cloud
//! metadata address). The owner lists URL prefixes; none by default.
//!
//! URLs are compared parsed, by the parser the HTTP client uses (`url`,
//! as reqwest), never as text: scheme, host and port must be a prefix's,
//! and the path asked (`<url>/api/v1/query`) at or below its path, segment
//! by segment. So `http://127.0.0.1:9090.evil.com`, credentials before an
//! `@`, `..` and other spellings of another host or path match nothing.

use url::Url;

use crate::spec::prometheus::query_url;

/// Why the repo may not have this host query the Prometheus at `base` (a
/// resolved `analysis.prometheus.url`), if it may not.
pub fn refusal(base: &str, prefixes: Option<&[String]>) -> Option<String> {
    let prefixes = prefixes.unwrap_or_default();
    if prefixes.is_empty() {
        return Some(format!(
            "prometheus url {base}: this host lets the repo query no Prometheus (policy.prometheus lists none); if it may query this one, its owner adds `prometheus: [{}/]` under `policy:` in the host config",
            base.trim_end_matches('/')
        ));
    }
    (!allowed(base, prefixes)).then(|| {
        format!(
            "prometheus url {base} is outside this host's policy (policy.prometheus: {}); use one of those, or ask the host's owner to add a prefix of it there",
            prefixes.join(", ")
        )
    })
}

/// Whether the query URL of the Prometheus at `base` lies under one of
/// `prefixes`. A prefix that is not a plain http(s) URL matches nothing
/// (the host config's check reports it).
pub fn allowed(base: &str, prefixes: &[String]) -> bool {
    let Ok(asked) = plain(&query_url(base)) else {
        return false;
    };
    if hides_a_separator(asked.path()) {
        return false;
    }
    prefixes
        .iter()
        .filter_map(|p| plain(p).ok())
        .any(|p| covers(&p, &asked))
}

/// Why `prefix` cannot be an entry of `policy.prometheus`, if it cannot.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    plain(prefix).map(|_| ())
}

/// `s` parsed, if it is an http(s) URL with a host and no credentials,
/// query or fragment.
fn plain(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{s} is not a URL ({e}): write e.g. http://127.0.0.1:9090/"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("{s} is not an http(s) URL: write e.g. http://127.0.0.1:9090/"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("{s} carries credentials: give the URL without them"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!("{s} has a query or fragment: give a URL prefix without them"));
    }
    Ok(u)
}

/// `%2e`, `%2f` or `%5c` in a path: a dot or a slash the parser leaves
/// alone but a server may decode (`/prom/..%2f..%2fadmin`), so the path
/// it serves need not be the one compared.
fn hides_a_separator(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    ["%2e", "%2f", "%5c"].iter().any(|e| p.contains(e))
}

/// Same scheme, host and port, and `asked`'s path at or below `prefix`'s:
/// `/prom` and `/prom/` cover `/prom/api/v1/query`, not `/prometheus/...`.
fn covers(prefix: &Url, asked: &Url) -> bool {
    let (p, a) = (prefix.path(), asked.path());
    let below = if p.ends_with('/') {
        a.starts_with(p)
    } else {
        a == p || a.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
    };
    prefix.scheme() == asked.scheme()
        && prefix.host() == asked.host()
        && prefix.port_or_known_default() == asked.port_or_known_default()
        && below
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(base: &str, prefixes: &[&str]) -> bool {
        allowed(base, &prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_prefix_covers_its_scheme_host_port_and_path_segments() {
        for (base, prefix) in [
            ("http://127.0.0.1:9090", "http://127.0.0.1:9090"),
            ("http://127.0.0.1:9090", "http://127.0.0.1:9090/"),
            ("http://127.0.0.1:9090/", "http://127.0.0.1:9090/"),
            ("https://prom.internal/prom", "https://prom.internal/prom"),
            ("https://prom.internal/prom", "https://prom.internal/prom/"),
            ("https://prom.internal/prom/eu", "https://prom.internal/prom"),
            // Spellings of the same place: case, default port, dot segments.
            ("HTTPS://PROM.internal:443/prom", "https://prom.internal/prom"),
            ("http://127.0.0.1:80", "http://127.0.0.1/"),
            ("https://prom.internal/x/../prom", "https://prom.internal/prom/"),
            // The path asked is <url>/api/v1/query.
            ("https://prom.internal/prom", "https://prom.internal/prom/api/v1"),
        ] {
            assert!(ok(base, &[prefix]), "{base} under {prefix}");
        }
    }

    #[test]
    fn another_host_port_scheme_or_path_does_not_pass_for_a_prefix() {
        let prefixes = ["http://127.0.0.1:9090", "https://prom.internal/prom"];
        for base in [
            // The prefix's text, then another host.
            "http://127.0.0.1:9090.evil.com",
            "http://127.0.0.1:90901",
            "http://127.0.0.1:9090@evil.com",
            "http://127.0.0.1:9090@evil.com/",
            "http://user:pw@127.0.0.1:9090",
            "http://127.0.0.1:9091",
            "https://127.0.0.1:9090",
            "http://127.0.0.2:9090",
            "http://localhost:9090",
            "http://169.254.169.254/latest/meta-data",
            // A path that only starts with the prefix's text, or leaves it.
            "https://prom.internal/prometheus-admin",
            "https://prom.internal/prom-admin",
            "https://prom.internal/prom/../admin",
            "https://prom.internal/prom/%2e%2e/admin",
            "https://prom.internal/prom/..%2f..%2fadmin",
            "https://prom.internal/prom/..%5cadmin",
            "https://prom.internal",
            "http://prom.internal/prom",
            "https://prom.internal.evil.com/prom",
            // Not URLs the client would ask as given.
            "https://prom.internal/prom?x=",
            "https://prom.internal/prom#x",
            "prom.internal/prom",
            "",
        ] {
            assert!(!ok(base, &prefixes), "{base} passed");
        }
        // A broken prefix matches nothing, not everything.
        assert!(!ok("http://127.0.0.1:9090", &["", "http://", "127.0.0.1:9090"]));
    }

    #[test]
    fn the_refusal_says_what_to_add_or_what_is_allowed() {
        assert_eq!(
            refusal("http://169.254.169.254/latest", None).unwrap(),
            "prometheus url http://169.254.169.254/latest: this host lets the repo query no Prometheus (policy.prometheus lists none); if it may query this one, its owner adds `prometheus: [http://169.254.169.254/latest/]` under `policy:` in the host config"
        );
        assert_eq!(refusal("http://p", Some(&[])), refusal("http://p", None));
        let allowed = ["http://127.0.0.1:9090/".to_string()];
        assert_eq!(refusal("http://127.0.0.1:9090", Some(&allowed)), None);
        assert_eq!(
            refusal("http://127.0.0.1:9091", Some(&allowed)).unwrap(),
            "prometheus url http://127.0.0.1:9091 is outside this host's policy (policy.prometheus: http://127.0.0.1:9090/); use one of those, or ask the host's owner to add a prefix of it there"
        );
        assert!(check_prefix("https://prom.internal/").is_ok());
        for bad in [
            "prom.internal",
            "ftp://h/",
            "http://u:p@h/",
            "http://h/?a",
            "http://h/#a",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
