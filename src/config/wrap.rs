//! The wrapper types the raw structs (`config::raw`) are built from: [`Val`] (a value with its position,
//! or `None` when its problem was reported), [`Entity`] (a `Val` named by its `id` in key paths),
//! [`Env`] and [`Shown`] text, [`FlexBool`], [`List`] (a single value counts as a list of one),
//! [`OrText`] (a short form in one text, or a mapping in full), [`Translated`] (a text once or per
//! language) and [`Named`] (a mapping of author-chosen
//! names). Each talks to `config::de`'s deserializer through a
//! reserved name; with another deserializer they are not meant to work.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

use super::yaml::Mark;

pub(super) const VAL: &str = "$portico::Val";
pub(super) const ENTITY: &str = "$portico::Entity";
pub(super) const ENV: &str = "$portico::Env";
pub(super) const SHOWN: &str = "$portico::Shown";
pub(super) const LIST: &str = "$portico::List";
pub(super) const OR_TEXT: &str = "$portico::OrText";
pub(super) const TRANSLATED: &str = "$portico::Translated";

/// A value with its position. `value` is `None` when the value had a problem, already reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct Val<T> {
    pub mark: Mark,
    pub value: Option<T>,
}

impl<T> Val<T> {
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

/// The state of an optional key: `Some(None)` when absent, `Some(Some(value))` when written and
/// usable, `None` when written but broken (already reported). Rules assemble with `?` only at the end.
pub(crate) fn field<T>(field: &Option<Val<T>>) -> Option<Option<&T>> {
    match field {
        None => Some(None),
        Some(val) => val.get().map(Some),
    }
}

struct ValVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ValVisitor<T> {
    type Value = Val<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positioned value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<T>, A::Error> {
        let line = seq.next_element()?.unwrap_or(0);
        let column = seq.next_element()?.unwrap_or(0);
        let value = seq.next_element()?;
        Ok(Val {
            mark: Mark { line, column },
            value,
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Val<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple_struct(VAL, 3, ValVisitor(PhantomData))
    }
}

/// A [`Val`] for an entity in a list that has an `id` (an app): problems inside it are reported under
/// its id, `apps[billing].access`, which stays right when entries move.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entity<T>(pub Val<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entity<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_tuple_struct(ENTITY, 3, ValVisitor(PhantomData))
            .map(Entity)
    }
}

/// Reads a string through one of this module's reserved newtype names.
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<String, E> {
        Ok(text)
    }
}

/// Text that may read `${VAR}` (secrets, URLs, addresses): substituted here, so no later stage sees `${`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Env(pub String);

impl<'de> Deserialize<'de> for Env {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_newtype_struct(ENV, TextVisitor)
            .map(Env)
    }
}

/// Text that reaches users' browsers (labels, titles, icons, dev users): written literally; `${VAR}`
/// in it is an error even when the variable is set, so no secret reaches a page through config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shown(pub String);

impl<'de> Deserialize<'de> for Shown {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_newtype_struct(SHOWN, TextVisitor)
            .map(Shown)
    }
}

/// Text shown in browsers, written once (`label: Cost insights`) or per language (`label: { en: Cost
/// insights, de: Kostenübersicht }`); each text follows [`Shown`]'s rules. The rules of
/// `compile::values::translated` check the languages.
#[derive(Debug, Clone)]
pub(crate) enum Translated {
    One(Shown),
    PerLanguage(Named<Val<Shown>>),
}

struct TranslatedVisitor;

impl<'de> Visitor<'de> for TranslatedVisitor {
    type Value = Translated;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a text, or a mapping of languages to texts")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Translated, E> {
        Ok(Translated::One(Shown(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Translated, E> {
        Ok(Translated::One(Shown(text)))
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Translated, D::Error> {
        Named::deserialize(deserializer).map(Translated::PerLanguage)
    }
}

impl<'de> Deserialize<'de> for Translated {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(TRANSLATED, TranslatedVisitor)
    }
}

/// A boolean as people write it in YAML: `true`/`false`, also `yes`/`no` and `on`/`off`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FlexBool(pub bool);

impl<'de> Deserialize<'de> for FlexBool {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Env(text) = Env::deserialize(deserializer)?;
        match text.as_str() {
            "true" | "yes" | "on" => Ok(FlexBool(true)),
            "false" | "no" | "off" => Ok(FlexBool(false)),
            other => Err(de::Error::custom(format!("`{other}` is not true or false"))),
        }
    }
}

/// A list; a single value counts as a list of one.
#[derive(Debug, Clone, Default)]
pub(crate) struct List<T>(pub Vec<T>);

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(items))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(LIST, ListVisitor(PhantomData))
    }
}

/// A value written either short, as one text that may read `${VAR}` (`upstream: http://app:3000`), or
/// in full, as the mapping `T` (`upstream: { url: https://app, tls: … }`).
#[derive(Debug, Clone)]
pub(crate) enum OrText<T> {
    Text(Env),
    Full(T),
}

struct OrTextVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OrTextVisitor<T> {
    type Value = OrText<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a single value or a mapping of keys")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<OrText<T>, E> {
        Ok(OrText::Text(Env(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<OrText<T>, E> {
        Ok(OrText::Text(Env(text)))
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<OrText<T>, D::Error> {
        T::deserialize(deserializer).map(OrText::Full)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrText<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(OR_TEXT, OrTextVisitor(PhantomData))
    }
}

/// A mapping whose keys are names the author chooses (tenant ids, role names), in written order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Named<T>(pub Vec<(Val<String>, T)>);

struct NamedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NamedVisitor<T> {
    type Value = Named<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of names")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<T>, A::Error> {
        let mut entries = Vec::new();
        while let Some(name) = map.next_key()? {
            entries.push((name, map.next_value()?));
        }
        Ok(Named(entries))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NamedVisitor(PhantomData))
    }
}

#[cfg(test)]
mod schema_impls {
    //! The wrappers are transparent in the JSON Schema: a `Val<T>` is a `T`.
    use std::borrow::Cow;

    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

    use super::{Entity, Env, FlexBool, List, Named, OrText, Shown, Translated, Val};

    impl<T: JsonSchema> JsonSchema for Val<T> {
        fn schema_name() -> Cow<'static, str> {
            T::schema_name()
        }
        fn schema_id() -> Cow<'static, str> {
            T::schema_id()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            T::json_schema(generator)
        }
        fn inline_schema() -> bool {
            T::inline_schema()
        }
    }

    impl<T: JsonSchema> JsonSchema for Entity<T> {
        fn schema_name() -> Cow<'static, str> {
            T::schema_name()
        }
        fn schema_id() -> Cow<'static, str> {
            T::schema_id()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            T::json_schema(generator)
        }
        fn inline_schema() -> bool {
            T::inline_schema()
        }
    }

    impl JsonSchema for Env {
        fn schema_name() -> Cow<'static, str> {
            "text".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": ["string", "number", "boolean"],
                "description": "Text; `${VAR}` reads an environment variable, `$${` is a literal `${`."
            })
        }
    }

    impl JsonSchema for Shown {
        fn schema_name() -> Cow<'static, str> {
            "literal_text".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": ["string", "number", "boolean"],
                "description": "Text shown in browsers: written literally, never `${VAR}`."
            })
        }
    }

    impl JsonSchema for Translated {
        fn schema_name() -> Cow<'static, str> {
            "translated_text".into()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            let text = generator.subschema_for::<Shown>();
            let languages: Vec<&str> = crate::i18n::Locale::ALL
                .iter()
                .map(|locale| locale.tag())
                .collect();
            json_schema!({
                "description": "Text shown in browsers, once or per language (`en: …`, `de: …`).",
                "anyOf": [
                    text.clone(),
                    {
                        "type": "object",
                        "propertyNames": { "enum": languages },
                        "additionalProperties": text,
                        "minProperties": 1
                    }
                ]
            })
        }
    }

    impl JsonSchema for FlexBool {
        fn schema_name() -> Cow<'static, str> {
            "Boolean".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "anyOf": [
                    { "type": "boolean" },
                    { "enum": ["yes", "no", "on", "off"] }
                ]
            })
        }
        fn inline_schema() -> bool {
            true
        }
    }

    impl<T: JsonSchema> JsonSchema for List<T> {
        fn schema_name() -> Cow<'static, str> {
            format!("list_of_{}", T::schema_name()).into()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            let item = generator.subschema_for::<T>();
            json_schema!({
                "anyOf": [item.clone(), { "type": "array", "items": item }]
            })
        }
        fn inline_schema() -> bool {
            true
        }
    }

    impl<T: JsonSchema> JsonSchema for OrText<T> {
        fn schema_name() -> Cow<'static, str> {
            format!("text_or_{}", T::schema_name()).into()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            let text = generator.subschema_for::<Env>();
            let full = generator.subschema_for::<T>();
            json_schema!({ "anyOf": [text, full] })
        }
        fn inline_schema() -> bool {
            true
        }
    }

    impl<T: JsonSchema> JsonSchema for Named<T> {
        fn schema_name() -> Cow<'static, str> {
            format!("names_to_{}", T::schema_name()).into()
        }
        fn json_schema(generator: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "object",
                "additionalProperties": generator.subschema_for::<T>()
            })
        }
        fn inline_schema() -> bool {
            true
        }
    }
}
