//! The writing half of `teal import compose`: every file checked as
//! `teal validate` would before any is written, a file already as the
//! import would write it left untouched (so a second import changes
//! nothing), and the report: per service what was written, then each
//! note per service and key.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use super::import::{with_written, ComposeArgs};
use crate::compose::{self as ci, Kind};

pub(super) fn finish(
    args: &ComposeArgs,
    imported: Vec<ci::Imported>,
    skipped: Vec<(String, String)>,
    mut notes: ci::Notes,
) -> anyhow::Result<u8> {
    let dir = args.repo.join(args.path.trim_start_matches('/'));
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    let mut from: BTreeMap<String, &str> = BTreeMap::new();
    for imp in &imported {
        let rel = format!("services/{}.yaml", imp.name);
        if let Some(other) = from.insert(rel.clone(), &imp.compose_name) {
            bail!(
                "compose services {other:?} and {:?} would both be {rel}: import them one at a time with --service and rename one",
                imp.compose_name
            );
        }
        texts.insert(rel, ci::render::render(imp));
    }
    let files = with_written(&dir, &texts)?;
    let mut invalid = vec![];
    for rel in texts.keys() {
        if let Some(errors) = super::errors_in(&files, rel) {
            invalid.push(errors);
        }
    }
    if !invalid.is_empty() {
        println!("{}", invalid.join("\n"));
        println!(
            "nothing written: the imported files would not validate (a value teal refuses; fix it in the compose file)"
        );
        return Ok(super::exit::ERROR);
    }
    for (rel, text) in &texts {
        let path = dir.join(rel);
        let existing = std::fs::read_to_string(&path).ok();
        let service = from[rel];
        let verb = match existing.as_deref() {
            Some(old) if old == text => "unchanged",
            Some(_) if !args.force => {
                notes.0.push(ci::NoteLine {
                    service: service.to_string(),
                    key: String::new(),
                    kind: Kind::LeftOut,
                    why: format!("{rel} exists and differs from the import (edited, or bumped): left as it is; --force overwrites it"),
                });
                "kept as it is"
            }
            _ if args.dry_run => "would write",
            _ => {
                write(&path, text)?;
                "written"
            }
        };
        if args.dry_run && verb == "would write" {
            println!("--- {rel}\n{text}");
        }
        println!("{service}: {rel} {verb}");
    }
    for (name, why) in &skipped {
        println!("{name}: not imported: {why}");
    }
    report(&notes);
    Ok(if notes.incomplete() || !skipped.is_empty() {
        super::exit::CHANGES
    } else {
        super::exit::OK
    })
}

fn write(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = path.with_extension("yaml.teal-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn report(notes: &ci::Notes) {
    if notes.0.is_empty() {
        return;
    }
    let mut sorted = notes.0.clone();
    sorted.sort_by(|a, b| (&a.service, a.kind, &a.key).cmp(&(&b.service, b.kind, &b.key)));
    println!();
    println!("Not carried over, or to look at:");
    for n in sorted {
        println!("  {}", crate::printable::field(&n.to_string()));
    }
}
