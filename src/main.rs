//! The `teal` command line: a thin clap layer over `teal::commands`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use teal::commands;

/// GitOps blue/green deploys on Docker hosts.
///
/// A git repository holds, per service, the image of each color and which
/// color is active. teal stages new versions on the idle color, checks
/// them, and moves traffic only when the checks pass.
#[derive(Debug, Parser)]
#[command(name = "teal", version = teal::version::SHORT, long_version = teal::version::LONG, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every file of a config repo; errors as path:line:col: message.
    ///
    /// Exit 0 valid, 1 invalid. Example: `teal validate --repo examples/config-repo`
    Validate(commands::validate::Args),
    /// What merging HEAD into BASE would do; for pull-request checks.
    ///
    /// Needs no Docker: the base revision stands in for a converged host.
    /// Exit 0 no change, 2 changes, 1 error (an invalid head config included).
    /// Example: `teal diff --base origin/main --format markdown >> $GITHUB_STEP_SUMMARY`
    Diff(commands::diff::Args),
    /// What the daemon would do now: the repo's head against the live host.
    ///
    /// Changes nothing. Exit 0 nothing to do, 2 changes, 1 error.
    /// Example: `teal plan --config ./daemon.yaml --format json`
    Plan(commands::plan::Args),
    /// One reconcile pass with progress on stderr, then exit.
    ///
    /// Stages new versions on the idle color, checks them, and moves
    /// traffic only when the checks pass. Exit 0 converged, 1 failed.
    /// Example: `teal apply --config ./daemon.yaml`
    Apply(commands::apply::Args),
    /// Remove the images this host's services no longer need.
    ///
    /// What a converged pass does itself: removes the images teal deployed
    /// that no color declares, no container uses and that are not among
    /// each service's last images.keep. Exit 0 done, 1 error.
    /// Example: `teal gc --config ./daemon.yaml --dry-run`
    Gc(commands::gc::Args),
    /// Deploy a new version: stage IMAGE on the idle color and flip active.
    ///
    /// Edits services/SERVICE.yaml in place, changing only the idle color's
    /// image and `active`: comments and layout are kept. The old color stays
    /// warm, so `git revert` is an instant rollback.
    /// Example: `teal bump web registry.example.com/shop/web:1.4.3 --commit`
    Bump(commands::bump::Args),
    /// Let a rollout waiting for a promotion go on.
    ///
    /// Writes `promote: <HEAD>` into services/SERVICE.yaml and commits it:
    /// the rollout under way at that commit (a canary step with `hold:
    /// until_promoted`, a blue-green with `promote: manual`) takes its next
    /// step once a host reads the commit. Push it as any deploy.
    /// Example: `teal promote web && git push`
    Promote(commands::promote::Args),
    /// Put all traffic of a rollout under way back on the old color.
    ///
    /// Writes `abort: <HEAD>` into services/SERVICE.yaml and commits it: the
    /// rollout under way at that commit is rolled back as a failed analysis
    /// would (the new color keeps running, idle, for inspection). Then
    /// revert the deploy or push a fix.
    /// Example: `teal abort web && git push`
    Abort(commands::promote::Args),
    /// Bring an existing setup over: `teal import compose [FILE ...]`
    /// turns docker compose files into services/NAME.yaml.
    ///
    /// Lists per service and key what did not carry over and why. Exit 0
    /// all carried over, 2 something left out or to fill in, 1 a broken file.
    /// Example: `teal import compose docker-compose.yml --repo ../deploy`
    Import(commands::import::Args),
    /// Secrets in the repo: `set` encrypts a value from stdin with age to
    /// teal.yaml's secrets.recipients into secrets/SERVICE.yaml; `ls` names
    /// a service's secrets and who can read them. Never prints a value.
    ///
    /// Example: `printf %s "$URL" | teal secret set web DATABASE_URL`
    Secret(commands::secret::Args),
    /// The long-running reconciler: watch the repo, keep the host converged.
    ///
    /// Polls the branch (and, for a repo on this machine, reacts to changes
    /// at once). An invalid commit is not applied; a failed deploy is retried
    /// with backoff or on the next commit. SIGTERM finishes the pass in flight.
    /// Example: `teal daemon --config /etc/teal/daemon.yaml`
    Daemon(commands::daemon::Args),
    /// What the daemon on this host serves: per service the live color, the
    /// image per color, the last deploy and its error.
    ///
    /// Reads the daemon's status API (`listen` in the host config).
    /// Example: `teal status --format json`
    Status(commands::status::Args),
    /// What happened on this host: each deploy, rollback and refusal, oldest first.
    ///
    /// Read from events.jsonl in the state directory: per line the start
    /// time, service, commit, what it was, its result, how long it took and
    /// what moved (images started, traffic switched) or why it failed.
    /// Example: `teal history web --since 1d`
    History(commands::history::Args),
    /// A complete blue/green setup on this machine, in the foreground.
    ///
    /// Builds demo images locally, creates a config repo and a host config
    /// (DIR/daemon.yaml) in DIR, starts HAProxy or nginx on 127.0.0.1:PORT
    /// and runs the daemon, with its dashboard and status API on
    /// 127.0.0.1:9470 (or the next free port). It prints what to try next.
    /// `teal demo --clean` removes everything it created.
    /// Example: `teal demo --port 8080`
    Demo(commands::demo::Args),
    /// The host config: print every default, or check a file.
    ///
    /// `--show-defaults` prints the full host config with each default as
    /// commented YAML; `--check FILE` reports every unknown field with its
    /// line at once. Example: `teal config --check /etc/teal/daemon.yaml`
    Config(commands::config::Args),
    /// Who may deploy: accept a commit as the one this host applied last.
    ///
    /// `teal trust reset` shows the branch head (or --rev), checks its
    /// signature, and records it as the baseline repo.fast_forward_only
    /// checks new heads against: after the daemon refuses every head
    /// because that record is lost or damaged, or to accept a rewound
    /// branch on purpose.
    /// Example: `teal trust reset --config /etc/teal/daemon.yaml`
    Trust(commands::trust::Args),
    /// Print shell completions, e.g. `teal completions bash > /etc/bash_completion.d/teal`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the manual pages into DIR: teal(1), one per subcommand,
    /// teal-config(5) and teal-service(5). For packagers.
    #[command(hide = true)]
    Man(commands::man::Args),
}

/// The Markdown of the section-5 man pages (`teal man`).
const MAN_DOCS: commands::man::Docs = commands::man::Docs {
    config: include_str!("../docs/config.md"),
    readme: include_str!("../README.md"),
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Command::Daemon(a) => a.log_format,
        _ => teal::logs::LogFormat::Text,
    };
    teal::logs::init(log_format);
    let result = match &cli.command {
        Command::Validate(a) => commands::validate::run(a),
        Command::Diff(a) => commands::diff::run(a),
        Command::Plan(a) => block_on(commands::plan::run(a)),
        Command::Apply(a) => block_on(commands::apply::run(a)),
        Command::Gc(a) => block_on(commands::gc::run(a)),
        Command::Bump(a) => commands::bump::run(a),
        Command::Promote(a) => commands::promote::run("promote", a),
        Command::Abort(a) => commands::promote::run("abort", a),
        Command::Import(a) => commands::import::run(a),
        Command::Secret(a) => commands::secret::run(a),
        Command::Daemon(a) => block_on(commands::daemon::run(a)),
        Command::Status(a) => block_on(commands::status::run(a)),
        Command::History(a) => commands::history::run(a),
        Command::Demo(a) => block_on(commands::demo::run(a)),
        Command::Config(a) => commands::config::run(a),
        Command::Trust(a) => commands::trust::run(a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "teal", &mut std::io::stdout());
            Ok(commands::exit::OK)
        }
        Command::Man(a) => {
            use clap::CommandFactory;
            commands::man::run(Cli::command(), &MAN_DOCS, a)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(commands::exit::ERROR)
        }
    }
}

/// Runs an async command on a fresh multi-threaded runtime.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<u8>>) -> anyhow::Result<u8> {
    tokio::runtime::Runtime::new()?.block_on(fut)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every subcommand's flags, as (command, flag, help text, default values).
    fn flags() -> Vec<(String, String, String, usize)> {
        let mut cli = Cli::command();
        cli.build();
        let mut out = vec![];
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let help = arg
                    .get_long_help()
                    .or(arg.get_help())
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
                let flag = if arg.is_positional() || !takes_value || arg.is_required_set() {
                    format!("{id} (positional, switch or required)")
                } else {
                    format!("--{}", arg.get_long().unwrap_or(id))
                };
                out.push((sub.get_name().to_string(), flag, help, arg.get_default_values().len()));
            }
        }
        out
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_flag_says_what_it_does_and_its_default_without_internal_documents() {
        let all = flags();
        assert!(all.len() > 30, "{all:?}");
        for (cmd, flag, help, defaults) in all {
            assert!(help.len() > 10, "teal {cmd} {flag}: no help text");
            assert!(
                !help.contains("DESIGN") && !help.contains("section "),
                "teal {cmd} {flag} points at a document users do not have: {help}"
            );
            if flag.starts_with("--") && defaults == 0 {
                assert!(
                    help.to_lowercase().contains("default"),
                    "teal {cmd} {flag} does not say what happens without it: {help}"
                );
            }
        }
    }
}
