//! `teal plan`: what the daemon would do now: the repo's branch head
//! against what Docker and the proxy really run. Changes nothing.

use super::host::{fetch, HostArgs};
use super::Format;
use crate::reconcile::Host;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub host: HostArgs,
    /// Output format: text for a terminal, markdown for a PR, json for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Exit 0 nothing to do, 2 changes, 1 error.
pub async fn run(args: &Args) -> anyhow::Result<u8> {
    let config = args.host.load()?;
    let rev = fetch(&config).await?;
    let host = Host::connect_read_only(config).await?;
    let plan = host.plan(&rev.desired).await?;
    print!("{}", super::render(&plan, args.format));
    Ok(if plan.has_changes() {
        super::exit::CHANGES
    } else {
        super::exit::OK
    })
}
