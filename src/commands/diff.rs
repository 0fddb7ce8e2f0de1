//! `teal diff`: what merging `--head` into `--base` would do, desired
//! against desired, with no Docker: the base revision stands in for a host
//! that has fully converged on it. Made for pull-request checks.

use std::path::PathBuf;

use anyhow::Context;

use super::Format;
use crate::plan::{plan, Observed};
use crate::spec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The revision the change would merge into, e.g. `--base origin/main`.
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The revision with the change.
    #[arg(long, default_value = "HEAD", value_name = "REV")]
    pub head: String,
    /// Any path inside the git repository (work tree or bare).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,
    /// Where teal.yaml and services/ live inside the repo, e.g. `--path deploy/`.
    #[arg(long, default_value = "/", value_name = "PATH")]
    pub path: String,
    /// Output format: text for a terminal, markdown for a PR, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also check the head against this host config's policy, as the
    /// daemon on that host would (a refused change exits 1), e.g.
    /// `--config hosts/web-1.yaml`. Default: no host policy.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Exit 0 no change, 2 changes (refusals included), 1 error.
pub fn run(args: &Args) -> anyhow::Result<u8> {
    let repo = crate::source::open(&args.repo)?;
    let base_files = crate::source::read(&repo, &args.base, &args.path)?;
    let head_files = crate::source::read(&repo, &args.head, &args.path)?;
    let head = match spec::load(&head_files) {
        Ok(d) => d,
        Err(diags) => {
            println!("{diags}");
            println!("{} has an invalid config: merging it would change nothing that runs (teal does not apply invalid commits)", args.head);
            return Ok(super::exit::ERROR);
        }
    };
    if let Some(diags) = super::validate::policy_violations(args.config.as_deref(), &head_files)?(&head) {
        println!("{diags}");
        println!(
            "{} is outside the host's policy: the daemon there would refuse it (nothing that serves would change)",
            args.head
        );
        return Ok(super::exit::ERROR);
    }
    let base = spec::load(&base_files)
        .map_err(|diags| anyhow::anyhow!("{diags}"))
        .with_context(|| {
            format!(
                "the base revision {} has an invalid config, so a diff against it cannot be trusted",
                args.base
            )
        })?;
    for w in &head.warnings {
        eprintln!("warning: {w}");
    }
    let plan = plan(&head, &Observed::converged(&base));
    print!("{}", super::render(&plan, args.format));
    Ok(if plan.has_changes() {
        super::exit::CHANGES
    } else {
        super::exit::OK
    })
}
