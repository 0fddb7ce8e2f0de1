//! `teal man`: the manual pages, written into a directory for a package.
//!
//! teal(1) and a page per subcommand come from the clap definitions (what
//! `--help` says); teal-config(5) and teal-service(5) are docs/config.md and
//! the README's "The config repo" rendered as roff, so no page is a copy
//! that can drift from what users read elsewhere.

pub mod markdown;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages into, created when missing, e.g.
    /// `teal man --dir target/man`; there is no default.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// The Markdown the section-5 pages are made of (compiled into the binary
/// by main.rs, so a page never depends on a source tree at hand).
pub struct Docs {
    /// docs/config.md: the host config.
    pub config: &'static str,
    /// README.md, whose "The config repo" section describes a service file.
    pub readme: &'static str,
}

/// The heading in the README where the service file is described.
const SERVICE_SECTION: &str = "## The config repo";

pub fn run(cli: clap::Command, docs: &Docs, args: &Args) -> anyhow::Result<u8> {
    for path in write_all(cli, docs, &args.dir)? {
        println!("{}", path.display());
    }
    Ok(super::exit::OK)
}

/// Writes every page into `dir` and returns their paths.
pub fn write_all(cli: clap::Command, docs: &Docs, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    // VERSION says release and commit; --version's lines on what teal was
    // tested with would run together in one filled paragraph there.
    let mut cli = cli.disable_help_subcommand(true).long_version(None::<&str>);
    cli.build();
    let mut written = vec![];
    command_pages(&cli, dir, &mut written)?;
    let service = section(docs.readme, SERVICE_SECTION)
        .with_context(|| format!("README.md has no section {SERVICE_SECTION:?}"))?;
    let files = [
        (
            "teal-config",
            "the host config of teal, /etc/teal/daemon.yaml",
            docs.config,
        ),
        (
            "teal-service",
            "a service file of a teal config repo, services/NAME.yaml",
            service,
        ),
    ];
    for (name, summary, text) in files {
        let mut page = Roff::new();
        page.control(
            "TH",
            [name.to_uppercase().as_str(), "5", "", source().as_str(), "File Formats"],
        );
        page.control("SH", ["NAME"]);
        page.text([roman(format!("{name} - {summary}"))]);
        page.control("SH", ["DESCRIPTION"]);
        markdown::render(text, &mut page);
        see_also(&mut page, name);
        written.push(write(dir, &format!("{name}.5"), &page.render())?);
    }
    Ok(written)
}

/// teal(1) and a page for each visible subcommand, nested ones included.
fn command_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        command_pages(sub, dir, written)?;
    }
    let man = Man::new(cmd.clone()).manual("teal manual");
    let mut text = vec![];
    man.render(&mut text)?;
    let mut page = Roff::new();
    let name = man.get_filename();
    see_also(&mut page, name.trim_end_matches(".1"));
    text.extend(page.to_roff().into_bytes());
    written.push(write(dir, &name, &String::from_utf8(text)?)?);
    Ok(())
}

/// A SEE ALSO section naming the other top-level pages.
fn see_also(page: &mut Roff, this: &str) {
    let others: Vec<_> = [("teal", "1"), ("teal-config", "5"), ("teal-service", "5")]
        .into_iter()
        .filter(|(name, _)| *name != this)
        .collect();
    page.control("SH", ["SEE ALSO"]);
    let mut line = vec![];
    for (i, (name, section)) in others.iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(*name));
        line.push(roman(format!("({section})")));
    }
    line.push(roman(", and teal-COMMAND(1) for each command."));
    page.text(line);
}

/// What a page's title line names as its source: teal and its version.
fn source() -> String {
    format!("teal {}", env!("CARGO_PKG_VERSION"))
}

/// The lines after `heading` up to the next heading of the same level.
fn section<'a>(markdown: &'a str, heading: &str) -> Option<&'a str> {
    let start = markdown.find(&format!("\n{heading}\n"))? + heading.len() + 2;
    let body = &markdown[start..];
    let level = heading.split(' ').next().unwrap_or("##");
    let mut in_code = false;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with(&format!("{level} ")) {
            return Some(&body[..offset]);
        }
        offset += line.len();
    }
    Some(body)
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_section_ends_at_the_next_heading_of_its_level_outside_code() {
        let md = "# t\n\n## A\none\n```\n## not a heading\n```\n### sub\n## B\ntwo\n";
        assert_eq!(
            super::section(md, "## A"),
            Some("one\n```\n## not a heading\n```\n### sub\n")
        );
        assert_eq!(super::section(md, "## B"), Some("two\n"));
        assert_eq!(super::section(md, "## C"), None);
    }
}
