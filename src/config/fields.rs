//! Unknown fields of a host config, every one of them in one run: a pass
//! over the YAML before serde (which stops at the first) that compares
//! each key with the fields its section knows. The known fields come from
//! the config types themselves (the serialised shape of a config with
//! every section present), so a field added to a struct is known here
//! without a second list to keep in sync.

use serde_yaml::{Mapping, Value};

use super::{HostConfig, ProxyKind};
use crate::spec::locate::Locator;
use crate::spec::Diagnostic;

/// Every section and field name of a host config, as a YAML value.
pub(crate) fn known() -> Value {
    let mut every = HostConfig::new(String::new(), ProxyKind::Haproxy);
    // Sections that are absent by default still have fields to know.
    every.acme = Some(Default::default());
    serde_yaml::to_value(every).expect("a host config serialises")
}

/// One located diagnostic per key that no section knows, in file order.
/// Keys below an unknown key are not judged (their parent is the mistake);
/// a document that does not parse yields none (serde reports the syntax).
pub fn unknown(path: &str, text: &str) -> Vec<Diagnostic> {
    let known = known();
    let mut out: Vec<Diagnostic> = Locator::new(text)
        .nodes()
        .filter_map(|(p, node)| {
            let key = node.key?;
            let (name, parent) = p.split_last()?;
            let Some(Value::Mapping(fields)) = lookup(&known, parent) else {
                return None;
            };
            (!fields.contains_key(name.as_str()))
                .then(|| Diagnostic::new(path, key.line, key.col, message(parent, name, fields)))
        })
        .collect();
    out.sort();
    out
}

/// The known value at `path`; every item of a sequence has the shape of its first.
fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, seg| match v {
        Value::Mapping(m) => m.get(seg.as_str()),
        Value::Sequence(s) => s.first(),
        _ => None,
    })
}

/// `repo: unknown field "brnach", expected one of "url", "branch", ...`,
/// worded as serde words it for service files.
fn message(parent: &[String], name: &str, fields: &Mapping) -> String {
    let names: Vec<String> = fields
        .keys()
        .filter_map(Value::as_str)
        .map(|k| format!("\"{k}\""))
        .collect();
    let expected = match names.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        all => format!("one of {}", all.join(", ")),
    };
    let at = if parent.is_empty() {
        String::new()
    } else {
        format!("{}: ", parent.join("."))
    };
    format!("{at}unknown field \"{name}\", expected {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        unknown("d.yaml", text).iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn every_unknown_field_is_reported_with_its_line() {
        let text = "repo:\n  url: x\n  brnach: main\nproxy:\n  kind: haproxy\n  haproxy:\n    sokcet: /run/a.sock\n    reload: [a, b]\nstate_dri: /tmp\nlisten: 127.0.0.1:1\n";
        assert_eq!(
            found(text),
            [
                "d.yaml:3:3: repo: unknown field \"brnach\", expected one of \"url\", \"branch\", \"path\", \"poll\", \"ssh_key\", \"token_file\", \"known_hosts\", \"webhook_secret_file\", \"watch\", \"verify\", \"fast_forward_only\"",
                "d.yaml:7:5: proxy.haproxy: unknown field \"sokcet\", expected one of \"config\", \"socket\", \"reload\"",
                "d.yaml:9:1: unknown field \"state_dri\", expected one of \"repo\", \"docker\", \"proxy\", \"state_dir\", \"listen\", \"policy\", \"host\", \"notify\", \"fleet\", \"events\", \"api\", \"secrets\", \"acme\", \"registries\", \"images\"",
            ]
        );
    }

    #[test]
    fn below_an_unknown_key_and_in_values_nothing_is_judged() {
        // `extra` is the mistake; its children are not reported again, and
        // a mapping where a string belongs is a type error for serde.
        let text = "repo: {url: x}\nextra: {a: 1, b: 2}\ndocker: {host: {nested: 1}}\nproxy: {kind: nginx, nginx: {test: [nginx, -t]}}\n";
        assert_eq!(
            found(text),
            ["d.yaml:2:1: unknown field \"extra\", expected one of \"repo\", \"docker\", \"proxy\", \"state_dir\", \"listen\", \"policy\", \"host\", \"notify\", \"fleet\", \"events\", \"api\", \"secrets\", \"acme\", \"registries\", \"images\""]
        );
    }

    #[test]
    fn a_config_with_every_field_has_none_unknown() {
        let every = serde_yaml::to_string(&known()).unwrap();
        assert_eq!(found(&every), Vec::<String>::new(), "{every}");
        assert_eq!(found("repo: [unclosed\n"), Vec::<String>::new());
    }
}
