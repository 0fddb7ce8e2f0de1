//! JSON Schemas of the config files, generated from the types in `file`,
//! for editors (yaml-language-server modelines) and CI (check-jsonschema).
//! `schemas/*.json` are checked in; a test keeps them in sync.

use schemars::{schema_for, Schema};

use super::file::{RepoFile, ServiceFile};

/// Fields a service file must have. They are `Option` in the Rust type so
/// that a missing one is a located validation error rather than a serde
/// abort, so the schema marks them required here.
const SERVICE_REQUIRED: [&str; 3] = ["active", "port", "route"];

/// The schema of `services/<name>.yaml`, pretty-printed with a final newline.
pub fn service_schema() -> String {
    let mut schema = schema_for!(ServiceFile);
    require(&mut schema, &SERVICE_REQUIRED);
    set(&mut schema, "active", serde_json::json!({"$ref": "#/$defs/Color"}));
    set(&mut schema, "route", serde_json::json!({"$ref": "#/$defs/RouteFile"}));
    // Range rules the validator enforces, so editors flag them early too.
    set(
        &mut schema,
        "port",
        serde_json::json!({"type": "integer", "minimum": 1, "maximum": 65535}),
    );
    set(
        &mut schema,
        "replicas",
        serde_json::json!({"type": ["integer", "null"], "minimum": 1, "maximum": 64}),
    );
    pretty(&schema)
}

/// The schema of `teal.yaml`, pretty-printed with a final newline.
pub fn repo_schema() -> String {
    pretty(&schema_for!(RepoFile))
}

fn require(schema: &mut Schema, fields: &[&str]) {
    let list = fields.iter().map(|f| serde_json::Value::from(*f)).collect();
    schema.insert("required".into(), serde_json::Value::Array(list));
}

fn set(schema: &mut Schema, field: &str, value: serde_json::Value) {
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        let description = props.get(field).and_then(|p| p.get("description")).cloned();
        let mut value = value;
        if let (Some(d), Some(obj)) = (description, value.as_object_mut()) {
            obj.insert("description".into(), d);
        }
        props.insert(field.into(), value);
    }
}

fn pretty(schema: &Schema) -> String {
    let mut s = serde_json::to_string_pretty(schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The checked-in schemas match the types. Set TEAL_BLESS_SCHEMAS=1 to
    /// rewrite them after changing `spec::file`.
    #[test]
    fn checked_in_schemas_match_the_types() {
        // The schemas live at the repository's top, two levels up.
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        let bless = std::env::var_os("TEAL_BLESS_SCHEMAS").is_some();
        for (file, generated) in [
            ("service.schema.json", super::service_schema()),
            ("teal.schema.json", super::repo_schema()),
        ] {
            let path = dir.join(file);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "schemas/{file} is out of date with crates/core/src/spec/file.rs: run `TEAL_BLESS_SCHEMAS=1 cargo test -p teal-core --lib schema` and commit the result"
            );
        }
    }
}
