//! A YAML document tree that remembers where every value came from.
//!
//! A YAML deserializer stops at the first error and forgets positions; `portico check` must report every
//! mistake at once with file:line:column. So the loader builds this small tree from yaml-rust2's parser
//! events, keeping the marker of each node, and `config::de` shapes it with serde, value by value. This
//! module knows YAML syntax only: it must not know anything about portico's config keys.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file, 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<Marker> for Mark {
    fn from(marker: Marker) -> Self {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Mark {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

/// One YAML node with its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub value: Value,
    pub mark: Mark,
}

/// The shape of a YAML node. Scalars stay strings: the reader decides what type a key needs.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Scalar { text: String },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short word for the kind of node, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A YAML syntax error or a structural problem the tree builder refuses (duplicate keys, bad aliases).
#[derive(Debug, Clone)]
pub(crate) struct SyntaxError {
    pub mark: Mark,
    pub message: String,
    /// What to do about it, when "fix the YAML syntax" would not help.
    pub hint: Option<&'static str>,
}

/// The largest document `parse` accepts (1 MiB): a config file, even a big one, is a few KiB.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// [`MAX_DOCUMENT_BYTES`] as people read it, for messages.
pub(crate) const MAX_DOCUMENT_SIZE_TEXT: &str = "1 MiB";
/// How many nodes anchors and aliases may copy in one document in total. Each alias copies its anchored
/// node, so nested aliases grow exponentially ("billion laughs": 528 bytes become gigabytes); real
/// configs reuse a few small access rules.
pub(crate) const MAX_COPIED_NODES: usize = 100_000;
/// How deeply collections may nest; the tree is walked and dropped recursively.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses one YAML document. An empty document is `Null`. Documents over [`MAX_DOCUMENT_BYTES`], deeper
/// than [`MAX_DEPTH`] or whose anchors and aliases copy more than [`MAX_COPIED_NODES`] nodes are refused.
pub(crate) fn parse(source: &str) -> Result<Node, Vec<SyntaxError>> {
    if source.len() > MAX_DOCUMENT_BYTES {
        return Err(vec![SyntaxError {
            mark: Mark { line: 1, column: 1 },
            message: format!(
                "the file is {} bytes, more than the {MAX_DOCUMENT_SIZE_TEXT} a config file may have",
                source.len()
            ),
            hint: Some("split it: one file per app with `apps_from`"),
        }]);
    }
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(source);
    if let Err(error) = parser.load(&mut builder, false) {
        // A limit the builder hit stops it from building, and is the clearer report.
        if builder.errors.is_empty() {
            return Err(vec![SyntaxError {
                mark: (*error.marker()).into(),
                message: error.info().to_owned(),
                hint: None,
            }]);
        }
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        mark: Mark { line: 1, column: 1 },
    }))
}

/// An open collection: the node being filled, its anchor id and the node count when it was opened.
const COPIES_HINT: &str =
    "write repeated values out, or anchor smaller pieces; aliases of aliases multiply";

fn too_many_copies() -> String {
    format!(
        "anchors and aliases copy more than {MAX_COPIED_NODES} nodes in this file (a YAML alias bomb?)"
    )
}

enum Frame {
    Seq(Node, usize, usize),
    Map(Node, usize, usize, Option<Node>),
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    root: Option<Node>,
    /// Anchored nodes with the number of nodes in each (what an alias to it copies).
    anchors: HashMap<usize, (Node, usize)>,
    errors: Vec<SyntaxError>,
    /// Nodes in the tree so far, those copied by aliases included.
    nodes: usize,
    /// Nodes copied by anchors and aliases so far.
    copied: usize,
    /// A limit was hit: every later event is ignored, so the bad document costs nothing more.
    stopped: bool,
}

impl TreeBuilder {
    fn stop(&mut self, mark: Mark, message: String, hint: &'static str) {
        self.errors.push(SyntaxError {
            mark,
            message,
            hint: Some(hint),
        });
        self.stopped = true;
        self.stack.clear();
        self.anchors.clear();
        self.root = None;
    }

    /// Adds a finished node; `count` is the number of nodes in it.
    fn push_value(&mut self, node: Node, anchor: usize, count: usize) {
        if anchor > 0 {
            // Remembering an anchor copies it too: nested anchors must not multiply the tree.
            if self.copied + count > MAX_COPIED_NODES {
                self.stop(node.mark, too_many_copies(), COPIES_HINT);
                return;
            }
            self.copied += count;
            self.anchors.insert(anchor, (node.clone(), count));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(seq, _, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, _, pending_key)) => match pending_key.take() {
                None => {
                    // yaml-rust2 marks a block mapping at the `:` after its first key; point at the key.
                    if matches!(&map.value, Value::Map(entries) if entries.is_empty()) {
                        map.mark = node.mark;
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if let Value::Map(entries) = &mut map.value {
                        if let Value::Scalar { text, .. } = &key.value {
                            let duplicate = entries.iter().find(|(existing, _)| {
                                matches!(&existing.value, Value::Scalar { text: t, .. } if t == text)
                            });
                            if let Some((first, _)) = duplicate {
                                self.errors.push(SyntaxError {
                                    mark: key.mark,
                                    message: format!(
                                        "duplicate key `{text}` (first defined at line {})",
                                        first.mark.line
                                    ),
                                    hint: None,
                                });
                            }
                        }
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if self.stopped {
            return;
        }
        let mark = Mark::from(marker);
        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..))
            && self.stack.len() >= MAX_DEPTH
        {
            self.stop(
                mark,
                format!("lists and mappings nest more than {MAX_DEPTH} levels deep"),
                "flatten the structure; portico's config never needs this depth",
            );
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let value =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar { text }
                    };
                self.nodes += 1;
                self.push_value(Node { value, mark }, anchor, 1);
            }
            Event::SequenceStart(anchor, _) => {
                self.nodes += 1;
                self.stack.push(Frame::Seq(
                    Node {
                        value: Value::Seq(Vec::new()),
                        mark,
                    },
                    anchor,
                    self.nodes,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.nodes += 1;
                self.stack.push(Frame::Map(
                    Node {
                        value: Value::Map(Vec::new()),
                        mark,
                    },
                    anchor,
                    self.nodes,
                    None,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (node, anchor, opened) = match frame {
                        Frame::Seq(node, anchor, opened) | Frame::Map(node, anchor, opened, _) => {
                            (node, anchor, opened)
                        }
                    };
                    let count = self.nodes + 1 - opened;
                    self.push_value(node, anchor, count);
                }
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some((_, count)) if self.copied + count > MAX_COPIED_NODES => {
                    self.stop(mark, too_many_copies(), COPIES_HINT);
                }
                Some((node, count)) => {
                    let count = *count;
                    let mut node = node.clone();
                    node.mark = mark;
                    self.copied += count;
                    self.nodes += count;
                    self.push_value(node, 0, count);
                }
                None => self.errors.push(SyntaxError {
                    mark,
                    message: "alias refers to an unknown anchor".into(),
                    hint: None,
                }),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let node = parse("a: 1\nb:\n  c: [x, y]\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.mark, Mark { line: 1, column: 1 });
        let Value::Map(inner) = &entries[1].1.value else {
            panic!("not a map")
        };
        assert_eq!(inner[0].0.mark, Mark { line: 3, column: 3 });
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errors = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].mark.line, 3);
        assert!(errors[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let errors = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(errors[0].mark.line >= 1);
    }

    /// The classic "billion laughs": nine levels of nine aliases would be 9^9 nodes.
    pub(crate) const ALIAS_BOMB: &str = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
";

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() {
        let errors = parse(ALIAS_BOMB).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("alias bomb"), "{errors:?}");
        assert_eq!(errors[0].mark.line, 5);
    }

    #[test]
    fn oversized_and_overly_deep_documents_are_refused() {
        let big = "# padding\n".repeat(MAX_DOCUMENT_BYTES / 10 + 1);
        let errors = parse(&big).unwrap_err();
        assert!(errors[0].message.contains("1 MiB"), "{errors:?}");
        let deep: String = (0..100)
            .map(|depth| format!("{}k:\n", " ".repeat(depth)))
            .collect();
        let errors = parse(&deep).unwrap_err();
        assert!(errors[0].message.contains("nest more than"), "{errors:?}");
        assert_eq!(errors[0].mark.line, 65);
        // Flow collections hit the parser's own recursion limit first; either way a clear error.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        // Within the limits, aliases still work.
        assert!(parse("a: &r { roles: [x] }\nb: *r\nc: *r\n").is_ok());
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let node = parse("a: &r [x]\nb: *r\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        assert!(matches!(&entries[1].1.value, Value::Seq(items) if items.len() == 1));
    }
}
