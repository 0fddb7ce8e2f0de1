//! A service's secrets as the planner sees them: where each value comes
//! from (age ciphertext in git, or a file on the host) and how the
//! container gets it. The value itself is read by the host (the root
//! crate decrypts) and kept in a `SecretText`, which never formats and
//! enters labels, hashes and plans only as a keyed digest (`env_seal`).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::file::{SecretsFile, ServiceFile};
use super::validate::{Ctx, From};

/// Where containers find a secret delivered as a file.
pub const MOUNT_DIR: &str = "/run/secrets";

/// How the container gets a secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The read-only file `/run/secrets/<NAME>`.
    #[default]
    File,
    /// An environment variable (shown by `docker inspect`).
    Env,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// age ciphertext (ASCII armor), from the service file or
    /// `secrets/<service>.yaml` (`file` says which).
    Age { file: String, armored: String },
    /// A file on the host (checked against `policy.secret_files`).
    File { path: String },
}

/// One secret of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretSpec {
    pub source: SecretSource,
    #[serde(rename = "as")]
    pub delivery: Delivery,
    /// The value, once this host has read it; `None` where no host is
    /// involved (`teal diff`, `teal validate`).
    #[serde(skip)]
    pub value: Option<SecretText>,
}

impl SecretSpec {
    /// What stands for the value in hashes: the value once read, else
    /// where it comes from (so `teal diff` sees a re-encrypted value as
    /// changed, and a host sees only a changed value as changed).
    pub fn identity(&self) -> String {
        match (&self.value, &self.source) {
            (Some(v), _) => v.expose().to_string(),
            (None, SecretSource::Age { armored, .. }) => format!("age:{armored}"),
            (None, SecretSource::File { path }) => format!("file:{path}"),
        }
    }
}

/// A secret's plain text. `Debug` shows `<redacted>`; serde passes it
/// through only so a sealed spec (digests) can travel in a label.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: impl Into<String>) -> SecretText {
        SecretText(text.into())
    }
    /// The text itself, for the one place that hands it to the container.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A name usable both as an environment variable and as a file name.
pub fn is_secret_name(name: &str) -> bool {
    let mut b = name.bytes();
    name.len() <= 128
        && b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The path of a service's secrets file, relative to the config root.
pub fn secrets_path(service: &str) -> String {
    format!("secrets/{service}.yaml")
}

/// The secrets of service file `f`: its `secrets:`, its `env_from_files`,
/// and every value of its `secrets/<service>.yaml` (`extra`, already
/// parsed; `extra_path` for messages). Problems go to `ctx`.
pub(super) fn resolve_secrets(
    ctx: &mut Ctx<'_>,
    f: &ServiceFile,
    extra: Option<&SecretsFile>,
    extra_path: &str,
) -> BTreeMap<String, SecretSpec> {
    let mut out = BTreeMap::new();
    let empty = SecretsFile::new();
    let extra = extra.unwrap_or(&empty);
    for (name, s) in &f.secrets {
        let at = ["secrets", name.as_str()];
        check_name(ctx, &at, name, f);
        let source = match (&s.age, &s.file, extra.get(name)) {
            (Some(_), Some(_), _) => {
                ctx.err(
                    From::Service,
                    &at,
                    format!("secret {name} has both age and file: give one"),
                );
                continue;
            }
            (Some(a), None, _) => age(ctx, &[&at[..], &["age"]].concat(), a, ctx.svc.path.to_string()),
            (None, Some(p), _) => host_file(ctx, &[&at[..], &["file"]].concat(), p),
            (None, None, Some(v)) => v.age.clone().map(|armored| SecretSource::Age {
                file: extra_path.to_string(),
                armored,
            }),
            (None, None, None) => {
                ctx.err(
                    From::Service,
                    &at,
                    format!("secret {name} has no value: set one with `teal secret set {} {name}` (it goes to {extra_path}), or give age or file here", service_of(extra_path)),
                );
                continue;
            }
        };
        let delivery = s.delivery.unwrap_or_default();
        if let Some(source) = source {
            out.insert(
                name.clone(),
                SecretSpec {
                    source,
                    delivery,
                    value: None,
                },
            );
        }
    }
    for (name, path) in &f.env_from_files {
        let at = ["env_from_files", name.as_str()];
        check_name(ctx, &at, name, f);
        if f.secrets.contains_key(name) {
            ctx.err(
                From::Service,
                &at,
                format!("{name} is also under secrets: give it once"),
            );
            continue;
        }
        if let Some(source) = host_file(ctx, &at, path) {
            let delivery = Delivery::Env;
            out.insert(
                name.clone(),
                SecretSpec {
                    source,
                    delivery,
                    value: None,
                },
            );
        }
    }
    for (name, v) in extra {
        if out.contains_key(name) || f.secrets.contains_key(name) || f.env_from_files.contains_key(name) {
            continue;
        }
        let Some(armored) = v.age.clone() else { continue };
        out.insert(
            name.clone(),
            SecretSpec {
                source: SecretSource::Age {
                    file: extra_path.to_string(),
                    armored,
                },
                delivery: Delivery::File,
                value: None,
            },
        );
    }
    out
}

fn service_of(extra_path: &str) -> &str {
    extra_path
        .strip_prefix("secrets/")
        .and_then(|s| s.strip_suffix(".yaml"))
        .unwrap_or(extra_path)
}

fn check_name(ctx: &mut Ctx<'_>, at: &[&str], name: &str, f: &ServiceFile) {
    if !is_secret_name(name) {
        ctx.err(
            From::Service,
            at,
            format!("invalid secret name {name:?}: use letters, digits and '_', not starting with a digit (it becomes a variable or a file name)"),
        );
    }
    if f.env.contains_key(name) {
        ctx.err(
            From::Service,
            at,
            format!("{name} is both in env and a secret: give it once (a secret in env is in plain text in git)"),
        );
    }
}

fn age(ctx: &mut Ctx<'_>, at: &[&str], armored: &str, file: String) -> Option<SecretSource> {
    if !is_armored(armored) {
        ctx.err(
            From::Service,
            at,
            "not an age ciphertext: it must be ASCII-armored, from -----BEGIN AGE ENCRYPTED FILE----- to -----END AGE ENCRYPTED FILE----- (`age -a`, or `teal secret set`)",
        );
        return None;
    }
    Some(SecretSource::Age {
        file,
        armored: armored.to_string(),
    })
}

fn host_file(ctx: &mut Ctx<'_>, at: &[&str], path: &str) -> Option<SecretSource> {
    if !path.starts_with('/') || path.contains('\0') {
        ctx.err(
            From::Service,
            at,
            format!("{path:?} is not an absolute path: name a file on the host, e.g. /etc/teal/secrets/web/token"),
        );
        return None;
    }
    Some(SecretSource::File { path: path.to_string() })
}

/// Whether `text` looks like age's ASCII armor (the decryptor has the
/// last word).
pub fn is_armored(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("-----BEGIN AGE ENCRYPTED FILE-----") && t.ends_with("-----END AGE ENCRYPTED FILE-----")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RepoFiles;

    const SVC: &str = "active: blue\nblue: {image: web:1}\nport: 80\nroute: {host: a.example.com}\nhealth: {tcp: {}}\n";
    const ARMOR: &str = "-----BEGIN AGE ENCRYPTED FILE-----\n    YWdl\n    -----END AGE ENCRYPTED FILE-----";

    fn load(extra: &str, secrets: Option<&str>) -> Result<crate::spec::Desired, Vec<String>> {
        let mut f = RepoFiles {
            has_services_dir: true,
            ..Default::default()
        };
        f.files.insert("services/web.yaml".into(), format!("{SVC}{extra}"));
        if let Some(s) = secrets {
            f.files.insert("secrets/web.yaml".into(), s.into());
        }
        crate::spec::load(&f).map_err(|d| d.0.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn secrets_come_from_the_service_file_its_secrets_file_and_host_files() {
        let file = format!("DB:\n  age: |\n    {ARMOR}\nAPI:\n  age: |\n    {ARMOR}\n");
        let d = load(
            "secrets: {API: {as: env}, KEY: {file: /etc/teal/k}}\nenv_from_files: {TOKEN: /etc/teal/t}\n",
            Some(&file),
        )
        .unwrap();
        let s = &d.services["web"].secrets;
        let got: Vec<(&str, Delivery, bool)> = s
            .iter()
            .map(|(k, v)| (k.as_str(), v.delivery, matches!(v.source, SecretSource::Age { .. })))
            .collect();
        assert_eq!(
            got,
            [
                ("API", Delivery::Env, true),
                ("DB", Delivery::File, true),
                ("KEY", Delivery::File, false),
                ("TOKEN", Delivery::Env, false)
            ]
        );
        let bad = load(
            "env: {DB: x}\nsecrets: {DB: {age: nope}, NONE: {}, BOTH: {age: x, file: /x}, 1X: {file: rel}}\nenv_from_files: {NONE: /y}\n",
            None,
        )
        .unwrap_err();
        for want in [
            "secret BOTH has both age and file",
            "invalid secret name \"1X\"",
            "\"rel\" is not an absolute path",
            "DB is both in env and a secret",
            "not an age ciphertext",
            "secret NONE has no value: set one with `teal secret set web NONE`",
            "NONE is also under secrets",
        ] {
            assert!(bad.iter().any(|e| e.contains(want)), "{want}: {bad:#?}");
        }
        let orphan = {
            let mut f = RepoFiles {
                has_services_dir: true,
                ..Default::default()
            };
            f.files.insert("secrets/gone.yaml".into(), "A: {age: x}\n".into());
            crate::spec::load(&f).unwrap_err().to_string()
        };
        assert!(orphan.contains("secrets/gone.yaml: no service gone"), "{orphan}");
    }

    #[test]
    fn names_fit_both_variables_and_files_and_text_never_formats() {
        for ok in ["DATABASE_URL", "_x", "a1"] {
            assert!(is_secret_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "../x", "A.B", "A B"] {
            assert!(!is_secret_name(bad), "{bad}");
        }
        let t = SecretText::new("hunter2");
        assert_eq!(format!("{t:?}"), "<redacted>");
        let s = SecretSpec {
            source: SecretSource::File { path: "/x".into() },
            delivery: Delivery::File,
            value: Some(t),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        assert_eq!(s.identity(), "hunter2");
    }
}
