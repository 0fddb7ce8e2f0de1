//! The subset of Markdown teal's docs use, as roff for a man page: so
//! teal-config(5) and teal-service(5) are the docs themselves, not a second
//! copy by hand that drifts.
//!
//! Headings become sections, fenced code and tables stay as written
//! (no fill), list items get bullets, `code` and **strong** become bold
//! and a link keeps its text. Anything else is a paragraph of text.

use clap_mangen::roff::{bold, roman, Inline, Roff};

/// Appends `markdown` to `page`; its level-1 heading is left out (the
/// page's NAME says it), `##` starts a section and `###` a subsection.
pub fn render(markdown: &str, page: &mut Roff) {
    let mut para = Para::default();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            flush(&mut para, page);
        } else if trimmed.starts_with("```") {
            flush(&mut para, page);
            let mut block = vec![];
            for code in lines.by_ref() {
                if code.trim_start().starts_with("```") {
                    break;
                }
                block.push(code);
            }
            preformatted(&block, page);
        } else if trimmed.starts_with('|') {
            flush(&mut para, page);
            let mut block = vec![line];
            while let Some(next) = lines.next_if(|l| l.trim_start().starts_with('|')) {
                block.push(next);
            }
            preformatted(&block, page);
        } else if let Some(title) = line.strip_prefix("### ") {
            flush(&mut para, page);
            page.control("SS", [plain(title).as_str()]);
        } else if let Some(title) = line.strip_prefix("## ") {
            flush(&mut para, page);
            page.control("SH", [plain(title).to_uppercase().as_str()]);
        } else if line.starts_with("# ") {
            flush(&mut para, page);
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            flush(&mut para, page);
            para.item = true;
            para.lines.push(item.to_string());
        } else {
            para.lines.push(trimmed.to_string());
        }
    }
    flush(&mut para, page);
}

/// The lines of a paragraph or list item read so far.
#[derive(Default)]
struct Para {
    lines: Vec<String>,
    item: bool,
}

/// A paragraph or list item as filled text.
fn flush(para: &mut Para, page: &mut Roff) {
    if para.lines.is_empty() {
        return;
    }
    if para.item {
        page.control("IP", ["\\(bu", "2"]);
    } else {
        page.control("PP", []);
    }
    page.text(inlines(&para.lines.join(" ")));
    *para = Para::default();
}

/// Code and tables: kept line for line, indented.
fn preformatted(block: &[&str], page: &mut Roff) {
    page.control("PP", []);
    page.control("RS", ["4"]);
    page.control("nf", []);
    page.text([roman(block.join("\n"))]);
    page.control("fi", []);
    page.control("RE", []);
}

/// `code` and **strong** in bold, [text](target) as its text.
pub fn inlines(text: &str) -> Vec<Inline> {
    let mut out = vec![];
    let mut plain_run = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let span = match c {
            '`' => delimited(rest, "`", "`").map(|(inner, len)| (bold(inner), len)),
            '*' if rest.starts_with("**") => delimited(rest, "**", "**").map(|(inner, len)| (bold(plain(inner)), len)),
            '[' => link(rest).map(|(inner, len)| (roman(plain(inner)), len)),
            _ => None,
        };
        match span {
            Some((inline, len)) => {
                if !plain_run.is_empty() {
                    out.push(roman(std::mem::take(&mut plain_run)));
                }
                out.push(inline);
                rest = &rest[len..];
            }
            None => {
                plain_run.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !plain_run.is_empty() {
        out.push(roman(plain_run));
    }
    out
}

/// The text between `open` at the start and the next `close`, and the
/// length of the whole span.
fn delimited<'a>(text: &'a str, open: &str, close: &str) -> Option<(&'a str, usize)> {
    let body = text.strip_prefix(open)?;
    let end = body.find(close)?;
    (end > 0).then(|| (&body[..end], open.len() + end + close.len()))
}

/// `[text](target)`: the text and the length of the whole link.
fn link(text: &str) -> Option<(&str, usize)> {
    let (inner, len) = delimited(text, "[", "]")?;
    let target = text[len..].strip_prefix('(')?;
    let end = target.find(')')?;
    Some((inner, len + 1 + end + 1))
}

/// A heading or link text without its Markdown marks.
fn plain(text: &str) -> String {
    text.replace("**", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(markdown: &str) -> String {
        let mut roff = Roff::new();
        render(markdown, &mut roff);
        roff.to_roff()
    }

    #[test]
    fn headings_paragraphs_lists_and_code_become_man_macros() {
        let out = page(
            "# The host config\n\nIt is `/etc/teal/daemon.yaml`,\nsee [status.md](status.md).\n\n\
             ## Fleet peers\n\n- **HAProxy**: one\n  two\n\n```yaml\nrepo:\n  url: x # .x\n.dot\n```\n",
        );
        assert_eq!(
            out,
            ".PP\nIt is \\fB/etc/teal/daemon.yaml\\fR, see status.md.\n\
             .SH \"FLEET PEERS\"\n.IP \\(bu 2\n\\fBHAProxy\\fR: one two\n\
             .PP\n.RS 4\n.nf\nrepo:\n  url: x # .x\n\\&.dot\n.fi\n.RE\n"
        );
    }
}
