//! Loading a config repo: from a directory or from files read out of a git
//! tree (see `source`), into a validated `Desired`.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use super::file::{RepoFile, SecretsFile, ServiceFile};
use super::limits::{MAX_REPO_BYTES, MAX_SERVICES};
use super::locate::Locator;
use super::validate::{resolve_service, Ctx, Source};
use super::{Desired, Diagnostic, Diagnostics};

/// Path of the optional repo-wide defaults file.
pub const REPO_FILE: &str = "teal.yaml";
/// Directory holding one file per service.
pub const SERVICES_DIR: &str = "services";
/// Directory holding each service's encrypted secrets, `<service>.yaml`.
pub const SECRETS_DIR: &str = "secrets";

/// The files of one revision of a config repo: `teal.yaml` (optional) and
/// `services/*.yaml`, keyed by path relative to the repo's config root,
/// with forward slashes. Nothing else is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoFiles {
    pub files: BTreeMap<String, String>,
    /// Whether a `services/` directory exists (an empty one is valid).
    pub has_services_dir: bool,
    /// Other files in `services/` (`web.yml`, `notes.txt`), by path. Each is
    /// an error: a file meant as a service must never be skipped silently.
    pub misnamed: BTreeSet<String>,
    /// Bytes of the files read so far, against `limits::MAX_REPO_BYTES`.
    pub bytes: usize,
}

impl RepoFiles {
    /// Adds a file read from a work tree or a git tree, keeping only the files
    /// teal reads. `path` is relative to the config root. Refused, with
    /// nothing kept, when the file would take the repo past
    /// `limits::MAX_SERVICES` or `limits::MAX_REPO_BYTES`.
    pub fn insert(&mut self, path: &str, text: String) -> Result<(), Diagnostic> {
        if path == REPO_FILE {
            self.room(path, text.len() as u64)?;
            self.bytes += text.len();
            self.files.insert(path.to_string(), text);
        } else if let Some(name) = path.strip_prefix("services/") {
            self.has_services_dir = true;
            match service_entry(name) {
                ServiceEntry::Service => {
                    self.room(path, text.len() as u64)?;
                    self.bytes += text.len();
                    self.files.insert(path.to_string(), text);
                }
                ServiceEntry::Misnamed => {
                    self.misnamed.insert(path.to_string());
                }
                ServiceEntry::Ignored => {}
            }
        } else if let Some(name) = path.strip_prefix("secrets/") {
            if service_entry(name) == ServiceEntry::Service {
                self.room(path, text.len() as u64)?;
                self.bytes += text.len();
                self.files.insert(path.to_string(), text);
            }
        }
        Ok(())
    }

    /// Whether a file of `size` bytes at `path` still fits the limits on a
    /// whole repo, asked before it is read: a commit of ten thousand 1 MiB
    /// files is refused before teal holds 10 GB of them.
    pub fn room(&self, path: &str, size: u64) -> Result<(), Diagnostic> {
        let services = self.files.keys().filter(|p| p.starts_with("services/")).count();
        if path.starts_with("services/") && services >= MAX_SERVICES {
            return Err(Diagnostic::new(
                path,
                0,
                0,
                format!("more than {MAX_SERVICES} service files in one commit: teal refuses such a repo (split it by host with placement, or keep one repo per fleet)"),
            ));
        }
        if self.bytes as u64 + size > MAX_REPO_BYTES as u64 {
            return Err(Diagnostic::new(
                path,
                0,
                0,
                format!("the config files of this commit add up to more than {MAX_REPO_BYTES} bytes: teal refuses such a repo"),
            ));
        }
        Ok(())
    }
}

/// What teal makes of a file name directly under `services/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceEntry {
    /// `<name>.yaml`: one service.
    Service,
    /// A dotfile (`.gitkeep`), or a path in a subdirectory: not read.
    Ignored,
    /// Anything else (`web.yml`, `web.yaml.bak`, `notes.txt`): an error.
    Misnamed,
}

/// Classifies `name`, a file name relative to `services/`.
pub fn service_entry(name: &str) -> ServiceEntry {
    if name.starts_with('.') || name.contains('/') {
        ServiceEntry::Ignored
    } else if name.ends_with(".yaml") {
        ServiceEntry::Service
    } else {
        ServiceEntry::Misnamed
    }
}

/// What to tell the user about a misnamed file in `services/`.
fn misnamed(path: &str) -> Diagnostic {
    let stem = [".yml", ".YML", ".YAML", ".Yaml", ".Yml"]
        .iter()
        .find_map(|ext| path.strip_suffix(ext));
    let msg = match stem {
        Some(stem) => format!("teal reads only files ending in .yaml in services/: rename it to {stem}.yaml"),
        None => "not a service file: services/ holds one <name>.yaml per service; rename it to end in .yaml if it is one, or move it out of services/".to_string(),
    };
    Diagnostic::new(path, 0, 0, msg)
}

/// Parses and validates every file, returning every problem at once, sorted
/// by file and position.
pub fn load(files: &RepoFiles) -> Result<Desired, Diagnostics> {
    let mut diags = Vec::new();
    if !files.has_services_dir {
        diags.push(Diagnostic::new(
            "services/",
            0,
            0,
            "no services directory: create services/<name>.yaml, one file per service",
        ));
        return Err(Diagnostics(diags));
    }
    diags.extend(files.misnamed.iter().map(|p| misnamed(p)));
    // Hostile files (too large, too deep, alias bombs) go no further than
    // this check: nothing else reads them.
    let mut hostile = BTreeSet::new();
    for (path, text) in &files.files {
        if let Err(d) = super::limits::check(path, text) {
            diags.push(d);
            hostile.insert(path.as_str());
        }
    }
    if hostile.contains(REPO_FILE) {
        return Err(Diagnostics(diags));
    }
    let repo_text = files.files.get(REPO_FILE).map(String::as_str).unwrap_or("");
    let repo_loc = Locator::new(repo_text);
    let repo: RepoFile = if repo_text.trim().is_empty() {
        RepoFile::default()
    } else {
        parse(REPO_FILE, repo_text, &mut diags).unwrap_or_default()
    };
    let mut desired = Desired {
        hosts: super::fleet::resolve_hosts(&repo, &repo_loc, &mut diags),
        ..Default::default()
    };
    for (path, text) in &files.files {
        let Some(file_name) = path
            .strip_prefix("services/")
            .filter(|_| !hostile.contains(path.as_str()))
        else {
            continue;
        };
        let name = file_name.trim_end_matches(".yaml");
        if is_blank(text) {
            diags.push(Diagnostic::new(
                path,
                1,
                1,
                "empty service file: it needs at least active, a color with an image, port and route",
            ));
            continue;
        }
        let Some(file) = parse::<ServiceFile>(path, text, &mut diags) else {
            continue;
        };
        let secrets_path = super::secret::secrets_path(name);
        let secrets = match files.files.get(&secrets_path) {
            Some(t) if !hostile.contains(secrets_path.as_str()) && !is_blank(t) => {
                match parse::<SecretsFile>(&secrets_path, t, &mut diags) {
                    Some(s) => Some(s),
                    None => continue,
                }
            }
            _ => None,
        };
        let loc = Locator::new(text);
        let mut ctx = Ctx {
            svc: Source { path, loc: &loc },
            repo: Source {
                path: REPO_FILE,
                loc: &repo_loc,
            },
            diags: &mut diags,
        };
        if let Some(svc) = resolve_service(&mut ctx, name, &file, &repo, secrets.as_ref()) {
            desired.services.insert(name.to_string(), svc);
        }
    }
    check_routes(&desired, files, &mut diags);
    check_secrets_files(&desired, files, &mut diags);
    desired.warnings = super::fleet::check_placement(&desired, files, &mut diags);
    diags.sort();
    diags.dedup();
    if diags.is_empty() {
        Ok(desired)
    } else {
        Err(Diagnostics(diags))
    }
}

/// A secrets file is read with its service: one without a service is a
/// mistake (a renamed service whose secrets stayed behind).
fn check_secrets_files(desired: &Desired, files: &RepoFiles, diags: &mut Vec<Diagnostic>) {
    for path in files.files.keys() {
        let Some(name) = path.strip_prefix("secrets/").and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        let service = format!("services/{name}.yaml");
        if !desired.services.contains_key(name) && !files.files.contains_key(&service) {
            diags.push(Diagnostic::new(
                path,
                0,
                0,
                format!("no service {name} for these secrets: teal reads secrets/<service>.yaml beside {service}; rename it after its service, or remove it"),
            ));
        }
    }
}

fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// Deserialises one file; a syntax error, unknown field or wrong type
/// becomes a located diagnostic.
fn parse<T: DeserializeOwned>(path: &str, text: &str, diags: &mut Vec<Diagnostic>) -> Option<T> {
    let dups = Locator::new(text);
    if let Some((p, at)) = dups.duplicates().first() {
        let key = p.last().map_or("", String::as_str);
        let within = match &p[..p.len().saturating_sub(1)] {
            [] => String::new(),
            parent => format!(" in {}", parent.join(".")),
        };
        diags.push(Diagnostic::new(
            path,
            at.line,
            at.col,
            format!("duplicate key \"{key}\"{within}: each key may appear once"),
        ));
        return None;
    }
    match serde_yaml::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            diags.push(Diagnostic::new(path, line, col, serde_message(&e.to_string())));
            None
        }
    }
}

/// serde_yaml's message without its trailing " at line X column Y" (the
/// position is printed as a prefix), with backticks as quotes.
fn serde_message(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.replace('`', "\"")
}

/// Each route host+path serves one service; a preview host is not a route
/// host; the routes of one host agree on TLS (a host is HTTPS or not, with
/// one certificate).
fn check_routes(desired: &Desired, files: &RepoFiles, diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    let mut tls: BTreeMap<&str, (&str, &Option<super::RouteTls>)> = BTreeMap::new();
    let route_hosts: BTreeMap<&str, &str> = desired
        .services
        .values()
        .flat_map(|s| s.route.hosts().map(move |h| (h, s.file.as_str())))
        .collect();
    for svc in desired.services.values() {
        let loc = || Locator::new(files.files.get(&svc.file).map_or("", |t| t.as_str()));
        let mut at = |field: &str, msg: String| {
            let (line, col) = loc().pos(&["route", field]);
            diags.push(Diagnostic::new(&svc.file, line, col, msg));
        };
        for host in svc.route.hosts() {
            let key = (host.to_string(), svc.route.path.clone());
            match seen.get(&key) {
                Some(other) => at(
                    "host",
                    format!(
                        "route {}{} is already served by {other}: each host and path belongs to one service",
                        key.0, key.1
                    ),
                ),
                None => _ = seen.insert(key, &svc.file),
            }
            match tls.get(host) {
                Some((other, t)) if **t != svc.route.tls => at(
                    "tls",
                    format!("host {host} is also routed by {other} with other TLS settings: the routes of one host must have the same tls, redirect and hsts"),
                ),
                Some(_) => {}
                None => _ = tls.insert(host, (&svc.file, &svc.route.tls)),
            }
        }
        if let Some(p) = &svc.preview {
            if let Some(owner) = route_hosts.get(p.host.as_str()).filter(|f| **f != svc.file) {
                let (line, col) = loc().pos(&["preview", "host"]);
                let msg = format!(
                    "preview host {} is the route host of {owner}: use a host of its own",
                    p.host
                );
                diags.push(Diagnostic::new(&svc.file, line, col, msg));
            }
        }
    }
}
