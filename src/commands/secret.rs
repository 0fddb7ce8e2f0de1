//! `teal secret set SERVICE NAME` and `teal secret ls SERVICE`: a value
//! read from stdin, encrypted with age to the recipients teal.yaml lists,
//! written into `secrets/SERVICE.yaml` keeping the file's comments and
//! order; and the names of a service's secrets with where each comes
//! from and who can read it. No value is ever printed.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::drivers::age;
use crate::spec::file::RepoFile;
use crate::spec::load::REPO_FILE;
use crate::spec::secret::{is_secret_name, secrets_path, SecretSource};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Encrypt the value on stdin to teal.yaml's secrets.recipients and
    /// write it into secrets/SERVICE.yaml.
    ///
    /// Example: `printf %s "$DATABASE_URL" | teal secret set web DATABASE_URL`
    Set {
        service: String,
        name: String,
        /// The config repo's work tree.
        #[arg(long, default_value = ".", value_name = "DIR")]
        repo: PathBuf,
        /// Where teal.yaml and services/ live inside the repo.
        #[arg(long, default_value = "/", value_name = "PATH")]
        path: String,
    },
    /// The names of SERVICE's secrets, where each comes from, how the
    /// container gets it and who can read it; never a value.
    ///
    /// Example: `teal secret ls web`
    Ls {
        service: String,
        #[arg(long, default_value = ".", value_name = "DIR")]
        repo: PathBuf,
        #[arg(long, default_value = "/", value_name = "PATH")]
        path: String,
    },
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    match &args.action {
        Action::Set {
            service,
            name,
            repo,
            path,
        } => set(&repo.join(path.trim_start_matches('/')), service, name),
        Action::Ls { service, repo, path } => ls(&repo.join(path.trim_start_matches('/')), service),
    }
}

fn set(dir: &std::path::Path, service: &str, name: &str) -> anyhow::Result<u8> {
    if !is_secret_name(name) {
        bail!("invalid secret name {name:?}: use letters, digits and '_', not starting with a digit");
    }
    let files = crate::source::dir::read(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !files.files.contains_key(&format!("services/{service}.yaml")) {
        bail!(
            "no service {service:?}: services/{service}.yaml does not exist in {}",
            dir.display()
        );
    }
    let recipients = recipients(files.files.get(REPO_FILE).map(String::as_str))?;
    let mut value = String::new();
    std::io::stdin()
        .take(age::MAX_VALUE_BYTES as u64 + 1)
        .read_to_string(&mut value)
        .context("reading the value from stdin")?;
    let value = value.strip_suffix('\n').unwrap_or(&value);
    if value.is_empty() {
        bail!("no value on stdin: pipe it in, e.g. printf %s \"$VALUE\" | teal secret set {service} {name}");
    }
    if value.len() > age::MAX_VALUE_BYTES {
        bail!(
            "the value is larger than {} bytes: a secret is a key or a URL, not a file",
            age::MAX_VALUE_BYTES
        );
    }
    let keys: Vec<_> = recipients
        .iter()
        .map(|(n, r)| age::recipient(r).map_err(|e| anyhow::anyhow!("{REPO_FILE}: secrets.recipients.{n}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let armored = age::encrypt(value, &keys).map_err(|e| anyhow::anyhow!("encrypting: {e}"))?;
    let rel = secrets_path(service);
    let file = dir.join(&rel);
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    let names: Vec<&str> = recipients.iter().map(|(n, _)| n.as_str()).collect();
    let text = upsert(&old, name, &entry(name, &names, &armored));
    let mut check = files.clone();
    check.files.insert(rel.clone(), text.clone());
    if let Err(diags) = crate::spec::load(&check) {
        bail!("the new {rel} would be invalid, nothing was written:\n{diags}");
    }
    std::fs::create_dir_all(file.parent().expect("secrets/ has a parent"))?;
    let tmp = file.with_extension("yaml.teal-tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    println!("{rel}: {name} encrypted to {}", names.join(", "));
    println!("next: git add {rel} && git commit -m \"{service}: set {name}\" && git push (the value restarts the color that gets it: with blue-green, stage it with `teal bump {service} <the image it runs>`)");
    Ok(super::exit::OK)
}

/// teal.yaml's recipients by name; an error says what to add.
fn recipients(text: Option<&str>) -> anyhow::Result<Vec<(String, String)>> {
    let repo: RepoFile = match text {
        Some(t) if !t.trim().is_empty() => serde_yaml::from_str(t).context("reading teal.yaml")?,
        _ => RepoFile::default(),
    };
    let list: Vec<(String, String)> = repo
        .secrets
        .map(|s| s.recipients.into_iter().collect())
        .unwrap_or_default();
    if list.is_empty() {
        bail!("teal.yaml lists no secrets.recipients, so nobody could decrypt the value: add each host's age recipient (age-keygen -y its identity file, or its ssh_host_ed25519_key.pub) and your own, e.g.\nsecrets:\n  recipients:\n    web-1: age1...\n    alice: ssh-ed25519 AAAA...");
    }
    Ok(list)
}

/// One entry of a secrets file.
fn entry(name: &str, recipients: &[&str], armored: &str) -> String {
    let body: String = armored.lines().map(|l| format!("    {l}\n")).collect();
    format!("{name}:\n  recipients: [{}]\n  age: |\n{body}", recipients.join(", "))
}

/// `text` with the top-level entry `name` replaced by `entry` (comments
/// above it kept), or `entry` appended when there is none.
fn upsert(text: &str, name: &str, entry: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let top = |l: &str| !l.is_empty() && !l.starts_with([' ', '\t', '#']);
    let start = lines
        .iter()
        .position(|l| top(l) && l.split(':').next().map(str::trim) == Some(name));
    let Some(start) = start else {
        let mut out = if text.is_empty() {
            "# Secrets of this service, encrypted with age (teal secret set); names stay readable.\n".to_string()
        } else {
            text.to_string()
        };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(entry);
        return out;
    };
    let end = (start + 1..lines.len()).find(|i| top(lines[*i])).unwrap_or(lines.len());
    // Comments just above the next entry belong to it.
    let mut end = end;
    while end > start + 1 && (lines[end - 1].starts_with('#') || lines[end - 1].trim().is_empty()) && end < lines.len()
    {
        end -= 1;
    }
    let mut out: String = lines[..start].iter().map(|l| format!("{l}\n")).collect();
    out.push_str(entry);
    out.extend(lines[end..].iter().map(|l| format!("{l}\n")));
    out
}

fn ls(dir: &std::path::Path, service: &str) -> anyhow::Result<u8> {
    let files = crate::source::dir::read(dir).with_context(|| format!("reading {}", dir.display()))?;
    let desired = crate::spec::load(&files).map_err(|d| anyhow::anyhow!("{d}"))?;
    let Some(svc) = desired.services.get(service) else {
        bail!("no service {service:?} in {}", dir.display());
    };
    let listed: crate::spec::file::SecretsFile = files
        .files
        .get(&secrets_path(service))
        .and_then(|t| serde_yaml::from_str(t).ok())
        .unwrap_or_default();
    if svc.secrets.is_empty() {
        println!("{service} has no secrets");
    }
    for (name, s) in &svc.secrets {
        let delivery = match s.delivery {
            crate::spec::secret::Delivery::File => format!("file /run/secrets/{name}"),
            crate::spec::secret::Delivery::Env => "env".to_string(),
        };
        let from = match &s.source {
            SecretSource::Age { file, .. } => {
                let to = listed
                    .get(name)
                    .map(|v| v.recipients.join(", "))
                    .filter(|t| !t.is_empty());
                format!(
                    "age in {file}, readable by {}",
                    to.as_deref().unwrap_or("(recipients not recorded)")
                )
            }
            SecretSource::File { path } => format!("host file {path}, on each host that has it"),
        };
        println!("{name}\t{delivery}\t{from}");
    }
    Ok(super::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_replaced_in_place_keeping_comments_and_order() {
        let text = "# top\nA:\n  age: |\n    old-a\n# about B\nB:\n  age: |\n    old-b\n";
        let out = upsert(text, "A", "A:\n  age: |\n    new-a\n");
        assert_eq!(
            out,
            "# top\nA:\n  age: |\n    new-a\n# about B\nB:\n  age: |\n    old-b\n"
        );
        let out = upsert(text, "B", "B:\n  age: |\n    new-b\n");
        assert_eq!(
            out,
            "# top\nA:\n  age: |\n    old-a\n# about B\nB:\n  age: |\n    new-b\n"
        );
        let out = upsert(text, "C", "C: x\n");
        assert!(out.starts_with(text) && out.ends_with("C: x\n"), "{out}");
        assert!(upsert("", "C", "C: x\n").starts_with("# Secrets"));
    }
}
