//! Text from outside teal made safe to print on a terminal. Commit
//! authors and subjects, error text quoting a repo, a container or a peer:
//! printed as they are, an ESC sequence could retitle the terminal, hide
//! lines, write the clipboard (OSC 52), and a `\r` or a bidi override
//! could make a line read as something else. Such characters are shown
//! as escapes (`\u{1b}`, `\r`) instead; JSON output keeps the exact text.

use std::borrow::Cow;

/// One value on one line: every control character, line breaks included,
/// escaped.
pub fn field(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Whole lines of text: line breaks kept, every other control character
/// escaped.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| unprintable(c) && !(keep_newlines && c == '\n');
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls and DEL, and the bidi controls that reorder what
/// a reader sees ("Trojan Source", CVE-2021-42574).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_show_and_plain_text_is_untouched() {
        let author = "Eve\x1b]0;pwned\x07 <e@x>\r\x1b[2KAda <ada@example.com>";
        assert_eq!(
            field(author),
            "Eve\\u{1b}]0;pwned\\u{7} <e@x>\\r\\u{1b}[2KAda <ada@example.com>"
        );
        assert_eq!(field("a\nb\tc\u{9b}d\u{7f}"), "a\\nb\\tc\\u{9b}d\\u{7f}");
        assert_eq!(lines("a\nb\u{202e}c\n"), "a\nb\\u{202e}c\n");
        assert!(matches!(field("web 1.4.2 — ünïcode"), Cow::Borrowed(_)));
    }
}
