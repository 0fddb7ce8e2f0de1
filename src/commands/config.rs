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

/// Settings a config spells out that teal will not use: with a managed
/// proxy, teal picks the proxy's paths and commands itself.
pub fn notes(path: &str, text: &str, config: &HostConfig) -> Vec<String> {
    let loc = Locator::new(text);
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
}
