//! `teal trust reset`: records a commit, shown first, as the one this host
//! applied last: the baseline `repo.fast_forward_only` checks new heads
//! against. For a record that is lost or damaged (the daemon then refuses
//! every head and says to run this), or to accept a rewound branch on
//! purpose. The commit must carry the signature `repo.verify` asks for.

use std::path::PathBuf;

use crate::commit::ShortCommit;
use crate::config::HostConfig;
use crate::reconcile::applied::{self, Baseline};
use crate::source::verify::{self, Verify};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Accept the branch head (or REV) as the commit this host applied last.
    ///
    /// Fetches the branch, checks the commit's signature as the daemon
    /// does (repo.verify), shows it and what it replaces, then records it
    /// in state_dir/applied-commit. The daemon reads the record at each
    /// fetch: no restart needed. Exit 0 recorded, 1 not (unsigned, not
    /// found, unreadable config).
    /// Example: `teal trust reset --config /etc/teal/daemon.yaml --rev 3f2a9c1`
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The host config: where the config repo and the state dir are, and
    /// which signatures it requires. E.g. `--config ./daemon.yaml`.
    #[arg(long, default_value = crate::config::DEFAULT_PATH, value_name = "FILE")]
    pub config: PathBuf,
    /// The commit to accept: a commit id, or any revision of the fetched
    /// mirror such as `refs/remotes/origin/main~1`. Default: the head of
    /// the configured branch, fetched now.
    #[arg(long, value_name = "REV")]
    pub rev: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    match &args.command {
        Command::Reset(a) => reset(a),
    }
}

fn reset(args: &ResetArgs) -> anyhow::Result<u8> {
    let config = super::host::load_file(&args.config)?;
    let (mirror, head) = crate::reconcile::fetch_head(&config)?;
    let before = applied::read(&config.state_dir);
    let repo = git2::Repository::open_bare(&mirror)?;
    let commit = match &args.rev {
        None => head,
        Some(rev) => crate::source::resolve(&repo, rev)?,
    };
    let id = commit.to_string();
    let signer = match signature(&repo, commit, &config) {
        Ok(s) => s,
        Err(why) => {
            eprintln!("teal trust reset: {}: {why}; nothing recorded", ShortCommit::of(&id));
            return Ok(super::exit::ERROR);
        }
    };
    let info = crate::source::commit_info(&repo, &id)?;
    println!("teal trust reset: accepting this commit as the one this host applied last");
    println!("  commit   {id}");
    println!("  subject  {}", info.message);
    println!("  author   {}, {}", info.author, info.time);
    println!("  {signer}");
    println!("  before: {}", shown(&before));
    if head != commit {
        let descends = verify::fast_forward(&repo, head, commit).is_ok();
        println!(
            "note: the branch head {} {}",
            ShortCommit::of(&head.to_string()),
            if descends {
                "descends from it: the daemon checks it next"
            } else {
                "does not descend from it: the daemon refuses that head until one that does is pushed"
            }
        );
    }
    applied::record(&config.state_dir, &id)?;
    println!(
        "recorded in {}: each new head must descend from it",
        applied::path(&config.state_dir).display()
    );
    if !config.repo.refuses_rewinds() {
        println!(
            "note: repo.fast_forward_only is off in {}: the record has no effect until it is on",
            args.config.display()
        );
    }
    Ok(super::exit::OK)
}

/// "signed by ..." when the host requires a signature and the commit
/// carries a good one; the refusal when it does not.
fn signature(repo: &git2::Repository, commit: git2::Oid, config: &HostConfig) -> Result<String, String> {
    let v = Verify {
        allowed_signers: config.repo.verify.allowed_signers.clone(),
        gpg_keyring: config.repo.verify.gpg_keyring.clone(),
    };
    if !v.required() {
        return Ok("signature not checked: repo.verify is not set".into());
    }
    verify::verify_commit(repo, commit, &v)
        .map(|who| format!("signed by {who}"))
        .map_err(|r| r.0)
}

/// The record before, for people.
fn shown(before: &Result<Baseline, applied::Untrusted>) -> String {
    match before {
        Ok(Baseline::Commit(c)) => c.to_string(),
        Ok(Baseline::Fresh) => "none (no commit accepted yet)".into(),
        Err(e) => format!("none (the record {})", e.problem),
    }
}
