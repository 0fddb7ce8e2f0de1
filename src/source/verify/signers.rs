//! ssh-keygen's allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS), read
//! and matched as `git verify-commit` has OpenSSH do it, so that a file
//! means to teal what it means to git: `ssh-keygen -Y find-principals`
//! names the principals of each line holding the signing key (valid at the
//! commit's time), then `ssh-keygen -Y verify -n git -I <principal>` must
//! find a line that matches that principal, the key, the namespace and the
//! time. The verify time is the committer time, as git passes it
//! (`-Overify-time=`).
//!
//! A line OpenSSH cannot read is skipped, as OpenSSH skips it (it can
//! only vouch for nothing); the refusal then names it. Lines are split
//! as OpenSSH's `strdelimw` and `sshkey_advance_past_options` split them,
//! options parsed as `sshsigopt_parse` does: `cert-authority`,
//! `namespaces="..."`, `valid-after="..."`, `valid-before="..."`, keywords
//! in any case, values in double quotes.

use ssh_key::public::KeyData;
use ssh_key::PublicKey;

mod pattern;
mod time;

pub use pattern::matches_list;
pub use time::parse_time;

/// One readable line of an allowed-signers file.
#[derive(Debug, Clone)]
pub struct Signer {
    /// 1-based line number.
    pub line: usize,
    /// The principals field: an OpenSSH pattern list.
    pub principals: String,
    /// `cert-authority`: vouches for certificates only, which teal does
    /// not take; such a line never matches a plain key.
    pub ca: bool,
    /// `namespaces="..."`: a pattern list the signature's namespace must match.
    pub namespaces: Option<String>,
    /// `valid-after`, Unix seconds.
    pub valid_after: Option<u64>,
    /// `valid-before`, Unix seconds.
    pub valid_before: Option<u64>,
    pub key: PublicKey,
}

/// An allowed-signers file: the lines that read, and why the others did not.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<Signer>,
    /// (line, reason) of each line OpenSSH would skip.
    pub skipped: Vec<(usize, String)>,
}

/// Why no line vouches for a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSigner {
    /// No usable line holds the key for this namespace.
    NotListed,
    /// The key's line (1-based) allows it only from this time on.
    NotYetValid { line: usize, after: u64 },
    /// The key's line allows it only up to this time.
    Expired { line: usize, before: u64 },
}

/// Reads `text`; never fails: unreadable lines land in `skipped`.
pub fn parse(text: &str) -> AllowedSigners {
    let mut out = AllowedSigners::default();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line, i + 1) {
            Ok(Some(s)) => out.signers.push(s),
            Ok(None) => {}
            Err(why) => out.skipped.push((i + 1, why)),
        }
    }
    out
}

impl Signer {
    fn time_ok(&self, time: u64) -> bool {
        self.valid_after.is_none_or(|a| time >= a) && self.valid_before.is_none_or(|b| time <= b)
    }

    fn holds(&self, key: &KeyData) -> bool {
        !self.ca && self.key.key_data() == key
    }
}

impl AllowedSigners {
    /// The principal that vouches for a signature by `key` in `namespace`
    /// made at `time` (Unix seconds), as git with ssh-keygen decides it.
    pub fn vouch(&self, key: &KeyData, namespace: &str, time: u64) -> Result<String, NoSigner> {
        // ssh-keygen -Y find-principals: the principals of the first line
        // holding the key at that time (its namespaces are not looked at),
        // printed up to the first empty one.
        let found = self.signers.iter().find(|s| s.holds(key) && s.time_ok(time));
        let principals = found.map(|s| s.principals.split(',').take_while(|p| !p.is_empty()));
        for principal in principals.into_iter().flatten() {
            // ssh-keygen -Y verify -I principal -n namespace.
            let vouches = self.signers.iter().any(|s| {
                matches_list(principal, &s.principals) == 1
                    && s.holds(key)
                    && s.namespaces.as_deref().is_none_or(|n| matches_list(namespace, n) == 1)
                    && s.time_ok(time)
            });
            if vouches {
                return Ok(principal.to_string());
            }
        }
        let timed = self.signers.iter().find(|s| s.holds(key) && !s.time_ok(time));
        Err(match timed {
            Some(s) if s.valid_after.is_some_and(|a| time < a) => NoSigner::NotYetValid {
                line: s.line,
                after: s.valid_after.unwrap_or_default(),
            },
            Some(s) => NoSigner::Expired {
                line: s.line,
                before: s.valid_before.unwrap_or_default(),
            },
            None => NoSigner::NotListed,
        })
    }
}

/// OpenSSH's field separators.
const SPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// One line: `Ok(None)` for a blank line or a comment.
fn parse_line(line: &str, number: usize) -> Result<Option<Signer>, String> {
    let line = line.trim_start_matches(SPACE);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = first_field(line).ok_or("invalid line: no key after the principals")?;
    let (options, key) = match read_key(rest) {
        Some(key) => ("", key),
        None => {
            let end = options_end(rest).ok_or("invalid options: a quote is not closed")?;
            let (options, after) = rest.split_at(end);
            let after = after.trim_start_matches(SPACE);
            if after.is_empty() {
                return Err("missing key".into());
            }
            (options, read_key(after).ok_or("invalid key")?)
        }
    };
    let mut signer = Signer {
        line: number,
        principals,
        ca: false,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    parse_options(options, &mut signer).map_err(|why| format!("bad options: {why}"))?;
    Ok(Some(signer))
}

/// The principals field and the rest of the line, as `strdelimw` splits
/// them: a double quote opens a part that may hold spaces; None when
/// nothing follows or a quote is not closed.
fn first_field(line: &str) -> Option<(String, &str)> {
    let at = line.find(|c| SPACE.contains(&c) || c == '"')?;
    if line[at..].starts_with('"') {
        let close = line[at + 1..].find('"')? + at + 1;
        let field = format!("{}{}", &line[..at], &line[at + 1..close]);
        return Some((field, line[close + 1..].trim_start_matches(SPACE)));
    }
    Some((line[..at].to_string(), line[at..].trim_start_matches(SPACE)))
}

/// `keytype base64` at the start of `text`, as `sshkey_read` takes it.
fn read_key(text: &str) -> Option<PublicKey> {
    let mut words = text.split(SPACE).filter(|w| !w.is_empty());
    let (kind, base64) = (words.next()?, words.next()?);
    PublicKey::from_openssh(&format!("{kind} {base64}")).ok()
}

/// Where the options end: the first space or tab outside double quotes
/// (`\"` inside quotes is kept); None for an unclosed quote.
fn options_end(text: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && text[i + 1..].starts_with('"') {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == ' ' || c == '\t') {
            return Some(i);
        }
    }
    (!quoted).then_some(text.len())
}

/// `sshsigopt_parse`: comma-separated options, each value quoted.
fn parse_options(mut opts: &str, s: &mut Signer) -> Result<(), String> {
    while !opts.is_empty() {
        if let Some(rest) = strip_keyword(opts, "cert-authority") {
            s.ca = true;
            opts = rest;
        } else if let Some(rest) = strip_keyword(opts, "namespaces=") {
            let (value, rest) = dequote(rest)?;
            if s.namespaces.replace(value).is_some() {
                return Err("multiple \"namespaces\" clauses".into());
            }
            opts = rest;
        } else if let Some((name, rest)) = ["valid-after", "valid-before"]
            .iter()
            .find_map(|n| strip_keyword(opts, &format!("{n}=")).map(|r| (*n, r)))
        {
            let (value, rest) = dequote(rest)?;
            let t = parse_time(&value).filter(|t| *t != 0);
            let t = t.ok_or_else(|| format!("invalid \"{name}\" time"))?;
            let slot = if name == "valid-after" {
                &mut s.valid_after
            } else {
                &mut s.valid_before
            };
            if slot.replace(t).is_some() {
                return Err(format!("multiple \"{name}\" clauses"));
            }
            opts = rest;
        } else {
            return Err("unsupported option".into());
        }
        match opts.strip_prefix(',') {
            None if opts.is_empty() => break,
            None => return Err("unknown key option".into()),
            Some("") => return Err("unexpected end-of-options".into()),
            Some(rest) => opts = rest,
        }
    }
    if let (Some(a), Some(b)) = (s.valid_after, s.valid_before) {
        if b <= a {
            return Err("\"valid-before\" time is before \"valid-after\"".into());
        }
    }
    Ok(())
}

/// `text` without a leading `keyword`, compared without regard to case.
fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let head = text.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| &text[keyword.len()..])
}

/// `opt_dequote`: a double-quoted value (`\"` stands for a quote) and the
/// text after it.
fn dequote(text: &str) -> Result<(String, &str), String> {
    let body = text.strip_prefix('"').ok_or("missing start quote")?;
    let mut value = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' if chars.peek().is_some_and(|(_, n)| *n == '"') => {
                value.push('"');
                chars.next();
            }
            c => value.push(c),
        }
    }
    Err("missing end quote".into())
}

#[cfg(test)]
mod tests;
