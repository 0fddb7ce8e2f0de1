//! `teal config`: the host config's defaults, and a check of a host config
//! file that reports every unknown field at once.

use std::path::PathBuf;

use crate::config::{defaults, HostConfig};
use crate::spec::locate::Locator;

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Args {
    /// Print the full host config with every default, as commented YAML
    /// (a starting point for /etc/teal/daemon.yaml).
    #[arg(long = "show-defaults")]
    pub show_defaults: bool,
    /// Check a host config file: every unknown field with its line, then
    /// any other error, and notes on settings that have no effect. Exit 0
    /// when it loads, 1 when not. Default FILE: /etc/teal/daemon.yaml.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = crate::config::DEFAULT_PATH)]
    pub check: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<u8> {
    if args.show_defaults {
        print!("{}", defaults::commented_yaml());
        return Ok(super::exit::OK);
    }
    let Some(path) = &args.check else {
        return Ok(super::exit::OK);
    };
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{shown}: cannot read it: {e}");
            return Ok(super::exit::ERROR);
        }
    };
    match HostConfig::parse(&shown, &text) {
        Ok(config) => {
            for note in notes(&shown, &text, &config) {
                println!("{note}");
            }
            println!("{shown}: ok");
            Ok(super::exit::OK)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(super::exit::ERROR)
        }
    }
}

/// Settings a config spells out that teal will not use, or that weaken
/// what it was asked to guard.
pub fn notes(path: &str, text: &str, config: &HostConfig) -> Vec<String> {
    let loc = Locator::new(text);
    let mut out = managed_notes(path, &loc, config);
    out.extend(trust_notes(path, &loc, config));
    out
}

/// With a managed proxy, teal picks the proxy's paths and commands itself.
fn managed_notes(path: &str, loc: &Locator, config: &HostConfig) -> Vec<String> {
    if !config.proxy.managed {
        // An operator's proxy runs as its own config says.
        return loc
            .node(&["proxy", "user"])
            .map(|node| {
                let at = node.key.unwrap_or(node.value);
                format!(
                    "{path}:{}:{}: note: proxy.user is used only with managed: true (set the user in your proxy's own config)",
                    at.line, at.col
                )
            })
            .into_iter()
            .collect();
    }
    let unused = [
        ["haproxy", "config"],
        ["haproxy", "socket"],
        ["haproxy", "reload"],
        ["nginx", "conf_dir"],
        ["nginx", "test"],
        ["nginx", "reload"],
    ];
    unused
        .iter()
        .filter_map(|[section, field]| {
            let node = loc.node(&["proxy", section, field])?;
            let at = node.key.unwrap_or(node.value);
            Some(format!(
                "{path}:{}:{}: note: proxy.{section}.{field} is not used with managed: true (teal keeps the proxy's files under state_dir/proxy)",
                at.line, at.col
            ))
        })
        .collect()
}

/// `fast_forward_only: false` next to `verify`, and allowed_signers lines
/// that vouch for nothing.
fn trust_notes(path: &str, loc: &Locator, config: &HostConfig) -> Vec<String> {
    let mut out = vec![];
    if config.repo.fast_forward_only == Some(false) && config.repo.verify.required() {
        if let Some(node) = loc.node(&["repo", "fast_forward_only"]) {
            let at = node.key.unwrap_or(node.value);
            out.push(format!(
                "{path}:{}:{}: note: repo.fast_forward_only: false with repo.verify: a branch pushed back to an older signed commit is applied, an old version with it; leave the line out to refuse rewinds",
                at.line, at.col
            ));
        }
    }
    if let Some(file) = &config.repo.verify.allowed_signers {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                for (line, why) in crate::source::verify::signers::parse(&text).skipped {
                    out.push(format!(
                        "{}:{line}: note: skipped, as ssh-keygen skips it: {why}",
                        file.display()
                    ));
                }
            }
            Err(e) => out.push(format!(
                "{}: note: cannot be read ({e}): every SSH-signed head is refused",
                file.display()
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_config_is_told_which_settings_it_does_not_need() {
        let text = "repo: {url: x}\nproxy:\n  kind: haproxy\n  managed: true\n  haproxy:\n    socket: /run/x.sock\n  nginx: {switch: reload}\n";
        let c = HostConfig::parse("d.yaml", text).unwrap();
        assert_eq!(
            notes("d.yaml", text, &c),
            ["d.yaml:6:5: note: proxy.haproxy.socket is not used with managed: true (teal keeps the proxy's files under state_dir/proxy)"]
        );
        let operator = HostConfig::parse("d.yaml", &text.replace("managed: true", "managed: false")).unwrap();
        assert!(notes("d.yaml", text, &operator).is_empty());
        let text = "repo: {url: x}\nproxy:\n  kind: nginx\n  user: www-data\n";
        let operator = HostConfig::parse("d.yaml", text).unwrap();
        assert_eq!(
            notes("d.yaml", text, &operator),
            ["d.yaml:4:3: note: proxy.user is used only with managed: true (set the user in your proxy's own config)"]
        );
    }

    #[test]
    fn turning_rewinds_on_again_and_unreadable_signer_lines_are_noted() {
        let dir = tempfile::tempdir().unwrap();
        let signers = dir.path().join("allowed_signers");
        std::fs::write(&signers, "# deployers\nalice namespaces=git ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEICg3q9/JQwE0e9W8IMUeAUp9/JPfM/SpuZeaEtXCao\n").unwrap();
        let text = format!(
            "repo:\n  url: x\n  verify: {{allowed_signers: {}}}\n  fast_forward_only: false\nproxy: {{kind: haproxy}}\n",
            signers.display()
        );
        let c = HostConfig::parse("d.yaml", &text).unwrap();
        assert!(!c.repo.refuses_rewinds());
        assert_eq!(
            notes("d.yaml", &text, &c),
            [
                "d.yaml:4:3: note: repo.fast_forward_only: false with repo.verify: a branch pushed back to an older signed commit is applied, an old version with it; leave the line out to refuse rewinds".to_string(),
                format!("{}:2: note: skipped, as ssh-keygen skips it: bad options: missing start quote", signers.display()),
            ]
        );
        let on = HostConfig::parse("d.yaml", &text.replace("  fast_forward_only: false\n", "")).unwrap();
        assert!(on.repo.refuses_rewinds(), "on with verify unless turned off");
        assert_eq!(notes("d.yaml", &text, &on).len(), 1);
    }
}
