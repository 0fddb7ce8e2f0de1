//! `teal history`: what happened on this host, from the event log in the
//! state dir (the current file and those rotated out), one line per
//! deploy, rollback and refusal, oldest first. With `--since`, the
//! rotated files that end before the window are not read: their summaries
//! (`events::summary`) stand for them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::events;
use crate::history::{self, Filter};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this service, e.g. `web`. Default: every service.
    pub service: Option<String>,
    /// Only what started within this long before now, e.g. `--since 2h`
    /// or `--since 7days`. Default: the whole log.
    #[arg(long, value_name = "DURATION", value_parser = crate::spec::duration::parse)]
    pub since: Option<Duration>,
    /// Output format: text for a terminal, json for tools.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,
    /// The host config, read only for its state_dir, e.g. `--config ./daemon.yaml`.
    #[arg(long, default_value = crate::config::DEFAULT_PATH, value_name = "FILE")]
    pub config: PathBuf,
    /// The state directory whose events.jsonl to read; the host config is
    /// then not read. Default: state_dir of the host config.
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// Aligned columns, coloured on a terminal unless NO_COLOR is set.
    Text,
    /// `{"version": 1, "entries": [...]}` with every step of each deploy
    /// (described in docs/history.md of the teal repository).
    Json,
}

/// Exit 0 with what was found (possibly nothing), 1 when there is no log.
pub fn run(args: &Args) -> anyhow::Result<u8> {
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => {
            super::host::load_file(&args.config)
                .context("finding the state directory (or pass --state-dir DIR)")?
                .state_dir
        }
    };
    let path = state_dir.join("events.jsonl");
    let files = events::files(&path);
    anyhow::ensure!(
        !files.is_empty(),
        "{}: no event log: nothing was deployed with this state directory yet; is it the daemon's (--state-dir, or state_dir in the host config)?",
        path.display()
    );
    let since = args
        .since
        .map(|d| SystemTime::now().checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH));
    // With --since, the oldest rotated files whose summaries say they end
    // before it are not read: the summaries stand for them.
    let (skip, seed) = match since {
        Some(t) => history::summary::skip(
            files.iter().filter(|f| **f != path).map(|f| events::summary::read(f)),
            t,
        ),
        None => Default::default(),
    };
    // Oldest file first: a deploy whose lines straddle a rotation is whole again.
    let mut all = vec![];
    for file in &files[skip..] {
        let log = match events::read_checked(file) {
            Ok(log) => log,
            // Renamed by a rotation since it was listed (rare): missed this once.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
        };
        for (line, why) in &log.skipped {
            eprintln!("warning: {}:{line}: not an event, skipped: {why}", file.display());
        }
        if all.is_empty() {
            all = log.events; // not moved again: the one file a short --since reads
        } else {
            all.extend(log.events);
        }
    }
    let filter = Filter {
        service: args.service.clone(),
        since,
    };
    let entries = match since {
        Some(_) => history::entries_after(seed, &all, &filter),
        None => history::entries(&all, &filter),
    };
    match args.format {
        HistoryFormat::Json => println!("{}", serde_json::to_string_pretty(&history::render::json(&entries))?),
        HistoryFormat::Text if entries.is_empty() => println!("{}", nothing(args)),
        HistoryFormat::Text => print!("{}", history::render::text(&entries, super::stdout_colour())),
    }
    Ok(super::exit::OK)
}

/// Says what was looked for, so an empty answer is not mistaken for a broken one.
fn nothing(args: &Args) -> String {
    let of = args.service.as_ref().map(|s| format!(" of {s}")).unwrap_or_default();
    let since = args
        .since
        .map(|d| format!(" in the last {}", crate::spec::duration::format(d)))
        .unwrap_or_default();
    format!("no deploys{of} recorded{since}")
}
