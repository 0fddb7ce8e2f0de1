//! Several compose files as one, by the specification's "Merge and
//! override" rules: mappings merge key by key, sequences append (an equal
//! entry is not repeated), `command`, `entrypoint` and `healthcheck.test`
//! are replaced, `volumes` / `secrets` / `configs` merge by target and
//! `ports` by their whole mapping; `!reset` removes a value and
//! `!override` replaces it. List forms of `environment` and `labels` are
//! read as mappings first, as compose does, so they merge by name.

use serde_yaml::{Mapping, Value};

use super::key_text;

/// Rewrites `environment` and `labels` lists (`KEY=VALUE`, `KEY`) as
/// mappings in every service of one file.
pub fn normalize(doc: &mut Value) {
    let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        for key in ["environment", "labels"] {
            if let Some(v) = svc.get_mut(key) {
                as_mapping(v);
            }
        }
    }
}

fn as_mapping(v: &mut Value) {
    let target = match v {
        Value::Tagged(t) => &mut t.value,
        v => v,
    };
    let Value::Sequence(items) = target else { return };
    let mut m = Mapping::new();
    for item in items.iter() {
        let Some(s) = item.as_str() else { continue };
        match s.split_once('=') {
            Some((k, val)) => m.insert(k.into(), val.into()),
            None => m.insert(s.into(), Value::Null),
        };
    }
    *target = Value::Mapping(m);
}

/// Merges `over` into `base` (both whole documents).
pub fn merge(base: &mut Value, over: Value) {
    merge_at(base, over, &mut vec![]);
}

/// Drops the merge tags of a document that is merged into nothing (the
/// first file): `!reset` values go, `!override` values stay as they are.
pub fn strip_tags(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            m.retain(|_, val| !is_tag(val, "reset"));
            for (_, val) in m.iter_mut() {
                strip_tags(val);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(strip_tags),
        Value::Tagged(t) => {
            let inner = std::mem::take(&mut t.value);
            *v = inner;
            strip_tags(v);
        }
        _ => {}
    }
}

fn is_tag(v: &Value, name: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == name)
}

fn merge_at(base: &mut Value, over: Value, path: &mut Vec<String>) {
    let over = match over {
        Value::Tagged(t) if t.tag == "override" => {
            let mut v = t.value;
            strip_tags(&mut v);
            *base = v;
            return;
        }
        Value::Tagged(t) => {
            // Unknown tags are kept out of the way: the value counts.
            let mut v = t.value;
            strip_tags(&mut v);
            v
        }
        v => v,
    };
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                if is_tag(&v, "reset") {
                    b.remove(&k);
                    continue;
                }
                path.push(key_text(&k));
                match b.get_mut(&k) {
                    Some(existing) => merge_at(existing, v, path),
                    None => {
                        let mut v = v;
                        strip_tags(&mut v);
                        b.insert(k, v);
                    }
                }
                path.pop();
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if !replaces(path) => {
            let key = unique_key(path);
            for mut item in o {
                strip_tags(&mut item);
                match key.and_then(|f| b.iter().position(|e| f(e).is_some() && f(e) == f(&item))) {
                    Some(i) => b[i] = item,
                    None if !b.contains(&item) => b.push(item),
                    None => {}
                }
            }
        }
        (base, mut over) => {
            strip_tags(&mut over);
            *base = over;
        }
    }
}

/// Sequences that an override replaces whole.
fn replaces(path: &[String]) -> bool {
    matches!(
        path_tail(path).as_slice(),
        ["command"] | ["entrypoint"] | ["healthcheck", "test"]
    )
}

/// The path inside a service: `services.web.healthcheck.test` gives
/// `[healthcheck, test]`; anything outside `services` gives nothing.
fn path_tail(path: &[String]) -> Vec<&str> {
    match path {
        [s, _, rest @ ..] if s == "services" => rest.iter().map(String::as_str).collect(),
        _ => vec![],
    }
}

type KeyFn = fn(&Value) -> Option<String>;

/// How entries of a unique-resource sequence are told apart.
fn unique_key(path: &[String]) -> Option<KeyFn> {
    match path_tail(path).as_slice() {
        ["volumes"] => Some(volume_target),
        ["secrets"] | ["configs"] => Some(secret_target),
        _ => None,
    }
}

/// A volume's target: `src:/dst:ro` gives `/dst`, `{target: /dst}` too.
pub fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.as_slice() {
                [only] => only.to_string(),
                [_, dst, ..] => dst.to_string(),
                [] => return None,
            })
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn secret_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m
            .get("target")
            .or_else(|| m.get("source"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Value {
        let mut v: Value = serde_yaml::from_str(s).unwrap();
        normalize(&mut v);
        v
    }

    #[test]
    fn the_specifications_examples() {
        let mut base = doc("services:\n  foo:\n    key1: value1\n    key2: value2\n    dns: [1.1.1.1]\n    command: [echo, foo]\n    volumes: ['foo:/work', '/data']\n");
        merge(
            &mut base,
            doc("services:\n  foo:\n    key2: VALUE\n    key3: value3\n    dns: [8.8.8.8, 1.1.1.1]\n    command: [echo, bar]\n    volumes: ['bar:/work', {type: volume, source: x, target: /more}]\n"),
        );
        let want = doc("services:\n  foo:\n    key1: value1\n    key2: VALUE\n    dns: [1.1.1.1, 8.8.8.8]\n    command: [echo, bar]\n    volumes: ['bar:/work', '/data', {type: volume, source: x, target: /more}]\n    key3: value3\n");
        assert_eq!(base, want);
    }

    #[test]
    fn environment_lists_merge_by_name_and_tags_reset_or_override() {
        let mut base = doc("services:\n  app:\n    image: myapp\n    ports: ['8080:80']\n    environment: [FOO=BAR, KEEP=1, BARE]\n    labels: {a: '1'}\n");
        merge(
            &mut base,
            doc("services:\n  app:\n    ports: !reset []\n    environment:\n      FOO: !reset null\n      NEW: x\n    labels: !override {b: '2'}\n"),
        );
        let want = doc("services:\n  app:\n    image: myapp\n    environment: {KEEP: '1', BARE: null, NEW: x}\n    labels: {b: '2'}\n");
        assert_eq!(base, want);
        let mut first = doc("a: !override {b: !reset 1, c: 2}\n");
        strip_tags(&mut first);
        assert_eq!(first, doc("a: {c: 2}\n"));
    }
}
