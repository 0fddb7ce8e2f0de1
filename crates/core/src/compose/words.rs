//! What the mapping modules share: the context a service is mapped in,
//! compose's splitting of a command line, and a scalar's text.

use super::model::Scalar;

/// What the mapping needs besides the service: the variables (for
/// `KEY:` entries without a value), the variables of its env files in
/// order, and the directory relative bind mounts start from.
pub struct Context<'a> {
    pub vars: &'a super::interpolate::Vars,
    pub env_files: Vec<(String, String)>,
    pub base_dir: &'a str,
}

/// Splits a command line as compose does (shell-like quoting, no shell):
/// `a 'b c' "d\"e"` gives `[a, b c, d"e]`.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let (mut out, mut cur, mut any) = (vec![], String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a single quote is never closed".into()),
                    }
                }
            }
            '"' => {
                any = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("a double quote is never closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a double quote is never closed".into()),
                    }
                }
            }
            '\\' => {
                any = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                any = true;
                cur.push(c);
            }
        }
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

/// The text of an optional scalar (a null label value is empty).
pub fn text(v: &Option<Scalar>) -> String {
    v.as_ref().map(Scalar::text).unwrap_or_default()
}
