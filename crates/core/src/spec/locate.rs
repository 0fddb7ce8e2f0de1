//! Positions of YAML nodes by key path, so semantic errors found after
//! deserialising still point at `path:line:col`, and `teal bump` can edit a
//! value in place without reformatting the rest of the file.
//!
//! Paths are lists of segments: mapping keys, and sequence indices written
//! in decimal (`["preview", "allow", "1"]`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in the source: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

/// Where one node sits: its key (for mapping values) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub key: Option<Pos>,
    pub value: Pos,
    /// For scalars: the style it was written in and its value.
    pub scalar: Option<(ScalarStyle, String)>,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Block,
}

/// Index from key path to node position for one YAML document.
#[derive(Debug, Clone, Default)]
pub struct Locator {
    nodes: HashMap<Vec<String>, Node>,
    /// Mapping keys written twice (YAML allows neither, serde keeps the
    /// last silently), with the position of the second.
    duplicates: Vec<(Vec<String>, Pos)>,
}

impl Locator {
    /// Indexes `text`. A document that does not parse yields an empty index
    /// (the syntax error is reported by the deserialiser with its position).
    pub fn new(text: &str) -> Locator {
        let mut rx = Receiver {
            text,
            ..Default::default()
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut rx, false).is_err() {
            return Locator::default();
        }
        Locator {
            nodes: rx.nodes,
            duplicates: rx.duplicates,
        }
    }

    /// Keys written twice in one mapping: path and the repeated key.
    pub fn duplicates(&self) -> &[(Vec<String>, Pos)] {
        &self.duplicates
    }

    /// The node at exactly `path`.
    pub fn node(&self, path: &[&str]) -> Option<&Node> {
        let key: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.nodes.get(&key)
    }

    /// Every node, by path, in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = (&[String], &Node)> {
        self.nodes.iter().map(|(p, n)| (p.as_slice(), n))
    }

    /// Best position for a message about `path`: the value when present
    /// (the key, for a mapping or sequence value), else the closest enclosing node that exists (a missing field is
    /// reported on its parent), else the start of the file.
    pub fn pos(&self, path: &[&str]) -> (usize, usize) {
        for len in (1..=path.len()).rev() {
            if let Some(n) = self.node(&path[..len]) {
                // A mapping or sequence is best shown by its key line.
                let at = match (&n.scalar, n.key) {
                    (None, Some(k)) => k,
                    _ => n.value,
                };
                return (at.line, at.col);
            }
        }
        (1, 1)
    }
}

enum Frame {
    Map {
        path: Vec<String>,
        key: Option<(String, Pos)>,
    },
    Seq {
        path: Vec<String>,
        next: usize,
    },
}

#[derive(Default)]
struct Receiver<'a> {
    text: &'a str,
    stack: Vec<Frame>,
    nodes: HashMap<Vec<String>, Node>,
    duplicates: Vec<(Vec<String>, Pos)>,
}

impl Receiver<'_> {
    fn pos(&self, m: Marker) -> Pos {
        // yaml-rust2 counts characters; convert to a byte offset for editing.
        let offset = self
            .text
            .char_indices()
            .nth(m.index())
            .map_or(self.text.len(), |(b, _)| b);
        Pos {
            line: m.line(),
            col: m.col() + 1,
            offset,
        }
    }

    /// Claims the slot of the next node: its path and, for a mapping value,
    /// its key position. `None` when the node is a mapping key itself.
    fn next_slot(&mut self, ev: &Event, at: Pos) -> Option<(Vec<String>, Option<Pos>)> {
        match self.stack.last_mut() {
            None => Some((vec![], None)),
            Some(Frame::Seq { path, next }) => {
                let mut p = path.clone();
                p.push(next.to_string());
                *next += 1;
                Some((p, None))
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some((k, kpos)) => {
                    let mut p = path.clone();
                    p.push(k);
                    Some((p, Some(kpos)))
                }
                None => {
                    let name = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => String::from("<complex key>"),
                    };
                    *key = Some((name, at));
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Receiver<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = self.pos(mark);
        match &ev {
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                return;
            }
            Event::Scalar(..) | Event::Alias(_) | Event::MappingStart(..) | Event::SequenceStart(..) => {}
            _ => return,
        }
        let Some((path, key)) = self.next_slot(&ev, at) else {
            if matches!(ev, Event::MappingStart(..) | Event::SequenceStart(..)) {
                // A complex key: parse through it without recording.
                self.stack.push(Frame::Seq {
                    path: vec!["<complex key>".into()],
                    next: 0,
                });
            }
            return;
        };
        let scalar = match &ev {
            Event::Scalar(v, style, ..) => Some((style_of(*style), v.clone())),
            _ => None,
        };
        if let (Some(k), true) = (key, self.nodes.contains_key(&path)) {
            self.duplicates.push((path.clone(), k));
        }
        self.nodes.insert(path.clone(), Node { key, value: at, scalar });
        match ev {
            Event::MappingStart(..) => self.stack.push(Frame::Map { path, key: None }),
            Event::SequenceStart(..) => self.stack.push(Frame::Seq { path, next: 0 }),
            _ => {}
        }
    }
}

fn style_of(s: TScalarStyle) -> ScalarStyle {
    match s {
        TScalarStyle::Plain => ScalarStyle::Plain,
        TScalarStyle::SingleQuoted => ScalarStyle::SingleQuoted,
        TScalarStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
        TScalarStyle::Literal | TScalarStyle::Folded => ScalarStyle::Block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# c\nactive: green\nblue:\n  image: \"web:1\"\npreview:\n  allow: [10.0.0.0/8, 'x']\nhealth: {http: {path: /h}}\n";

    #[test]
    fn finds_values_keys_and_sequence_items() {
        let l = Locator::new(DOC);
        assert_eq!(l.pos(&["active"]), (2, 9));
        let key = l.node(&["active"]).unwrap().key.unwrap();
        assert_eq!((key.line, key.col), (2, 1));
        assert_eq!(l.pos(&["blue", "image"]), (4, 10));
        assert_eq!(l.pos(&["preview", "allow", "1"]), (6, 23));
        assert_eq!(l.pos(&["health", "http", "path"]), (7, 23));
        let n = l.node(&["blue", "image"]).unwrap();
        assert_eq!(n.scalar, Some((ScalarStyle::DoubleQuoted, "web:1".into())));
        assert_eq!(&DOC[n.value.offset..n.value.offset + 7], "\"web:1\"");
    }

    #[test]
    fn missing_paths_fall_back_to_the_parent() {
        let l = Locator::new(DOC);
        assert_eq!(l.pos(&["blue", "nope"]), l.pos(&["blue"]));
        assert_eq!(l.pos(&["nothing", "here"]), (1, 1));
    }

    #[test]
    fn offsets_are_bytes_even_after_multibyte_text() {
        let doc = "# café ☕\nactive: blue\n";
        let n = Locator::new(doc).node(&["active"]).cloned().unwrap();
        assert_eq!(&doc[n.value.offset..], "blue\n");
    }
}
