//! A registry's tag list through the OCI distribution API (`GET
//! /v2/<name>/tags/list`, pages followed by their `Link` header), for
//! `teal bump --latest`. Authentication as the registry asks in its
//! `WWW-Authenticate` answer: `Basic` with the credentials `auth` found,
//! or `Bearer` through the token realm it names (those credentials, or
//! anonymously, for a `repository:<name>:pull` token). HTTPS, except on
//! loopback (where Docker, too, speaks plain HTTP). Every answer is read
//! to a bound and every request has a timeout.

use std::time::Duration;

use bollard::auth::DockerCredentials;
use reqwest::header::{HeaderValue, AUTHORIZATION, LINK, WWW_AUTHENTICATE};
use reqwest::StatusCode;

use super::docker::auth::Found;

/// One answer's largest body: a tags page or a token.
const MAX_BODY: usize = 4 << 20;
/// Pages followed at most (1,000 tags a page).
const MAX_PAGES: usize = 100;
const TIMEOUT: Duration = Duration::from_secs(30);

/// The registry API's base URL for a registry host (none: Docker Hub).
pub fn base_url(registry: Option<&str>) -> String {
    match registry {
        None | Some("docker.io") | Some("index.docker.io") => "https://registry-1.docker.io".into(),
        Some(h) => {
            let host = h.rsplit_once(':').map_or(h, |(h, _)| h);
            let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            format!("{}://{h}", if loopback { "http" } else { "https" })
        }
    }
}

/// Every tag of repository `name` at `base`.
pub async fn tags(base: &str, name: &str, found: &Found) -> Result<Vec<String>, String> {
    let http = client()?;
    let mut auth: Option<HeaderValue> = None;
    let mut url = format!("{base}/v2/{name}/tags/list?n=1000");
    let mut all = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut answer = get(&http, &url, auth.as_ref()).await?;
        if answer.status() == StatusCode::UNAUTHORIZED && auth.is_none() {
            auth = Some(authorize(&http, &challenge(&answer), name, found).await?);
            answer = get(&http, &url, auth.as_ref()).await?;
        }
        let status = answer.status();
        let next = answer
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let body = read(answer).await?;
        match status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(match &found.credentials {
                    None => {
                        "the registry asks for credentials and none were found (docker login, or DOCKER_CONFIG)".into()
                    }
                    Some(_) => format!("the registry refused the credentials from {}", found.source),
                })
            }
            StatusCode::NOT_FOUND => return Err(format!("the registry has no repository {name}")),
            s => return Err(format!("GET {url}: HTTP {s}: {}", said(&body))),
        }
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not a tag list: {e}"))?;
        all.extend(page.tags.unwrap_or_default());
        match next {
            Some(n) if n.starts_with('/') => url = format!("{base}{n}"),
            Some(n) if n.starts_with(base) => url = n,
            _ => return Ok(all),
        }
    }
    Err(format!("more than {MAX_PAGES} pages of tags"))
}

/// Manifest types a digest is asked for in, as Docker pulls them.
const MANIFESTS: &str = "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// The digest the registry serves `name:tag` at now (`HEAD` of the
/// manifest, its `Docker-Content-Digest`); `None`: no such tag.
pub async fn manifest_digest(base: &str, name: &str, tag: &str, found: &Found) -> Result<Option<String>, String> {
    let http = client()?;
    let url = format!("{base}/v2/{name}/manifests/{tag}");
    let head = |auth: Option<HeaderValue>| {
        let mut req = http.head(&url).header(reqwest::header::ACCEPT, MANIFESTS);
        if let Some(a) = auth {
            req = req.header(AUTHORIZATION, a);
        }
        req.send()
    };
    let mut answer = head(None).await.map_err(|e| format!("HEAD {url}: {}", cause(&e)))?;
    if answer.status() == StatusCode::UNAUTHORIZED {
        let auth = authorize(&http, &challenge(&answer), name, found).await?;
        answer = head(Some(auth))
            .await
            .map_err(|e| format!("HEAD {url}: {}", cause(&e)))?;
    }
    match answer.status() {
        StatusCode::OK => Ok(answer
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(String::from)),
        StatusCode::NOT_FOUND => Ok(None),
        s => Err(format!("HEAD {url}: HTTP {s}")),
    }
}

/// The `WWW-Authenticate` challenge of a 401 answer.
fn challenge(answer: &reqwest::Response) -> String {
    answer
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| e.to_string())
}

async fn get(http: &reqwest::Client, url: &str, auth: Option<&HeaderValue>) -> Result<reqwest::Response, String> {
    let mut req = http.get(url);
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a.clone());
    }
    req.send().await.map_err(|e| format!("GET {url}: {}", cause(&e)))
}

/// The `Authorization` header answering the registry's challenge.
async fn authorize(http: &reqwest::Client, challenge: &str, name: &str, found: &Found) -> Result<HeaderValue, String> {
    let creds = found.credentials.as_ref();
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, pass)) = creds.and_then(user_pass) else {
            return Err(
                "the registry asks for credentials and none were found (docker login, or DOCKER_CONFIG)".into(),
            );
        };
        return header(&format!("Basic {}", b64(&format!("{user}:{pass}"))));
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "the registry asks for authentication teal does not speak: {}",
            said(challenge.as_bytes())
        ));
    }
    let get_param = |k: &str| param(params, k);
    let realm = get_param("realm").ok_or("the registry's Bearer challenge names no realm")?;
    if !realm_ok(&realm) {
        return Err(format!(
            "the token realm {realm:?} is neither https:// nor http:// on loopback: the credentials are not sent there"
        ));
    }
    let mut req = http.get(&realm).query(&[("scope", format!("repository:{name}:pull"))]);
    if let Some(service) = get_param("service") {
        req = req.query(&[("service", service)]);
    }
    if let Some((user, pass)) = creds.and_then(user_pass) {
        req = req.basic_auth(user, Some(pass));
    }
    let answer = req
        .send()
        .await
        .map_err(|e| format!("token from {realm}: {}", cause(&e)))?;
    let status = answer.status();
    let body = read(answer).await?;
    if !status.is_success() {
        return Err(format!(
            "the token service {realm} refused (HTTP {status}) the credentials from {}",
            found.source
        ));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let t: Token = serde_json::from_slice(&body).map_err(|e| format!("token from {realm}: not a token: {e}"))?;
    let token = t
        .token
        .or(t.access_token)
        .ok_or_else(|| format!("token from {realm}: no token in the answer"))?;
    header(&format!("Bearer {token}"))
}

/// Where credentials may go for a token: https, or plain http only to
/// this machine (a registry's answer names the realm; it is not trusted
/// with a password in clear over the network).
fn realm_ok(realm: &str) -> bool {
    if realm.starts_with("https://") {
        return true;
    }
    let Some(rest) = realm.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn user_pass(c: &DockerCredentials) -> Option<(&str, &str)> {
    Some((c.username.as_deref()?, c.password.as_deref()?))
}

fn header(v: &str) -> Result<HeaderValue, String> {
    let mut h =
        HeaderValue::from_str(v).map_err(|_| "a credential holds characters no header may carry".to_string())?;
    h.set_sensitive(true);
    Ok(h)
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `key="value"` from a challenge's parameters.
fn param(params: &str, key: &str) -> Option<String> {
    params.split(',').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The `rel="next"` target of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// The body, at most `MAX_BODY` bytes.
async fn read(mut answer: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| cause(&e))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("an answer larger than {} MiB", MAX_BODY >> 20));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a body, printable, for an error.
fn said(body: &[u8]) -> String {
    crate::printable::field(&String::from_utf8_lossy(&body[..body.len().min(200)])).into_owned()
}

/// The innermost cause of a request error: "Connection refused", a
/// certificate problem, a timeout.
fn cause(e: &reqwest::Error) -> String {
    let mut s: &dyn std::error::Error = e;
    while let Some(next) = s.source() {
        s = next;
    }
    if e.is_timeout() {
        return format!("no answer within {}s", TIMEOUT.as_secs());
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_links_and_challenges_are_read() {
        assert_eq!(base_url(None), "https://registry-1.docker.io");
        assert_eq!(base_url(Some("127.0.0.1:5000")), "http://127.0.0.1:5000");
        assert_eq!(base_url(Some("localhost:5000")), "http://localhost:5000");
        assert_eq!(base_url(Some("registry.example.com")), "https://registry.example.com");
        assert_eq!(
            next_link("</v2/shop/web/tags/list?last=1.4&n=1000>; rel=\"next\"").as_deref(),
            Some("/v2/shop/web/tags/list?last=1.4&n=1000")
        );
        assert_eq!(next_link("<x>; rel=\"prev\""), None);
        let c = "realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/nginx:pull\"";
        assert_eq!(param(c, "realm").as_deref(), Some("https://auth.docker.io/token"));
        assert_eq!(param(c, "service").as_deref(), Some("registry.docker.io"));
        assert_eq!(param(c, "nope"), None);
        assert!(realm_ok("https://auth.docker.io/token"));
        assert!(realm_ok("http://127.0.0.1:5001/token?x=1"));
        assert!(realm_ok("http://localhost/token"));
        assert!(
            !realm_ok("http://auth.example.com/token"),
            "a password in clear over the network"
        );
        assert!(!realm_ok("http://127.0.0.1.evil.example/token"));
        assert!(!realm_ok("file:///etc/passwd"));
    }
}
