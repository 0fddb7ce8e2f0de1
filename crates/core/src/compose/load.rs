//! Compose files in memory to one project: parsed, `<<` merge keys
//! applied, interpolated with the variables, checked against the keys
//! of the specification, merged in the order given, typed, and filtered
//! by profiles. Every problem is located in the file that holds it.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::interpolate::{interpolate, Vars};
use super::model::{self, SERVICE_KEYS, TOP_KEYS, TYPED_KEYS};
use super::{key_text, merge};
use crate::spec::locate::Locator;
use crate::spec::{Diagnostic, Diagnostics};

/// One compose file: the name messages use, and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// The files of one project, in compose's order (each overrides the
/// ones before), the variables, and the profiles asked for.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub files: Vec<SourceFile>,
    pub vars: Vars,
    pub profiles: Vec<String>,
}

/// The merged project.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// Enabled services by their compose name.
    pub services: BTreeMap<String, Loaded>,
    /// Services left out by profiles, with their profiles.
    pub disabled: BTreeMap<String, Vec<String>>,
    /// Unset variables (compose substitutes an empty string).
    pub warnings: Vec<Diagnostic>,
}

/// One service and the files that declare it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub service: model::Service,
    pub files: Vec<String>,
}

struct Parsed {
    name: String,
    loc: Locator,
    doc: Value,
}

/// Loads `input`; every error of every file at once.
pub fn load(input: &Input) -> Result<Project, Diagnostics> {
    let (mut diags, mut warnings, mut parsed) = (vec![], vec![], vec![]);
    for f in &input.files {
        if let Some(p) = parse_one(f, &input.vars, &mut diags, &mut warnings) {
            parsed.push(p);
        }
    }
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    let mut merged = Value::Null;
    for (i, p) in parsed.iter().enumerate() {
        if i == 0 {
            merged = p.doc.clone();
            merge::strip_tags(&mut merged);
        } else {
            merge::merge(&mut merged, p.doc.clone());
        }
    }
    let mut project = Project {
        warnings,
        ..Default::default()
    };
    let services = merged
        .get("services")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    for (k, v) in services {
        let name = key_text(&k);
        let files: Vec<String> = parsed
            .iter()
            .filter(|p| p.doc.get("services").and_then(|s| s.get(&k)).is_some())
            .map(|p| p.name.clone())
            .collect();
        let service = match serde_yaml::from_value::<model::Service>(v.clone()) {
            Ok(s) => s,
            Err(e) => {
                diags.push(typed_error(&parsed, &name, &v, &e.to_string()));
                continue;
            }
        };
        let enabled = service.profiles.is_empty() || service.profiles.iter().any(|p| input.profiles.contains(p));
        if enabled {
            project.services.insert(name, Loaded { service, files });
        } else {
            project.disabled.insert(name, service.profiles.clone());
        }
    }
    match diags.is_empty() {
        true => Ok(project),
        false => Err(Diagnostics(diags)),
    }
}

fn parse_one(
    f: &SourceFile,
    vars: &Vars,
    diags: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<Parsed> {
    let mut doc: Value = match serde_yaml::from_str(&f.text) {
        Ok(v) => v,
        Err(e) => {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            diags.push(Diagnostic::new(&f.name, line, col, format!("not valid YAML: {e}")));
            return None;
        }
    };
    if let Err(e) = doc.apply_merge() {
        diags.push(Diagnostic::new(&f.name, 0, 0, format!("a `<<` merge key: {e}")));
        return None;
    }
    let loc = Locator::new(&f.text);
    // At the key when there is one: the key is what is wrong or names what is.
    let at = |path: &[String], msg: String| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let (line, col) = match loc.node(&path).and_then(|n| n.key) {
            Some(k) => (k.line, k.col),
            None => loc.pos(&path),
        };
        Diagnostic::new(&f.name, line, col, msg)
    };
    let Some(top) = doc.as_mapping() else {
        diags.push(Diagnostic::new(
            &f.name,
            1,
            1,
            "a compose file is a mapping with `services:`",
        ));
        return None;
    };
    let before = diags.len();
    for (k, _) in top {
        let k = key_text(k);
        if k == "include" {
            diags.push(at(&[k], "`include` is not supported by teal import: list the included files as arguments, in order, or flatten with `docker compose config`".into()));
        } else if !TOP_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            diags.push(at(
                std::slice::from_ref(&k),
                format!(
                    "unknown top-level key {k:?} in a compose file (the specification knows {})",
                    TOP_KEYS.join(", ")
                ),
            ));
        }
    }
    check_services(&doc, &at, diags);
    let mut unset = vec![];
    // At the value: it holds the variable.
    let at_value = |path: &[String], msg: String| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let (line, col) = loc.pos(&path);
        Diagnostic::new(&f.name, line, col, msg)
    };
    for p in interpolate(&mut doc, vars, &mut unset) {
        diags.push(at_value(&p.path, p.msg));
    }
    for p in unset {
        warnings.push(at_value(&p.path, p.msg));
    }
    merge::normalize(&mut doc);
    (diags.len() == before).then_some(Parsed {
        name: f.name.clone(),
        loc,
        doc,
    })
}

fn check_services(doc: &Value, at: &dyn Fn(&[String], String) -> Diagnostic, diags: &mut Vec<Diagnostic>) {
    let services = match doc.get("services") {
        None | Some(Value::Null) => return,
        Some(Value::Mapping(m)) => m,
        Some(_) => {
            diags.push(at(
                &["services".into()],
                "`services` must be a mapping of service names".into(),
            ));
            return;
        }
    };
    for (name, svc) in services {
        let name = key_text(name);
        let Some(keys) = svc.as_mapping() else {
            diags.push(at(
                &["services".into(), name.clone()],
                format!("service {name:?} must be a mapping"),
            ));
            continue;
        };
        for (k, _) in keys {
            let k = key_text(k);
            let path = ["services".to_string(), name.clone(), k.clone()];
            if k == "extends" {
                diags.push(at(&path, format!("service {name}: `extends` is not supported by teal import: flatten the file first with `docker compose config > flat.yaml` and import that")));
            } else if !SERVICE_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
                diags.push(at(
                    &path,
                    format!("service {name}: unknown key {k:?} (not in the compose specification)"),
                ));
            }
        }
    }
}

/// The error of a service that does not type: the key at fault, located
/// in the last file that sets it.
fn typed_error(parsed: &[Parsed], name: &str, v: &Value, err: &str) -> Diagnostic {
    let culprit = TYPED_KEYS.iter().find(|k| {
        v.get(**k).is_some_and(|val| {
            let mut one = serde_yaml::Mapping::new();
            one.insert((**k).into(), val.clone());
            serde_yaml::from_value::<model::Service>(Value::Mapping(one)).is_err()
        })
    });
    let key = culprit.copied().unwrap_or("");
    let path: Vec<&str> = ["services", name, key].into_iter().filter(|s| !s.is_empty()).collect();
    let file = parsed
        .iter()
        .rev()
        .find(|p| p.loc.node(&path).is_some())
        .or(parsed.last());
    let (line, col) = file.map_or((0, 0), |p| p.loc.pos(&path));
    let what = match culprit {
        Some(k) => format!("service {name}: {k} has a shape compose does not allow ({err})"),
        None => format!("service {name}: {err}"),
    };
    Diagnostic::new(file.map_or("compose file", |p| p.name.as_str()), line, col, what)
}
