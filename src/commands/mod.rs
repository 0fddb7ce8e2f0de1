//! One thin module per subcommand, composing spec, source, plan, engine.
//! Each returns the process exit code; errors carry context for humans.

pub mod apply;
pub mod bump;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diff;
pub mod fleet;
pub mod gc;
pub mod history;
pub mod host;
pub mod import;
pub mod man;
pub mod plan;
pub mod promote;
pub mod secret;
pub mod status;
pub mod trust;
pub mod validate;

use std::io::IsTerminal;

/// Output formats for plans (`diff`, `plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal (coloured on a TTY unless NO_COLOR is set).
    Text,
    /// For a GitHub step summary or a PR comment.
    Markdown,
    /// A stable machine-readable shape, described in docs/json.md of the
    /// teal repository.
    Json,
}

/// Exit codes shared by `diff` and `plan` (terraform's convention).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES: u8 = 2;
}

/// True when stdout is a terminal and the user did not opt out of colour.
pub fn stdout_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Renders a plan in the chosen format.
pub fn render(plan: &crate::plan::Plan, format: Format) -> String {
    match format {
        Format::Text => crate::plan::render::text(plan, stdout_colour()),
        Format::Markdown => crate::plan::render::markdown(plan),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&crate::plan::render::json(plan)).expect("json");
            s.push('\n');
            s
        }
    }
}

/// Runs `git` in `dir` (the user's work tree); its stdout, trimmed, or
/// an error with git's own words.
pub fn git(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<String> {
    use anyhow::Context;
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git")?;
    if !out.status.success() {
        anyhow::bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The validation errors of the file `rel` (others' errors do not block
/// an edit of it).
pub fn errors_in(files: &crate::spec::RepoFiles, rel: &str) -> Option<String> {
    let diags = crate::spec::load(files).err()?;
    let mine: Vec<String> = diags
        .0
        .iter()
        .filter(|d| d.path == rel)
        .map(|d| d.to_string())
        .collect();
    (!mine.is_empty()).then(|| mine.join("\n"))
}
