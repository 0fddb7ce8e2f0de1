//! The text of an imported service file: a header naming the compose
//! files and service it came from, the fields in the service file's own
//! order with nothing unset written, and comments above placeholders.
//! Deterministic, so an import over an unchanged repo changes nothing.

use serde_yaml::Value;

use super::map::Imported;

/// The service file `services/<name>.yaml` for `imp`.
pub fn render(imp: &Imported) -> String {
    let mut v = serde_yaml::to_value(&imp.file).expect("a service file serialises");
    prune(&mut v);
    if let Value::Mapping(m) = &mut v {
        m.retain(|_, val| !matches!(val, Value::Mapping(x) if x.is_empty()));
    }
    let body = serde_yaml::to_string(&v).expect("a service file serialises");
    let mut out = format!(
        "# Imported by `teal import compose` from {}, service {}.\n# Deploy a new version with: teal bump {} IMAGE --commit\n",
        imp.files.join(" + "),
        imp.compose_name,
        imp.name
    );
    for line in body.lines() {
        let key = line.split(':').next().unwrap_or("");
        if !line.starts_with(' ') && !line.starts_with('-') {
            if let Some(comments) = imp.comments.get(key) {
                for c in comments {
                    out.push_str(&format!("# {c}\n"));
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Drops nulls and empty lists everywhere (an empty mapping can mean
/// something, e.g. `tcp: {}`).
fn prune(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, val| !val.is_null() && !matches!(val, Value::Sequence(s) if s.is_empty()));
            for (_, val) in m.iter_mut() {
                prune(val);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(prune),
        _ => {}
    }
}
