//! Compose's variable syntax in values: `$NAME`, `${NAME}`, the defaults
//! `${NAME:-word}` / `${NAME-word}`, the required forms `${NAME:?msg}` /
//! `${NAME?msg}`, the alternates `${NAME:+word}` / `${NAME+word}`, nesting
//! inside a word, and `$$` for a literal `$` (the compose specification's
//! "Interpolation"). Applied to values only, never to keys, per file,
//! before files are merged.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// The variables interpolation reads: the shell's over the `.env` file's.
pub type Vars = BTreeMap<String, String>;

/// What interpolating one string found: its result and the names used but
/// unset (compose warns about them and substitutes an empty string).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    pub text: String,
    pub unset: Vec<String>,
}

/// Expands `s`. An error says what is wrong (a `${NAME?msg}` of an unset
/// variable, a `${` that is never closed, a bad name).
pub fn expand(s: &str, vars: &Vars) -> Result<Expanded, String> {
    let mut out = Expanded::default();
    let chars: Vec<char> = s.chars().collect();
    let end = expand_into(&chars, 0, vars, &mut out, None)?;
    debug_assert_eq!(end, chars.len());
    Ok(out)
}

/// Expands from `i` until the end or (inside a braced word) an unmatched
/// `}`; returns the index it stopped at.
fn expand_into(c: &[char], mut i: usize, vars: &Vars, out: &mut Expanded, stop: Option<char>) -> Result<usize, String> {
    while i < c.len() {
        if Some(c[i]) == stop {
            return Ok(i);
        }
        if c[i] != '$' {
            out.text.push(c[i]);
            i += 1;
            continue;
        }
        match c.get(i + 1) {
            Some('$') => {
                out.text.push('$');
                i += 2;
            }
            Some('{') => i = braced(c, i + 2, vars, out)?,
            Some(&ch) if ch == '_' || ch.is_ascii_alphabetic() => {
                let start = i + 1;
                let mut j = start;
                while j < c.len() && (c[j] == '_' || c[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = c[start..j].iter().collect();
                lookup(&name, vars, out);
                i = j;
            }
            // Not a variable: kept as written.
            _ => {
                out.text.push('$');
                i += 1;
            }
        }
    }
    match stop {
        Some(_) => Err("a \"${\" is never closed with \"}\"".into()),
        None => Ok(i),
    }
}

fn lookup(name: &str, vars: &Vars, out: &mut Expanded) {
    match vars.get(name) {
        Some(v) => out.text.push_str(v),
        None => out.unset.push(name.to_string()),
    }
}

/// `${...}` from just after the brace; returns the index after its `}`.
fn braced(c: &[char], start: usize, vars: &Vars, out: &mut Expanded) -> Result<usize, String> {
    let mut j = start;
    while j < c.len() && (c[j] == '_' || c[j].is_ascii_alphanumeric()) {
        j += 1;
    }
    let name: String = c[start..j].iter().collect();
    if name.is_empty() || name.starts_with(|ch: char| ch.is_ascii_digit()) {
        return Err(format!(
            "invalid variable name {name:?} after \"${{\": use letters, digits and '_'"
        ));
    }
    let op: String = match (c.get(j), c.get(j + 1)) {
        (Some('}'), _) => {
            lookup(&name, vars, out);
            return Ok(j + 1);
        }
        (Some(':'), Some(o @ ('-' | '?' | '+'))) => format!(":{o}"),
        (Some(o @ ('-' | '?' | '+')), _) => o.to_string(),
        (None, _) => return Err(format!("\"${{{name}\" is never closed with \"}}\"")),
        (Some(other), _) => {
            return Err(format!(
                "unsupported \"{other}\" in \"${{{name}...}}\": compose knows :-, -, :?, ?, :+ and +"
            ))
        }
    };
    // The word is itself interpolated (nesting), but only used when needed.
    let mut word = Expanded::default();
    let end = expand_into(c, j + op.len(), vars, &mut word, Some('}'))?;
    let value = vars.get(&name);
    let empty = value.is_none_or(|v| v.is_empty());
    let take_word = |out: &mut Expanded, word: Expanded| {
        out.text.push_str(&word.text);
        out.unset.extend(word.unset);
    };
    match op.as_str() {
        ":-" if empty => take_word(out, word),
        "-" if value.is_none() => take_word(out, word),
        ":?" | "?" if (op == ":?" && empty) || value.is_none() => {
            let why = if word.text.is_empty() {
                "required".to_string()
            } else {
                word.text
            };
            return Err(format!("variable {name} is not set: {why}"));
        }
        ":+" if !empty => take_word(out, word),
        "+" if value.is_some() => take_word(out, word),
        ":+" | "+" => {}
        _ => out.text.push_str(value.map_or("", String::as_str)),
    }
    Ok(end + 1)
}

/// A problem found while interpolating a document: where (key path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<String>,
    pub msg: String,
}

/// Interpolates every string value of `doc` in place (keys untouched).
/// Returns the hard errors; `unset` collects `(path, name)` of each unset
/// variable compose would replace with an empty string.
pub fn interpolate(doc: &mut Value, vars: &Vars, unset: &mut Vec<Problem>) -> Vec<Problem> {
    let mut errors = vec![];
    walk(doc, &mut vec![], vars, unset, &mut errors);
    errors
}

fn walk(v: &mut Value, path: &mut Vec<String>, vars: &Vars, unset: &mut Vec<Problem>, errors: &mut Vec<Problem>) {
    match v {
        Value::String(s) => match expand(s, vars) {
            Ok(e) => {
                for name in e.unset {
                    unset.push(Problem {
                        path: path.clone(),
                        msg: format!("variable {name} is not set: an empty string is used, as compose does"),
                    });
                }
                *s = e.text;
            }
            Err(msg) => errors.push(Problem {
                path: path.clone(),
                msg,
            }),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, path, vars, unset, errors);
                path.pop();
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(super::key_text(k));
                walk(item, path, vars, unset, errors);
                path.pop();
            }
        }
        Value::Tagged(t) => walk(&mut t.value, path, vars, unset, errors),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "a"), ("EMPTY", ""), ("PORT", "8080")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_form_of_the_specification() {
        let rows: &[(&str, &str)] = &[
            ("plain", "plain"),
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y$A.z", "xaya.z"),
            ("$$A", "$A"),
            ("$$", "$"),
            ("cost $5", "cost $5"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${A:-d}", "a"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-${A}}", "a"),
            ("${UNSET:-${UNSET2:-deep}}", "deep"),
            ("${UNSET:-http://x:${PORT}/}", "http://x:8080/"),
            ("${A?must}", "a"),
            ("${EMPTY?must}", ""),
        ];
        for (input, want) in rows {
            let got = expand(input, &vars()).unwrap();
            assert_eq!(got.text, *want, "{input}");
        }
        assert_eq!(expand("$UNSET-$A", &vars()).unwrap().unset, ["UNSET"]);
        // A default hides the unset variable; an unused word is not looked at.
        assert!(expand("${UNSET:-d} ${A:-$NOPE}", &vars()).unwrap().unset.is_empty());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |s: &str| expand(s, &vars()).unwrap_err();
        assert_eq!(
            err("${UNSET:?set it in .env}"),
            "variable UNSET is not set: set it in .env"
        );
        assert_eq!(err("${EMPTY:?}"), "variable EMPTY is not set: required");
        assert_eq!(err("${UNSET?}"), "variable UNSET is not set: required");
        assert!(err("${A").contains("never closed"), "{}", err("${A"));
        assert!(err("${A:-x").contains("never closed"));
        assert!(err("${A/x/y}").contains("unsupported"));
        assert!(err("${}").contains("invalid variable name"));
    }

    #[test]
    fn documents_are_interpolated_in_values_not_keys() {
        let mut doc: Value = serde_yaml::from_str("$A: ${A}\nlist: [$PORT, '${B:?no B}']\n").unwrap();
        let mut unset = vec![];
        let errors = interpolate(&mut doc, &vars(), &mut unset);
        assert_eq!(
            errors,
            [Problem {
                path: vec!["list".into(), "1".into()],
                msg: "variable B is not set: no B".into()
            }]
        );
        assert_eq!(doc["$A"], Value::String("a".into()));
        assert_eq!(doc["list"][0], Value::String("8080".into()));
    }
}
