//! `.env` and `env_file:` files as compose reads them: `KEY=VALUE` lines,
//! an optional `export ` before the key, `#` comments, values unquoted
//! (trimmed, a ` #` starts a comment), 'single-quoted' (literal) or
//! "double-quoted" (`\n`, `\t`, `\\`, `\"` escapes); unquoted and
//! double-quoted values interpolate variables set before them.

use super::interpolate::{expand, Vars};

/// One bad line: its number (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub msg: String,
}

/// The variables of `text`, in file order. `outer` resolves `${...}` in
/// values (beside the file's own earlier lines) and a bare `KEY` line,
/// which takes its value from there (and is skipped when unset there).
pub fn parse(text: &str, outer: &Vars) -> Result<Vec<(String, String)>, LineError> {
    let mut out: Vec<(String, String)> = vec![];
    for (n, raw) in text.lines().enumerate() {
        let err = |msg: String| LineError { line: n + 1, msg };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim_start())),
            None => (line, None),
        };
        if !is_name(key) {
            return Err(err(format!(
                "invalid variable name {key:?}: use letters, digits, '_', '.' and '-', as KEY=VALUE"
            )));
        }
        let mut scope = outer.clone();
        scope.extend(out.iter().cloned());
        let value = match value {
            None => match outer.get(key) {
                Some(v) => v.clone(),
                None => continue,
            },
            Some(v) => value_of(v, &scope).map_err(err)?,
        };
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn is_name(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn value_of(v: &str, scope: &Vars) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("a single quote is never closed (values span one line)".into());
        };
        check_after(&rest[end + 1..])?;
        return Ok(rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let (mut text, mut chars, mut closed) = (String::new(), rest.char_indices(), None);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    closed = Some(i);
                    break;
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => {
                        // `\$` stays a literal dollar through interpolation.
                        text.push_str(if c == '$' { "$$" } else { "" });
                        if c != '$' {
                            text.push(c);
                        }
                    }
                    Some(c) => {
                        text.push('\\');
                        text.push(c);
                    }
                    None => text.push('\\'),
                },
                c => text.push(c),
            }
        }
        let Some(end) = closed else {
            return Err("a double quote is never closed (values span one line)".into());
        };
        check_after(&rest[end + 1..])?;
        return expand(&text, scope).map(|e| e.text);
    }
    let unquoted = match v.find(" #").or_else(|| v.find("\t#")) {
        Some(i) => &v[..i],
        None => v,
    };
    expand(unquoted.trim_end(), scope).map(|e| e.text)
}

fn check_after(rest: &str) -> Result<(), String> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(format!("unexpected {rest:?} after the closing quote"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quotes_comments_and_interpolation() {
        let text = "# comment\n\nA=1\nexport B = two words # note\nC='lit $A # kept'\nD=\"x\\ny ${A}\"\nE=${B:-no}-$A\nF=\nG\nH\nA=again\n";
        let outer: Vars = [("G".to_string(), "from shell".to_string())].into();
        let got = parse(text, &outer).unwrap();
        let want = [
            ("B", "two words"),
            ("C", "lit $A # kept"),
            ("D", "x\ny 1"),
            ("E", "two words-1"),
            ("F", ""),
            ("G", "from shell"),
            ("A", "again"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = parse("A=1\nnot a=line\n", &Vars::new()).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("invalid variable name \"not a\""), "{}", e.msg);
        let e = parse("A=\"open\n", &Vars::new()).unwrap_err();
        assert_eq!((e.line, e.msg.contains("never closed")), (1, true));
        let e = parse("A='x' y\n", &Vars::new()).unwrap_err();
        assert!(e.msg.contains("after the closing quote"));
        let e = parse("A=${B:?needed}\n", &Vars::new()).unwrap_err();
        assert!(e.msg.contains("needed"));
    }
}
