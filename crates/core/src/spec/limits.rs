//! Limits on what a YAML file may cost to read, checked before any parser
//! builds a tree from it: its size, its nesting depth and the number of
//! nodes it stands for once aliases are expanded. A "billion laughs" file
//! (nine aliases of nine aliases of ...) is a few hundred bytes that stand
//! for 10^9 nodes; it is refused here, with its file and line, in
//! microseconds and without allocating what it stands for.
//!
//! Why a pre-check and not another parser: serde_yaml 0.9 (deprecated)
//! expands aliases lazily and refuses most bombs on its own when the
//! target type is strict (teal's types deny unknown fields, so a bomb
//! under an unknown key is refused at its key), but it has no size or
//! node limit, and our own position index (`locate`, yaml-rust2 events)
//! walks every node with its path: a 200 000-deep `[[[...]]]` took 80 s
//! and a 10 MB flow sequence minutes before this check. serde-saphyr has
//! budgets of its own, but moving every located error to it is a larger
//! change than these limits; this scan uses the event parser we already
//! have, never recurses, never expands an alias (it adds up the sizes of
//! anchored nodes instead) and stops at the first limit crossed.

use yaml_rust2::parser::{Event, Parser};

use super::Diagnostic;

/// Largest YAML file teal reads: a service file is a few hundred bytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Deepest nesting of mappings and sequences.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a file may stand for, aliases expanded (a large teal.yaml
/// has a few thousand).
pub const MAX_NODES: u64 = 100_000;
/// Most service files one commit may hold: ten thousand validate and
/// diff in seconds; past that a repo is a mistake or an attack.
pub const MAX_SERVICES: usize = 10_000;
/// Most bytes all config files of one commit may add up to.
pub const MAX_REPO_BYTES: usize = 64 << 20;

/// Checks `text` (the file `path`) against the limits; the first one
/// crossed, at the line where it was crossed. A syntax error is left to
/// the deserialiser, which reports it with its position.
pub fn check(path: &str, text: &str) -> Result<(), Diagnostic> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Diagnostic::new(
            path,
            1,
            1,
            format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES} teal reads: a config file this large is a mistake or an attack",
                text.len()
            ),
        ));
    }
    flow_depth(path, text)?;
    let mut parser = Parser::new_from_str(text);
    // Nodes counted so far in each open collection (the document at the bottom).
    let mut open: Vec<(u64, usize)> = vec![(0, 0)];
    // Expanded size of each anchored node, by anchor id.
    let mut anchored: std::collections::HashMap<usize, u64> = Default::default();
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            return Ok(());
        };
        let at = |msg: String| Diagnostic::new(path, mark.line(), mark.col() + 1, msg);
        // A finished node: its expanded size, and its anchor.
        let done = match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if open.len() > MAX_DEPTH {
                    return Err(at(format!(
                        "nested more than {MAX_DEPTH} levels deep: teal refuses such a file"
                    )));
                }
                open.push((1, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd if open.len() > 1 => open.pop(),
            Event::Scalar(_, _, anchor, _) => Some((1, anchor)),
            Event::Alias(id) => Some((anchored.get(&id).copied().unwrap_or(1), 0)),
            _ => None,
        };
        if let Some((size, anchor)) = done {
            if anchor != 0 {
                anchored.insert(anchor, size);
            }
            let parent = &mut open.last_mut().expect("the document frame").0;
            *parent = parent.saturating_add(size);
            let total: u64 = open.iter().fold(0u64, |a, (n, _)| a.saturating_add(*n));
            if total > MAX_NODES {
                return Err(at(format!(
                    "holds more than {MAX_NODES} values, each alias (*name) counted as the values it repeats: teal refuses such a file"
                )));
            }
        }
    }
}

/// Flow nesting (`[[[[...`) by counting brackets, before the parser sees
/// them: yaml-rust2 takes time quadratic in that depth before it gives up
/// (a 200 000-deep line: 80 s). Brackets inside quotes count too; 64
/// unclosed ones in a string do not occur in a config file.
fn flow_depth(path: &str, text: &str) -> Result<(), Diagnostic> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    for b in text.bytes() {
        col += 1;
        match b {
            b'\n' => (line, col) = (line + 1, 0),
            b'[' | b'{' => depth += 1,
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(Diagnostic::new(
                path,
                line,
                col,
                format!("nested more than {MAX_DEPTH} levels deep: teal refuses such a file"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic "billion laughs": 9^9 strings in nine lines.
    pub const BOMB: &str = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n\
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n\
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
        e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n\
        f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
        g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n\
        h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
        i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";

    #[test]
    fn the_billion_laughs_is_refused_at_the_line_that_crosses_the_limit() {
        let e = check("services/web.yaml", BOMB).unwrap_err().to_string();
        assert!(e.starts_with("services/web.yaml:6:"), "{e}");
        assert!(e.contains("more than 100000 values, each alias"), "{e}");
    }

    #[test]
    fn depth_size_and_many_values_are_refused_and_ordinary_files_pass() {
        let deep = format!("command: {}{}\n", "[".repeat(100), "]".repeat(100));
        let e = check("t.yaml", &deep).unwrap_err().to_string();
        assert!(e.starts_with("t.yaml:1:") && e.contains("nested more than 64"), "{e}");
        let big = format!("env: {{A: '{}'}}\n", "x".repeat(MAX_FILE_BYTES));
        assert!(check("t.yaml", &big)
            .unwrap_err()
            .to_string()
            .contains("bytes, more than"));
        let wide = format!("command: [{}]\n", "a,".repeat(200_000));
        assert!(check("t.yaml", &wide).is_err());
        let ok = "active: blue\nblue: &b {image: x}\ngreen: *b\nport: 80\nroute: {host: a.example}\n";
        assert_eq!(check("t.yaml", ok), Ok(()));
        assert_eq!(check("t.yaml", "a: [unclosed\n"), Ok(()), "syntax is serde's to report");
    }
}
