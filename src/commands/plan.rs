//! `teal plan`: what the daemon would do now: the repo's branch head
//! against what Docker and the proxy really run. Changes nothing. In
//! swarm mode it also lists the tasks it planned against, per node; a tag
//! the registry now serves at another digest than the color runs gets a
//! note (`web: tag 1.4 moved`).

use super::host::{fetch, HostArgs};
use super::Format;
use crate::config::DockerMode;
use crate::plan::tasks;
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
    let swarm = config.docker.mode == DockerMode::Swarm;
    let host = Host::connect_read_only(config).await?;
    let observed = host.observe(&rev.desired).await?;
    let plan = crate::plan::plan(&crate::pins::with_pins(&rev.desired, &host.config.state_dir), &observed);
    let tasks = swarm.then(|| tasks::rows(&observed));
    let moved = crate::reconcile::moved::moved(&host.config, &rev.desired).await;
    let notes: String = moved.iter().map(|m| format!("note: {}\n", m.line())).collect();
    match (args.format, &tasks) {
        (Format::Json, rows) => {
            let mut v = crate::plan::render::json(&plan);
            if let Some(rows) = rows {
                v["tasks"] = serde_json::to_value(rows)?;
            }
            if !moved.is_empty() {
                v["moved"] = serde_json::to_value(&moved)?;
            }
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        (Format::Text, Some(rows)) => print!("{}{}{notes}", super::render(&plan, args.format), tasks::text(rows)),
        (Format::Markdown, Some(rows)) => {
            print!("{}{}{notes}", super::render(&plan, args.format), tasks::markdown(rows))
        }
        (_, None) => print!("{}{notes}", super::render(&plan, args.format)),
    }
    Ok(if plan.has_changes() {
        super::exit::CHANGES
    } else {
        super::exit::OK
    })
}
