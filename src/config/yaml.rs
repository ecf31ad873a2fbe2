//! A YAML document tree that remembers where every value came from.
//!
//! serde stops at the first error and forgets positions; `portico check` must report every mistake at
//! once with file:line:column. So the loader builds this small tree from yaml-rust2's parser events,
//! keeping the marker of each node, and `config::compile` walks it by hand. This module knows YAML
//! syntax only: it must not know anything about portico's config keys.

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
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

/// The shape of a YAML node. Scalars stay strings: the reader decides what type a key needs.
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Scalar { text: String },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short word for the kind of node, for error messages.
    pub fn kind(&self) -> &'static str {
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
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(source: &str) -> Result<Node, Vec<SyntaxError>> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(source);
    if let Err(error) = parser.load(&mut builder, false) {
        return Err(vec![SyntaxError {
            mark: (*error.marker()).into(),
            message: error.info().to_owned(),
        }]);
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        mark: Mark { line: 1, column: 1 },
    }))
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    errors: Vec<SyntaxError>,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending_key)) => match pending_key.take() {
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
        let mark = Mark::from(marker);
        match event {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                let value =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar { text }
                    };
                self.push_value(Node { value, mark }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(
                Node {
                    value: Value::Seq(Vec::new()),
                    mark,
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node {
                    value: Value::Map(Vec::new()),
                    mark,
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (node, anchor) = match frame {
                        Frame::Seq(node, anchor) | Frame::Map(node, anchor, _) => (node, anchor),
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor).cloned() {
                Some(mut node) => {
                    node.mark = mark;
                    self.push_value(node, 0);
                }
                None => self.errors.push(SyntaxError {
                    mark,
                    message: "alias refers to an unknown anchor".into(),
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

    #[test]
    fn aliases_copy_the_anchored_node() {
        let node = parse("a: &r [x]\nb: *r\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!()
        };
        assert!(matches!(&entries[1].1.value, Value::Seq(items) if items.len() == 1));
    }
}
