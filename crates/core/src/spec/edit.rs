//! `teal bump` as a pure text edit: set the idle color's image and flip
//! `active`, changing only those bytes of the file, so comments, key order,
//! quoting and layout survive byte for byte.

use super::file::ServiceFile;
use super::locate::{Locator, Node, ScalarStyle};
use super::validate::check_image;
use super::Color;

/// What a bump did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bump {
    pub text: String,
    /// The color that served before, and its image.
    pub from: (Color, String),
    /// The color that serves after, and its image.
    pub to: (Color, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Unsupported { path: String, message: String },
    /// The active color already runs the image: nothing to change.
    #[error("{path}: {color} already serves {image}; nothing to bump")]
    AlreadyServes { path: String, color: Color, image: String },
}

/// Stages `image` on the idle color of the service file `text` and makes
/// that color active.
pub fn bump(path: &str, text: &str, image: &str) -> Result<Bump, EditError> {
    check_image(image).map_err(|why| EditError::Invalid(format!("invalid image reference {image:?}: {why}")))?;
    let file: ServiceFile = serde_yaml::from_str(text)
        .map_err(|e| EditError::Invalid(format!("{path}: cannot parse: {e}; fix it first (teal validate)")))?;
    let active = file
        .active
        .ok_or_else(|| EditError::Invalid(format!("{path}: no active color; fix it first (teal validate)")))?;
    let serving = match active {
        Color::Blue => file.blue.as_ref(),
        Color::Green => file.green.as_ref(),
    }
    .and_then(|c| c.image.clone())
    .ok_or_else(|| {
        EditError::Invalid(format!(
            "{path}: the active color {active} has no image; fix it first (teal validate)"
        ))
    })?;
    if serving == image {
        return Err(EditError::AlreadyServes {
            path: path.to_string(),
            color: active,
            image: image.to_string(),
        });
    }
    let idle = active.other();
    let loc = Locator::new(text);
    let unsupported = |message: String| EditError::Unsupported {
        path: path.to_string(),
        message,
    };
    let active_node = loc
        .node(&["active"])
        .ok_or_else(|| unsupported("cannot find the active value".into()))?;
    let mut edits = vec![(
        span(text, active_node).ok_or_else(|| unsupported("cannot edit active in place".into()))?,
        restyle(active_node, idle.as_str()),
    )];
    match loc.node(&[idle.as_str(), "image"]) {
        Some(n) => {
            let s = span(text, n)
                .ok_or_else(|| unsupported(format!("cannot edit {idle}.image in place; set it by hand")))?;
            edits.push((s, restyle(n, image)));
        }
        None if loc.node(&[idle.as_str()]).is_none() => {
            // No idle color yet: add one just before the active color's key.
            let key = loc
                .node(&[active.as_str()])
                .and_then(|n| n.key)
                .ok_or_else(|| unsupported(format!("cannot find {active}")))?;
            let line_start = text[..key.offset].rfind('\n').map_or(0, |i| i + 1);
            let indent = &text[line_start..key.offset];
            edits.push((
                (line_start, line_start),
                format!("{indent}{idle}:\n{indent}  image: {image}\n"),
            ));
        }
        None => {
            return Err(unsupported(format!(
                "{idle} has no image key to edit; write `{idle}:\\n  image: {image}` by hand"
            )))
        }
    }
    edits.sort_by_key(|(s, _)| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for ((start, end), with) in edits {
        out.replace_range(start..end, &with);
    }
    Ok(Bump {
        text: out,
        from: (active, serving),
        to: (idle, image.to_string()),
    })
}

/// Sets the top-level `key` (`promote` or `abort`) of a service file to
/// `commit`, in place when the key is there (its comment kept), else on
/// a line of its own at the end.
pub fn set_word(path: &str, text: &str, key: &str, commit: &str) -> Result<String, EditError> {
    serde_yaml::from_str::<ServiceFile>(text)
        .map_err(|e| EditError::Invalid(format!("{path}: cannot parse: {e}; fix it first (teal validate)")))?;
    let loc = Locator::new(text);
    if let Some(n) = loc.node(&[key]) {
        let (start, end) = span(text, n).ok_or_else(|| EditError::Unsupported {
            path: path.to_string(),
            message: format!("cannot edit {key} in place; set it by hand to {commit}"),
        })?;
        let mut out = text.to_string();
        out.replace_range(start..end, &restyle(n, commit));
        return Ok(out);
    }
    if text.trim_start().starts_with('{') {
        return Err(EditError::Unsupported {
            path: path.to_string(),
            message: format!("a flow-style file: add {key}: {commit} by hand"),
        });
    }
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        nl
    };
    Ok(format!("{text}{sep}{key}: {commit}{nl}"))
}

/// Byte range of a scalar value as written (quotes included), when it
/// sits on one line and its text is what was parsed.
fn span(text: &str, node: &Node) -> Option<(usize, usize)> {
    let (style, value) = node.scalar.as_ref()?;
    let start = node.value.offset;
    let rest = &text[start..];
    let len = match style {
        ScalarStyle::Plain => rest.starts_with(value.as_str()).then_some(value.len())?,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            let q = rest.chars().next()?;
            let close = rest[1..].find(q)? + 2;
            (rest[1..close - 1] == *value).then_some(close)?
        }
        ScalarStyle::Block => return None,
    };
    (!rest[..len].contains('\n')).then_some((start, start + len))
}

/// `value` written in the style of `node` (quotes kept).
fn restyle(node: &Node, value: &str) -> String {
    match node.scalar.as_ref().map(|s| s.0) {
        Some(ScalarStyle::SingleQuoted) => format!("'{value}'"),
        Some(ScalarStyle::DoubleQuoted) => format!("\"{value}\""),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "registry.example.com/shop/web:1.4.3";

    fn bumped(text: &str) -> String {
        bump("services/web.yaml", text, NEW).unwrap().text
    }

    #[test]
    fn block_style_with_comments_changes_only_two_values() {
        let before = "# The shop front.\nactive: green   # serving\nblue:\n  image: registry.example.com/shop/web:1.4.1  # old\ngreen:\n  # current\n  image: registry.example.com/shop/web:1.4.2\nport: 8080\n";
        let after = "# The shop front.\nactive: blue   # serving\nblue:\n  image: registry.example.com/shop/web:1.4.3  # old\ngreen:\n  # current\n  image: registry.example.com/shop/web:1.4.2\nport: 8080\n";
        assert_eq!(bumped(before), after);
        let b = bump("services/web.yaml", before, NEW).unwrap();
        assert_eq!(b.from, (Color::Green, "registry.example.com/shop/web:1.4.2".into()));
        assert_eq!(b.to, (Color::Blue, NEW.into()));
    }

    #[test]
    fn flow_style_and_quotes_are_kept() {
        let before = "active: 'blue'\nblue: {image: \"web:1\"}\ngreen: {image: 'web:0'}\nport: 80\n";
        let after = format!("active: 'green'\nblue: {{image: \"web:1\"}}\ngreen: {{image: '{NEW}'}}\nport: 80\n");
        assert_eq!(bumped(before), after);
        let before = "{active: \"blue\", blue: {image: web:1}, green: {image: \"web:0\"}, port: 80}\n";
        let after = format!("{{active: \"green\", blue: {{image: web:1}}, green: {{image: \"{NEW}\"}}, port: 80}}\n");
        assert_eq!(bumped(before), after);
    }

    #[test]
    fn a_missing_idle_color_is_added_before_the_active_one() {
        let before = "active: blue\n# v1\nblue:\n  image: web:1\nport: 80\n";
        let after = format!("active: green\n# v1\ngreen:\n  image: {NEW}\nblue:\n  image: web:1\nport: 80\n");
        assert_eq!(bumped(before), after);
    }

    #[test]
    fn crlf_and_unicode_comments_survive() {
        let before = "# café ☕\r\nactive: blue\r\nblue:\r\n  image: web:1\r\ngreen:\r\n  image: web:0\r\n";
        let after = format!("# café ☕\r\nactive: green\r\nblue:\r\n  image: web:1\r\ngreen:\r\n  image: {NEW}\r\n");
        assert_eq!(bumped(before), after);
    }

    #[test]
    fn refusals_are_clear() {
        let ok = "active: blue\nblue: {image: web:1}\n";
        assert_eq!(
            bump("services/web.yaml", ok, "Bad Image").unwrap_err().to_string(),
            "invalid image reference \"Bad Image\": path component \"Bad Image\" must be lowercase a-z 0-9 separated by . _ __ or -"
        );
        assert_eq!(
            bump("services/web.yaml", ok, "web:1").unwrap_err().to_string(),
            "services/web.yaml: blue already serves web:1; nothing to bump"
        );
        let err = bump("services/web.yaml", "active: [\n", NEW).unwrap_err().to_string();
        assert!(err.starts_with("services/web.yaml: cannot parse: "), "{err}");
        let err = bump("services/web.yaml", "port: 80\n", NEW).unwrap_err().to_string();
        assert_eq!(err, "services/web.yaml: no active color; fix it first (teal validate)");
    }

    #[test]
    fn a_word_is_set_in_place_or_appended() {
        let base = "active: blue # live\nblue: {image: web:1}\n";
        assert_eq!(
            set_word("s.yaml", base, "promote", "abc1234").unwrap(),
            "active: blue # live\nblue: {image: web:1}\npromote: abc1234\n"
        );
        let again = "active: blue\npromote: abc1234 # by ci\nblue: {image: web:1}";
        assert_eq!(
            set_word("s.yaml", again, "promote", "def5678").unwrap(),
            "active: blue\npromote: def5678 # by ci\nblue: {image: web:1}"
        );
        assert_eq!(
            set_word("s.yaml", "active: blue\r\n", "abort", "abc1234").unwrap(),
            "active: blue\r\nabort: abc1234\r\n"
        );
    }
}
