//! A service's environment: `env_file` values under `environment`, a
//! `KEY:` without value taken from the variables, and every value that
//! looks like a secret kept out of the written file: it becomes an
//! `env_from_files` entry naming a file on the host, with a note.

use std::collections::BTreeMap;

use super::model::Service;
use super::words::Context;
use super::Note;

/// Where a secret's placeholder points: a file under the host's
/// conventional secrets directory.
pub fn secret_path(service: &str, name: &str) -> String {
    format!("/etc/teal/secrets/{service}/{name}")
}

pub struct EnvOut {
    pub env: BTreeMap<String, String>,
    pub from_files: BTreeMap<String, String>,
    /// nginx-proxy's `VIRTUAL_PORT`, when set.
    pub port_hint: Option<u16>,
}

/// The environment of `s` for teal service `name`; `consumed` names the
/// variables that a proxy read (they became the route).
pub fn env_of(name: &str, s: &Service, cx: &Context<'_>, consumed: &[String], n: &mut Note) -> EnvOut {
    let mut all: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (file, vars) in &cx.env_files {
        for (k, v) in super::dotenv::parse(vars, cx.vars).unwrap_or_default() {
            all.insert(k, (v, format!("env_file {file}")));
        }
    }
    for (k, v) in &s.environment {
        match v {
            Some(v) => {
                all.insert(k.clone(), (v.text(), "environment".into()));
            }
            None => match cx.vars.get(k) {
                Some(v) => {
                    all.insert(k.clone(), (v.clone(), "environment".into()));
                }
                None => n.left_out(
                    &format!("environment.{k}"),
                    "no value here and none in the shell or .env: compose would leave it out too",
                ),
            },
        }
    }
    let mut out = EnvOut {
        env: BTreeMap::new(),
        from_files: BTreeMap::new(),
        port_hint: None,
    };
    for (k, (v, from)) in all {
        if k == "VIRTUAL_PORT" {
            out.port_hint = v.trim().parse().ok().filter(|p| *p > 0);
        }
        if consumed.contains(&k) || k == "VIRTUAL_PORT" {
            n.info(
                &format!("environment.{k}"),
                "read for the route (nginx-proxy), not passed on",
            );
            continue;
        }
        if looks_secret(&k, &v) {
            let path = secret_path(name, &k);
            n.todo(
                &format!("environment.{k}"),
                format!("looks like a secret ({from}), so its value is not written: put it in {path} on the host (its policy.secret_files must allow that directory), or run `teal secret set {name} {k}` and replace the env_from_files entry with `secrets: {{{k}: {{as: env}}}}`"),
            );
            out.from_files.insert(k, path);
            continue;
        }
        out.env.insert(k, v);
    }
    out
}

/// Names with a secret's words (`DB_PASSWORD`, `API_KEY`, `GITHUB_TOKEN`,
/// `SECRET_KEY_BASE`) and URLs with a password (`postgres://u:p@db/x`).
pub fn looks_secret(name: &str, value: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const WORDS: &[&str] = &["PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL", "PRIVATE"];
    const PARTS: &[&str] = &["KEY", "APIKEY", "PASS", "PWD", "AUTH", "DSN", "SALT", "CERT"];
    WORDS.iter().any(|w| upper.contains(w))
        || upper.split(['_', '-', '.']).any(|p| PARTS.contains(&p))
        || has_password(value)
}

/// `scheme://user:password@host...`
fn has_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_by_name_or_by_a_password_in_a_url() {
        for (name, value) in [
            ("DB_PASSWORD", "x"),
            ("POSTGRES_PASSWORD_FILE", "x"),
            ("API_KEY", "x"),
            ("SECRET_KEY_BASE", "x"),
            ("GITHUB_TOKEN", "x"),
            ("aws_secret_access_key", "x"),
            ("SMTP_PASS", "x"),
            ("DATABASE_URL", "postgres://app:hunter2@db:5432/app"),
        ] {
            assert!(looks_secret(name, value), "{name}");
        }
        for (name, value) in [
            ("RUST_LOG", "info"),
            ("KEYCLOAK_HOST", "auth.example.com"),
            ("DATABASE_URL", "postgres://app@db/app"),
            ("HOMEPAGE", "https://example.com/a:b@c"),
            ("PORT", "8080"),
        ] {
            assert!(!looks_secret(name, value), "{name}");
        }
    }
}
