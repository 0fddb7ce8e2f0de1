//! `teal validate`: parse and check every file of the config repo, either
//! the directory as it is on disk or a revision read from git.

use std::path::PathBuf;

use anyhow::Context;

use crate::spec::{self, RepoFiles};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config repo (a directory; with --rev, any path inside a git repo).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Check this git revision, e.g. `--rev HEAD~1`. Default: the files on
    /// disk, committed or not.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
    /// Where teal.yaml and services/ live inside the repo, e.g. `--path deploy/`.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// Also check against this host config's policy (allowed images and
    /// bind mounts), as the daemon on that host would, e.g.
    /// `--config hosts/web-1.yaml`. Default: no host policy.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Exit 0 when valid, 1 with every problem listed as `path:line:col: message`.
pub fn run(args: &Args) -> anyhow::Result<u8> {
    let files = match &args.rev {
        Some(rev) => crate::source::read_files(&args.repo, rev, &args.path)?,
        None => {
            let dir = args.repo.join(args.path.trim_start_matches('/'));
            crate::source::dir::read(&dir).with_context(|| format!("reading {}", dir.display()))?
        }
    };
    let policy = policy_violations(args.config.as_deref(), &files)?;
    match spec::load(&files).and_then(|d| match policy(&d) {
        None => Ok(d),
        Some(diags) => Err(diags),
    }) {
        Ok(desired) => {
            for w in &desired.warnings {
                println!("warning: {w}");
            }
            // A repo of thousands of services gets a line, not a page.
            const SHOWN: usize = 12;
            let n = desired.services.len();
            let mut names: Vec<&str> = desired.services.keys().take(SHOWN).map(String::as_str).collect();
            let more = n.saturating_sub(SHOWN).to_string() + " more";
            if n > SHOWN {
                names.push(&more);
            }
            println!("ok: {n} service{} valid ({})", plural(n), names.join(", "));
            Ok(super::exit::OK)
        }
        Err(diags) => {
            println!("{diags}");
            let n = diags.0.len();
            println!("{n} error{}", plural(n));
            Ok(super::exit::ERROR)
        }
    }
}

/// With a host config: a check of a desired state against its policy
/// (`None` when it passes). Without: a check that always passes.
pub(crate) fn policy_violations<'a>(
    config: Option<&std::path::Path>,
    files: &'a RepoFiles,
) -> anyhow::Result<impl Fn(&spec::Desired) -> Option<spec::Diagnostics> + 'a> {
    let config = match config {
        Some(path) => Some(crate::config::HostConfig::load(path).context("loading the host config for its policy")?),
        None => None,
    };
    Ok(move |d: &spec::Desired| {
        let c = config.as_ref()?;
        let v = crate::reconcile::PolicyCheck::of(c).check(d, files);
        (!v.is_empty()).then_some(spec::Diagnostics(v))
    })
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
