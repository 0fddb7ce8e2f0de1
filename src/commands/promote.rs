//! `teal promote SERVICE` and `teal abort SERVICE`: the word that lets a
//! rollout waiting for a promotion go on, or puts all its traffic back,
//! as a commit. Writes `promote: <commit>` (or `abort:`) into
//! services/SERVICE.yaml, where <commit> is the repo's HEAD: it covers
//! the rollout that was under way at that commit, not a later one. Git
//! stays the record of who promoted what, and when.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{errors_in, git as git_out};
use crate::spec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service, i.e. the file stem of services/SERVICE.yaml, e.g. `web`.
    pub service: String,
    /// The config repo's work tree.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Where teal.yaml and services/ live inside the repo, e.g. `--path deploy/`.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// The commit whose rollout is meant (it and its ancestors' rollouts
    /// are covered). Default: HEAD.
    #[arg(long = "at", value_name = "COMMIT")]
    pub at: Option<String>,
    /// Only edit the file; default: edit and `git commit` it.
    #[arg(long)]
    pub no_commit: bool,
}

/// `promote` or `abort`.
pub fn run(word: &str, args: &Args) -> anyhow::Result<u8> {
    let dir = args.repo.join(args.path.trim_start_matches('/'));
    let rel = format!("services/{}.yaml", args.service);
    let file = dir.join(&rel);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("no service {:?}: reading {}", args.service, file.display()))?;
    let at = args.at.clone().unwrap_or_else(|| "HEAD".into());
    let commit = git_out(&dir, &["rev-parse", "--verify", "--quiet", &format!("{at}^{{commit}}")])
        .with_context(|| format!("{at} is not a commit of {}", dir.display()))?;
    let edited = spec::edit::set_word(&rel, &text, word, &commit)?;
    let mut files = crate::source::dir::read(&dir).with_context(|| format!("reading {}", dir.display()))?;
    files.files.insert(rel.clone(), edited.clone());
    if let Some(errors) = errors_in(&files, &rel) {
        bail!("{rel} would be invalid, nothing was written:\n{errors}");
    }
    let tmp = file.with_extension("yaml.teal-tmp");
    std::fs::write(&tmp, &edited).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    let short = &commit[..commit.len().min(7)];
    let what = match word {
        "promote" => format!("the rollout under way at {short} goes on once a host reads this commit"),
        _ => format!(
            "the rollout under way at {short} puts all traffic back on the old color once a host reads this commit"
        ),
    };
    println!("{rel}: {word}: {commit}: {what}");
    if args.no_commit {
        println!("next: git commit -am \"{}: {word} {short}\" && git push", args.service);
        return Ok(super::exit::OK);
    }
    let msg = format!("{}: {word} the rollout of {short}", args.service);
    git_out(&dir, &["add", "--", &rel])?;
    git_out(&dir, &["commit", "-q", "-m", &msg, "--", &rel])?;
    println!("committed: {msg} (push it: git push)");
    Ok(super::exit::OK)
}
