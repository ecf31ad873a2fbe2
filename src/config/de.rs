//! The shape stage: a serde `Deserializer` over the positioned YAML tree ([`yaml::Node`]), modelled on
//! `marked-yaml`'s `from_node`. The wrapper types the raw structs are built from are in `config::wrap`.
//!
//! What serde alone would not do, and this module does:
//! - positions: a `Val` keeps the mark of its value, and every problem is reported at its node
//!   with the key path from the shaped root;
//! - every mistake at once: a problem inside a `Val` is recorded and that value becomes `None`; the
//!   mapping around it is still read. Unknown keys are recorded (with the allowed keys, for a
//!   did-you-mean) and skipped, never fatal;
//! - the environment: `Env` text has `${VAR}` substituted (under the file's [`EnvRules`]), `Shown`
//!   text, which reaches browsers, refuses it. Nothing else in the config reads the environment.
//!
//! The wrappers talk to this deserializer through reserved struct names; with any other deserializer
//! they are not meant to work. This module knows YAML shapes, not portico's keys.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::Severity;
use super::diagnose::{closest, unknown_key_hint};
use super::env::{self, EnvRules};
use super::wrap::{ENTITY, ENV, LIST, OR_TEXT, SHOWN, TRANSLATED, VAL};
use super::yaml::{Mark, Node, Value};

/// One problem found while shaping, positioned; `path` is relative to the shaped root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// An error, or a warning (only an unset `${VAR}` read as a placeholder by `portico check`).
    pub severity: Severity,
    pub mark: Mark,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
    /// An unknown key that is a typo of an allowed one: the mapping it is in, and the key it stands
    /// for. The rules then leave out "`access` is missing" for that mapping: one mistake, one error.
    pub stands_for: Option<(Mark, &'static str)>,
}

/// Shapes `root` into `T` under `rules`. Returns `None` only if the root itself is unusable; every
/// problem, the root's included, is in the issues.
pub(crate) fn shape<T: DeserializeOwned>(
    root: &Node,
    rules: &EnvRules<'_>,
) -> (Option<T>, Vec<Issue>) {
    let shaper = Shaper {
        rules,
        issues: RefCell::new(Vec::new()),
    };
    let de = De {
        node: root,
        shaper: &shaper,
        path: String::new(),
        own: None,
    };
    let value = match T::deserialize(de) {
        Ok(value) => Some(value),
        Err(error) => {
            shaper.record(error, root.mark, "");
            None
        }
    };
    (value, shaper.issues.into_inner())
}

struct Shaper<'r> {
    rules: &'r EnvRules<'r>,
    issues: RefCell<Vec<Issue>>,
}

impl Shaper<'_> {
    fn issue(&self, mark: Mark, path: String, message: String, hint: Option<String>) {
        self.issues.borrow_mut().push(Issue {
            severity: Severity::Error,
            mark,
            path,
            message,
            hint,
            stands_for: None,
        });
    }

    fn record(&self, error: Error, mark: Mark, path: &str) {
        self.issue(
            error.mark.unwrap_or(mark),
            error.path.unwrap_or_else(|| path.to_owned()),
            error.message,
            error.hint,
        );
    }
}

/// A shape error on its way up to the nearest [`Val`]; the innermost node it passes fills in where.
#[derive(Debug)]
pub(crate) struct Error {
    mark: Option<Mark>,
    path: Option<String>,
    message: String,
    hint: Option<String>,
}

impl Error {
    fn at(mut self, mark: Mark, path: &str) -> Self {
        self.mark.get_or_insert(mark);
        if self.path.is_none() {
            self.path = Some(path.to_owned());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error {
            mark: None,
            path: None,
            message: message.to_string(),
            hint: None,
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The deserializer for one node. `path` names it; `own` (for an [`Entity`] named by its id) is the
/// name its own mapping's problems are reported under.
#[derive(Clone)]
struct De<'a> {
    node: &'a Node,
    shaper: &'a Shaper<'a>,
    path: String,
    own: Option<String>,
}

impl<'a> De<'a> {
    fn child(&self, node: &'a Node, path: String) -> De<'a> {
        De {
            node,
            shaper: self.shaper,
            path,
            own: None,
        }
    }

    fn own_path(&self) -> &str {
        self.own.as_deref().unwrap_or(&self.path)
    }

    fn fail(&self, message: String, hint: Option<String>) -> Error {
        Error {
            mark: Some(self.node.mark),
            path: Some(self.path.clone()),
            message,
            hint,
        }
    }

    fn expected(&self, what: &str) -> Error {
        self.fail(format!("expected {what}, found {}", self.node.kind()), None)
    }

    /// This entity named by its `id` in paths (`apps[billing]` rather than `apps[3]`), except for
    /// problems with its own mapping, which keep the position in the list.
    fn named_by_id(&self) -> De<'a> {
        let id = match &self.node.value {
            Value::Map(entries) => {
                entries
                    .iter()
                    .find_map(|(key, value)| match (&key.value, &value.value) {
                        // An id with `${` is refused (ids are shown text): it keeps its index.
                        (Value::Scalar { text: key }, Value::Scalar { text: id })
                            if key == "id" && !id.contains("${") =>
                        {
                            Some(id.clone())
                        }
                        _ => None,
                    })
            }
            _ => None,
        };
        let head = self
            .path
            .strip_suffix(']')
            .and_then(|path| path.rsplit_once('['))
            .map(|(head, _)| head);
        match (id, head) {
            (Some(id), Some(head)) => De {
                path: format!("{head}[{id}]"),
                own: Some(self.path.clone()),
                ..self.clone()
            },
            _ => self.clone(),
        }
    }

    /// The node's text with `${VAR}` substituted, or, for text shown to users, refused.
    fn text(&self, shown: bool) -> Result<String, Error> {
        let Value::Scalar { text } = &self.node.value else {
            return Err(self.expected("a single value"));
        };
        let key = self.path.rsplit('.').next().unwrap_or(&self.path);
        let substituted = env::substitute(text, self.shaper.rules, shown.then_some(key))
            .map_err(|problem| self.fail(problem.message, problem.hint))?;
        // Only under `portico check` without the platform's secrets: said here, where the value is.
        for name in &substituted.unset {
            self.shaper.issues.borrow_mut().push(Issue {
                severity: Severity::Warning,
                mark: self.node.mark,
                path: self.path.clone(),
                message: env::unset_message(name, substituted.unknown),
                hint: Some(env::UNSET_HINT.to_owned()),
                stands_for: None,
            });
        }
        Ok(substituted.text)
    }
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar { text } => visitor.visit_str(text),
            Value::Seq(items) => visitor.visit_seq(Items::new(&self, items)),
            Value::Map(entries) => visitor.visit_map(Entries::new(&self, entries, None)),
        };
        result.map_err(|error: Error| error.at(self.node.mark, &self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text } => visitor
                .visit_str(text)
                .map_err(|error: Error| error.at(self.node.mark, &self.path)),
            _ => Err(self.expected("a single value")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(Items::new(&self, items))
                .map_err(|error: Error| error.at(self.node.mark, &self.path)),
            _ => Err(self.expected("a list")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(Entries::new(&self, entries, None))
                .map_err(|error: Error| error.at(self.node.mark, &self.path)),
            _ => Err(self.expected("a mapping of names")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(Entries::new(&self, entries, Some(fields)))
                .map_err(|error: Error| error.at(self.node.mark, &self.path)),
            _ => Err(Error {
                path: Some(self.own_path().to_owned()),
                ..self.fail(
                    format!("expected a mapping of keys, found {}", self.node.kind()),
                    Some(format!("allowed keys here: {}", fields.join(", "))),
                )
            }),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match name {
            ENV | SHOWN => {
                let text = self.text(name == SHOWN)?;
                visitor
                    .visit_string(text)
                    .map_err(|error: Error| error.at(self.node.mark, &self.path))
            }
            LIST => {
                let result = match &self.node.value {
                    Value::Scalar { .. } => visitor.visit_seq(Items::one(&self)),
                    Value::Seq(items) => visitor.visit_seq(Items::new(&self, items)),
                    _ => return Err(self.expected("a list")),
                };
                result.map_err(|error: Error| error.at(self.node.mark, &self.path))
            }
            OR_TEXT => match &self.node.value {
                // The short form: one text, `${VAR}` substituted like any `Env`.
                Value::Scalar { .. } => {
                    let text = self.text(false)?;
                    visitor
                        .visit_string(text)
                        .map_err(|error: Error| error.at(self.node.mark, &self.path))
                }
                Value::Map(_) => visitor.visit_newtype_struct(self),
                _ => Err(self.expected("a single value or a mapping of keys")),
            },
            TRANSLATED => match &self.node.value {
                // Once: one text, under `Shown`'s rules.
                Value::Scalar { .. } => {
                    let text = self.text(true)?;
                    visitor
                        .visit_string(text)
                        .map_err(|error: Error| error.at(self.node.mark, &self.path))
                }
                // Per language: each text checked as `Shown` by the mapping's own values.
                Value::Map(_) => visitor.visit_newtype_struct(self),
                _ => Err(self.expected("a text, or a mapping of languages to texts")),
            },
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match name {
            VAL | ENTITY => visitor.visit_seq(Caught {
                de: if name == ENTITY {
                    self.named_by_id()
                } else {
                    self.clone()
                },
                step: 0,
            }),
            _ => self.deserialize_seq(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        tuple enum identifier
    }
}

/// The items of a list (or one value standing for a list of one), each named `path[index]`.
struct Items<'a, 'b> {
    de: &'b De<'a>,
    items: std::slice::Iter<'a, Node>,
    index: usize,
    /// A single value read as a list of one keeps its own path.
    single: bool,
}

impl<'a, 'b> Items<'a, 'b> {
    fn new(de: &'b De<'a>, items: &'a [Node]) -> Self {
        Items {
            de,
            items: items.iter(),
            index: 0,
            single: false,
        }
    }

    fn one(de: &'b De<'a>) -> Self {
        Items {
            de,
            items: std::slice::from_ref(de.node).iter(),
            index: 0,
            single: true,
        }
    }
}

impl<'de> SeqAccess<'de> for Items<'_, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let path = if self.single {
            self.de.path.clone()
        } else {
            format!("{}[{}]", self.de.path, self.index)
        };
        self.index += 1;
        seed.deserialize(self.de.child(item, path)).map(Some)
    }
}

/// The entries of a mapping. With `fields` (a struct), keys outside them are reported and skipped.
struct Entries<'a, 'b> {
    de: &'b De<'a>,
    entries: std::slice::Iter<'a, (Node, Node)>,
    fields: Option<&'static [&'static str]>,
    value: Option<(&'a str, &'a Node)>,
}

impl<'a, 'b> Entries<'a, 'b> {
    fn new(
        de: &'b De<'a>,
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        Entries {
            de,
            entries: entries.iter(),
            fields,
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'_, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (key, value) in self.entries.by_ref() {
            let own = self.de.own_path();
            let Value::Scalar { text } = &key.value else {
                let what = if self.fields.is_some() {
                    "keys"
                } else {
                    "names"
                };
                let message = format!("{what} must be plain strings");
                self.de
                    .shaper
                    .issue(key.mark, own.to_owned(), message, None);
                continue;
            };
            if let Some(fields) = self.fields {
                if !fields.contains(&text.as_str()) {
                    self.de.shaper.issues.borrow_mut().push(Issue {
                        severity: Severity::Error,
                        mark: key.mark,
                        path: join(own, text),
                        message: format!("unknown key `{text}`"),
                        hint: Some(unknown_key_hint(text, fields)),
                        stands_for: closest(text, fields).map(|field| (self.de.node.mark, field)),
                    });
                    continue;
                }
            }
            self.value = Some((text, value));
            let key_path = join(&self.de.path, text);
            return seed.deserialize(self.de.child(key, key_path)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value without a key"));
        };
        seed.deserialize(self.de.child(value, join(&self.de.path, key)))
    }
}

/// What a [`Val`] reads: the line, the column, then the value, whose problems are recorded here.
struct Caught<'a> {
    de: De<'a>,
    step: u8,
}

impl<'de> SeqAccess<'de> for Caught<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.step += 1;
        let mark = self.de.node.mark;
        match self.step {
            1 => seed.deserialize(mark.line.into_deserializer()).map(Some),
            2 => seed.deserialize(mark.column.into_deserializer()).map(Some),
            3 => match seed.deserialize(self.de.clone()) {
                Ok(value) => Ok(Some(value)),
                Err(error) => {
                    self.de.shaper.record(error, mark, &self.de.path);
                    Ok(None)
                }
            },
            _ => Ok(None),
        }
    }
}
