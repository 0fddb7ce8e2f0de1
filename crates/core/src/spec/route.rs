//! A service's route as written (`route:` in the service file) and as
//! resolved: the host names the proxy matches, the path, and whether the
//! proxy terminates TLS for them, with a certificate from files on the
//! host or from an ACME CA.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::{DurationStr, ServiceFile};
use super::names::is_hostname;
use super::validate::{is_url_path, Ctx, From};
use super::{defaults, duration};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Host name the proxy matches, e.g. `shop.example.com`.
    pub host: Option<String>,
    /// More host names served the same way, e.g. `[www.shop.example.com]`;
    /// a certificate covers all of them.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Path prefix, starting with `/`. Default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// HTTPS for the route's hosts: `acme` (a certificate from the host's
    /// `acme:` CA, renewed by teal), or `{cert: FILE, key: FILE}` (files on
    /// the host, under its `policy.cert_files`). Absent: plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsFile>,
    /// With tls: plain HTTP requests get a 308 redirect to HTTPS (except
    /// ACME challenges). Default true.
    #[serde(default)]
    pub redirect: Option<bool>,
    /// With tls: sends `Strict-Transport-Security` with this max-age, e.g.
    /// `1y`. Default: no header.
    #[serde(default)]
    pub hsts: Option<DurationStr>,
}

/// `tls: acme` or `tls: {cert: ..., key: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TlsFile {
    Acme(AcmeWord),
    Files(TlsFilesFile),
}

/// The word `acme`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcmeWord {
    Acme,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFilesFile {
    /// PEM certificate chain on the host, leaf first, e.g. `/etc/teal/certs/shop.pem`.
    pub cert: Option<String>,
    /// PEM private key on the host; may be the same file as `cert`.
    pub key: Option<String>,
}

impl<'de> Deserialize<'de> for TlsFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TlsFile;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("acme, or a map with cert and key")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TlsFile, E> {
                match s {
                    "acme" => Ok(TlsFile::Acme(AcmeWord::Acme)),
                    other => Err(E::custom(format!(
                        "unknown tls {other:?}: write tls: acme, or tls: {{cert: FILE, key: FILE}}"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<TlsFile, A::Error> {
                let files = TlsFilesFile::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(TlsFile::Files(files))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for TlsFile {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Tls".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let files = g.subschema_for::<TlsFilesFile>();
        schemars::json_schema!({
            "description": "acme, or certificate and key files on the host.",
            "oneOf": [{"const": "acme"}, files]
        })
    }
}

/// Where a route's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsSource {
    /// Ordered from the host's ACME CA (HTTP-01 through the proxy).
    Acme,
    /// Files on the host, checked against `policy.cert_files`.
    Files { cert: String, key: String },
}

/// HTTPS of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTls {
    pub source: TlsSource,
    /// Plain HTTP answers 308 to HTTPS.
    pub redirect: bool,
    /// `Strict-Transport-Security: max-age=...`, if asked for.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "duration::serde_human_opt")]
    pub hsts: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub host: String,
    /// Path prefix, always starting with `/`. Default `/`.
    pub path: String,
    /// More host names, lowercased.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
}

impl Route {
    /// The host and its aliases.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.host.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

pub(super) fn resolve_route(ctx: &mut Ctx<'_>, f: &ServiceFile) -> Option<Route> {
    let Some(r) = &f.route else {
        ctx.err(
            From::Service,
            &[],
            "missing required field \"route\": the host (and optional path) the proxy sends to this service",
        );
        return None;
    };
    let host = match r.host.as_deref() {
        None => {
            ctx.err(
                From::Service,
                &["route"],
                "route needs a host, e.g. host: shop.example.com",
            );
            None
        }
        Some(h) => host_name(ctx, &["route", "host"], h),
    };
    let mut aliases = vec![];
    for (i, a) in r.aliases.iter().enumerate() {
        let n = i.to_string();
        let Some(a) = host_name(ctx, &["route", "aliases", &n], a) else {
            continue;
        };
        if Some(&a) == host.as_ref() || aliases.contains(&a) {
            ctx.err(
                From::Service,
                &["route", "aliases", &n],
                format!("alias {a} is listed twice"),
            );
        } else {
            aliases.push(a);
        }
    }
    let path = r.path.clone().unwrap_or_else(|| defaults::ROUTE_PATH.into());
    if !is_url_path(&path) {
        ctx.err(
            From::Service,
            &["route", "path"],
            format!(
                "invalid path {path:?}: it must start with '/' and have no spaces, quotes, ';', '{{', '}}', '#' or '?'"
            ),
        );
        return None;
    }
    let tls = resolve_tls(ctx, r);
    Some(Route {
        host: host?,
        path,
        aliases,
        tls: tls?,
    })
}

/// A route host, lowercased; `None` (and a diagnostic) when it is not a
/// DNS name. A wildcard is no route host: the proxies match exact names.
fn host_name(ctx: &mut Ctx<'_>, at: &[&str], h: &str) -> Option<String> {
    if is_hostname(h) {
        return Some(h.to_ascii_lowercase());
    }
    if h.starts_with("*.") {
        ctx.err(
            From::Service,
            at,
            format!("wildcard host {h:?}: teal routes exact names (and ACME's HTTP-01 cannot issue a wildcard certificate); list each name, in host and aliases"),
        );
        return None;
    }
    ctx.err(
        From::Service,
        at,
        format!("invalid host {h:?}: use a DNS name such as shop.example.com"),
    );
    None
}

/// `Some(None)`: no TLS; `None`: errors were reported.
fn resolve_tls(ctx: &mut Ctx<'_>, r: &RouteFile) -> Option<Option<RouteTls>> {
    let Some(t) = &r.tls else {
        for (field, set) in [("redirect", r.redirect.is_some()), ("hsts", r.hsts.is_some())] {
            if set {
                ctx.err(
                    From::Service,
                    &["route", field],
                    format!("route.{field} needs route.tls: without TLS there is no HTTPS to send clients to"),
                );
                return None;
            }
        }
        return Some(None);
    };
    let source = match t {
        TlsFile::Acme(_) => TlsSource::Acme,
        TlsFile::Files(files) => files_source(ctx, files)?,
    };
    let hsts = match &r.hsts {
        None => None,
        Some(d) => match duration::parse(&d.0) {
            Ok(d) if d.as_secs() >= 1 => Some(d),
            Ok(_) => {
                ctx.err(From::Service, &["route", "hsts"], "hsts must be at least 1s, e.g. 1y");
                return None;
            }
            Err(e) => {
                ctx.err(From::Service, &["route", "hsts"], e);
                return None;
            }
        },
    };
    Some(Some(RouteTls {
        source,
        redirect: r.redirect.unwrap_or(true),
        hsts,
    }))
}

fn files_source(ctx: &mut Ctx<'_>, f: &TlsFilesFile) -> Option<TlsSource> {
    let mut ok = true;
    for (field, v) in [("cert", &f.cert), ("key", &f.key)] {
        match v.as_deref() {
            None => {
                ctx.err(
                    From::Service,
                    &["route", "tls"],
                    format!("tls needs {field}: the path of the PEM {field} file on the host"),
                );
                ok = false;
            }
            Some(p) if !p.starts_with('/') || p.contains('\0') || p.contains('\n') => {
                ctx.err(
                    From::Service,
                    &["route", "tls", field],
                    format!("tls {field} {p:?} must be an absolute path on the host"),
                );
                ok = false;
            }
            Some(_) => {}
        }
    }
    ok.then(|| TlsSource::Files {
        cert: f.cert.clone().unwrap_or_default(),
        key: f.key.clone().unwrap_or_default(),
    })
}
