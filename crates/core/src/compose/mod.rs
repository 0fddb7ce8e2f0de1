//! `teal import compose`, the pure half: docker compose files (held in
//! memory) to teal service files, with a note on everything that does not
//! carry over. The binary reads the files and writes the results.
//!
//! - `load`: parse, interpolate (`interpolate`, `.env` by `dotenv`), merge
//!   (`merge`) and type (`model`) a project, errors as `file:line:col`
//! - `map` (with `map_env`, `map_keys`, `map_health`, `map_route`): one
//!   compose service to one `ServiceFile`
//! - `render`: a service file's text, with its header and comments

pub mod dotenv;
pub mod interpolate;
pub mod load;
pub mod map;
mod map_env;
mod map_health;
mod map_keys;
mod map_route;
pub mod merge;
pub mod model;
pub mod render;
#[cfg(test)]
mod tests;
mod words;

use std::fmt;

pub use interpolate::Vars;
pub use load::{load, Input, Project, SourceFile};
pub use map::{map_service, Context, Imported, Outcome};
pub use map_env::{looks_secret, secret_path};

/// How much a note matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Not carried over.
    LeftOut,
    /// Written as a placeholder the user must fill in.
    ToDo,
    /// Carried over, worth knowing.
    Info,
}

impl Kind {
    pub fn word(self) -> &'static str {
        match self {
            Kind::LeftOut => "left out",
            Kind::ToDo => "to do",
            Kind::Info => "note",
        }
    }
}

/// One line of the report: a compose service, a key, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoteLine {
    pub service: String,
    pub key: String,
    pub kind: Kind,
    pub why: String,
}

impl fmt::Display for NoteLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!(" {}", self.key)
        };
        write!(f, "{}:{key}: {}: {}", self.service, self.kind.word(), self.why)
    }
}

/// The notes of one service while it is mapped.
#[derive(Debug, Default)]
pub struct Note {
    items: Vec<(String, Kind, String)>,
}

impl Note {
    pub fn left_out(&mut self, key: &str, why: impl Into<String>) {
        self.items.push((key.into(), Kind::LeftOut, why.into()));
    }
    pub fn todo(&mut self, key: &str, why: impl Into<String>) {
        self.items.push((key.into(), Kind::ToDo, why.into()));
    }
    pub fn info(&mut self, key: &str, why: impl Into<String>) {
        self.items.push((key.into(), Kind::Info, why.into()));
    }
}

/// Every note of an import, in service order.
#[derive(Debug, Default, Clone)]
pub struct Notes(pub Vec<NoteLine>);

impl Notes {
    pub fn extend(&mut self, n: Note, service: &str) {
        self.0.extend(n.items.into_iter().map(|(key, kind, why)| NoteLine {
            service: service.into(),
            key,
            kind,
            why,
        }));
    }

    /// Whether anything was left out or stands as a placeholder.
    pub fn incomplete(&self) -> bool {
        self.0.iter().any(|n| n.kind != Kind::Info)
    }
}

/// A mapping key as text (numbers and booleans as YAML writes them).
pub(crate) fn key_text(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// The variables of a project: the `.env` file's (`dotenv`: its name for
/// messages and its text) with the shell's over them, as compose does.
pub fn vars(dotenv: Option<(&str, &str)>, shell: &Vars) -> Result<Vars, crate::spec::Diagnostic> {
    let mut vars = Vars::new();
    if let Some((name, text)) = dotenv {
        let parsed = dotenv::parse(text, shell).map_err(|e| crate::spec::Diagnostic::new(name, e.line, 1, e.msg))?;
        vars.extend(parsed);
    }
    vars.extend(shell.clone());
    Ok(vars)
}

/// The profiles asked for: `--profile` flags, else `COMPOSE_PROFILES`.
pub fn profiles(flags: &[String], vars: &Vars) -> Vec<String> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    vars.get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
