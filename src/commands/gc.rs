//! `teal gc`: the image cleanup a converged pass runs, on demand. Removes
//! the images this host's services deployed that no color declares, no
//! container uses and that are not among each service's last
//! `images.keep`; `--dry-run` only lists them.

use super::host::{fetch, HostArgs};
use crate::daemon::lock::{LockError, StateLock};
use crate::printable::field;
use crate::reconcile::images::{cleanup, size};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Exit 0 done (or listed), 1 error.
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let config = args.host.load()?;
    // Removing races a daemon's own cleanup (and its record): only
    // listing may run next to one.
    let _lock = match args.dry_run {
        true => None,
        false => match StateLock::acquire_as(&config.state_dir, crate::daemon::lock::Holder::Apply) {
            Ok(lock) => Some(lock),
            Err(LockError::Held { pid, .. }) => {
                let who = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
                eprintln!(
                    "teal gc: teal ({who}) is running on {} and cleans up after each converged pass itself; `teal gc --dry-run` lists what it would remove",
                    config.state_dir.display()
                );
                return Ok(super::exit::ERROR);
            }
            Err(e) => return Err(e.into()),
        },
    };
    let rev = fetch(&config).await?;
    let runtime = crate::reconcile::runtime(&config).await?;
    let done = cleanup(runtime.docker(), &config, &rev.desired, args.dry_run).await?;
    for (service, image, bytes) in &done.removed {
        let verb = if args.dry_run { "would remove" } else { "removed" };
        println!("{service}: {verb} {} ({})", field(image), size(*bytes));
    }
    for (image, why) in &done.left {
        println!("left {}: {}", field(image), field(why));
    }
    println!("{}", done.line(args.dry_run));
    Ok(super::exit::OK)
}
