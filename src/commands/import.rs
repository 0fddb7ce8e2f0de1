//! `teal import compose [FILE ...]`: docker compose files to
//! `services/<name>.yaml`. The mapping is pure (`teal_core::compose`);
//! this module finds and reads the files (the compose files, `.env`, each
//! service's `env_file`), checks the results as `teal validate` would, and
//! writes only what changed. The files are untrusted input: they reach no
//! shell, and nothing is written unless every written file validates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::compose::{self as ci, Kind};
use crate::spec::RepoFiles;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Turn docker compose files into services/NAME.yaml, one per service.
    ///
    /// Reads the files as compose does (.env interpolation, later files
    /// override earlier ones, profiles), writes a service file for each
    /// service with an image and a port, and lists per service and key
    /// what did not carry over and why. Secret-looking values are never
    /// written. Exit 0 all carried over, 2 something left out or a
    /// placeholder to fill in, 1 a broken file (nothing written).
    /// Example: `teal import compose docker-compose.yml --repo ../deploy`
    Compose(ComposeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ComposeArgs {
    /// Compose files, in order: each overrides the ones before (as
    /// `docker compose -f a.yml -f b.yml`). Default: compose.yaml (or
    /// docker-compose.yml) in the current directory and its override file.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The config repo's work tree to write services/ into.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Where teal.yaml and services/ live inside the repo, e.g. `--path deploy/`.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// Import only this compose service (repeatable), e.g. `--service web`.
    /// Default: every service.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
    /// Enable this compose profile (repeatable), e.g. `--profile prod`.
    /// Default: COMPOSE_PROFILES from the shell or .env, else none.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Print the files that would be written, and the report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite a service file that exists and differs from the import
    /// (e.g. after `teal bump`). Default: such a file is left as it is.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    match &args.what {
        What::Compose(a) => compose(a),
    }
}

fn compose(args: &ComposeArgs) -> anyhow::Result<u8> {
    let files = compose_files(&args.files)?;
    let base = files[0].parent().map(Path::to_path_buf).unwrap_or_default();
    let base = std::fs::canonicalize(if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &base
    })
    .context("finding the compose project's directory")?;
    let shell: ci::Vars = std::env::vars().collect();
    let dotenv = read_optional(&base.join(".env"))?;
    let vars = match ci::vars(dotenv.as_deref().map(|t| (".env", t)), &shell) {
        Ok(v) => v,
        Err(d) => return broken(&[d]),
    };
    let mut input = ci::Input {
        vars: vars.clone(),
        profiles: ci::profiles(&args.profiles, &vars),
        ..Default::default()
    };
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        input.files.push(ci::SourceFile {
            name: f.display().to_string(),
            text,
        });
    }
    let project = match ci::load(&input) {
        Ok(p) => p,
        Err(d) => return broken(&d.0),
    };
    for w in &project.warnings {
        eprintln!("warning: {w}");
    }
    for name in &args.services {
        if !project.services.contains_key(name) {
            let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
            bail!("no compose service {name:?} (enabled services: {})", known.join(", "));
        }
    }
    let mut notes = ci::Notes::default();
    let mut imported: Vec<ci::Imported> = vec![];
    let mut skipped: Vec<(String, String)> = vec![];
    for (name, loaded) in &project.services {
        if !args.services.is_empty() && !args.services.contains(name) {
            continue;
        }
        let env_files = match env_files(&base, &loaded.service, &vars) {
            Ok(e) => e,
            Err(d) => return broken(&[d]),
        };
        let cx = ci::Context {
            vars: &vars,
            env_files,
            base_dir: &base.to_string_lossy(),
        };
        match ci::map_service(name, loaded, &cx, &mut notes) {
            ci::Outcome::Imported(i) => imported.push(*i),
            ci::Outcome::Skipped(why) => skipped.push((name.clone(), why)),
        }
    }
    for (name, profiles) in &project.disabled {
        println!(
            "{name}: not imported: only in profiles {} (none enabled)",
            profiles.join(", ")
        );
    }
    finish(args, imported, skipped, notes)
}

/// The files given, or compose's default file and its override.
fn compose_files(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    const NAMES: [(&str, &str); 4] = [
        ("compose.yaml", "compose.override.yaml"),
        ("compose.yml", "compose.override.yml"),
        ("docker-compose.yml", "docker-compose.override.yml"),
        ("docker-compose.yaml", "docker-compose.override.yaml"),
    ];
    for (main, over) in NAMES {
        if Path::new(main).is_file() {
            let mut out = vec![PathBuf::from(main)];
            if Path::new(over).is_file() {
                out.push(PathBuf::from(over));
            }
            return Ok(out);
        }
    }
    bail!("no compose file given and none here (compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml): name the files, e.g. teal import compose docker-compose.yml")
}

fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Each `env_file` of a service, read (relative to the project) and
/// checked: (name, text).
fn env_files(
    base: &Path,
    s: &ci::model::Service,
    vars: &ci::Vars,
) -> Result<Vec<(String, String)>, crate::spec::Diagnostic> {
    let mut out = vec![];
    for (path, required) in s.env_file.as_ref().map(|e| e.entries()).unwrap_or_default() {
        let full = base.join(&path);
        let text = match read_optional(&full) {
            Ok(Some(t)) => t,
            Ok(None) if !required => continue,
            Ok(None) => {
                return Err(crate::spec::Diagnostic::new(
                    &path,
                    0,
                    0,
                    "env_file not found (mark it `required: false` if that is fine)",
                ))
            }
            Err(e) => return Err(crate::spec::Diagnostic::new(&path, 0, 0, format!("{e:#}"))),
        };
        if let Err(e) = ci::dotenv::parse(&text, vars) {
            return Err(crate::spec::Diagnostic::new(&path, e.line, 1, e.msg));
        }
        out.push((path, text));
    }
    Ok(out)
}

fn broken(diags: &[crate::spec::Diagnostic]) -> anyhow::Result<u8> {
    for d in diags {
        println!("{d}");
    }
    println!(
        "nothing imported: {} error{}",
        diags.len(),
        super::validate::plural(diags.len())
    );
    Ok(super::exit::ERROR)
}

/// The repo's files as they are, with `written` over them.
pub(crate) fn with_written(dir: &Path, written: &BTreeMap<String, String>) -> anyhow::Result<RepoFiles> {
    let mut files = if dir.is_dir() {
        crate::source::dir::read(dir).with_context(|| format!("reading {}", dir.display()))?
    } else {
        RepoFiles::default()
    };
    files.has_services_dir = true;
    for (rel, text) in written {
        files.files.insert(rel.clone(), text.clone());
    }
    Ok(files)
}

// The writing half: every file checked as `teal validate` would before
// any is written, a file already as the import would write it left
// untouched (so a second import changes nothing), and the report: per
// service what was written, then each note per service and key.

fn finish(
    args: &ComposeArgs,
    imported: Vec<ci::Imported>,
    skipped: Vec<(String, String)>,
    mut notes: ci::Notes,
) -> anyhow::Result<u8> {
    let dir = args.repo.join(args.path.trim_start_matches('/'));
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut from: BTreeMap<String, &str> = BTreeMap::new();
    for imp in &imported {
        let rel = format!("services/{}.yaml", imp.name);
        if let Some(other) = from.insert(rel.clone(), &imp.compose_name) {
            bail!(
                "compose services {other:?} and {:?} would both be {rel}: import them one at a time with --service and rename one",
                imp.compose_name
            );
        }
        texts.insert(rel, ci::render::render(imp));
    }
    let files = with_written(&dir, &texts)?;
    let mut invalid = vec![];
    for rel in texts.keys() {
        if let Some(errors) = super::errors_in(&files, rel) {
            invalid.push(errors);
        }
    }
    if !invalid.is_empty() {
        println!("{}", invalid.join("\n"));
        println!(
            "nothing written: the imported files would not validate (a value teal refuses; fix it in the compose file)"
        );
        return Ok(super::exit::ERROR);
    }
    for (rel, text) in &texts {
        let path = dir.join(rel);
        let existing = std::fs::read_to_string(&path).ok();
        let service = from[rel];
        let verb = match existing.as_deref() {
            Some(old) if old == text => "unchanged",
            Some(_) if !args.force => {
                notes.0.push(ci::NoteLine {
                    service: service.to_string(),
                    key: String::new(),
                    kind: Kind::LeftOut,
                    why: format!("{rel} exists and differs from the import (edited, or bumped): left as it is; --force overwrites it"),
                });
                "kept as it is"
            }
            _ if args.dry_run => "would write",
            _ => {
                write(&path, text)?;
                "written"
            }
        };
        if args.dry_run && verb == "would write" {
            println!("--- {rel}\n{text}");
        }
        println!("{service}: {rel} {verb}");
    }
    for (name, why) in &skipped {
        println!("{name}: not imported: {why}");
    }
    report(&notes);
    Ok(if notes.incomplete() || !skipped.is_empty() {
        super::exit::CHANGES
    } else {
        super::exit::OK
    })
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = path.with_extension("yaml.teal-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn report(notes: &ci::Notes) {
    if notes.0.is_empty() {
        return;
    }
    let mut sorted = notes.0.clone();
    sorted.sort_by(|a, b| (&a.service, a.kind, &a.key).cmp(&(&b.service, b.kind, &b.key)));
    println!();
    println!("Not carried over, or to look at:");
    for n in sorted {
        println!("  {}", crate::printable::field(&n.to_string()));
    }
}
