//! The config schema for people and editors, generated from the raw structs (`config::raw`) and
//! committed: `docs/portico.schema.json` (JSON Schema, for YAML language servers), the same for one
//! team's app file, `docs/portico-app.schema.json`, and `docs/config-reference.md`. `portico schema`
//! prints the two schemas (compiled in, `config::SCHEMA` and `config::APP_SCHEMA`). The test below regenerates both and fails when the committed files are
//! stale; `PORTICO_BLESS=1 cargo test --lib config::schema` rewrites them.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use super::raw::RawConfig;

fn json_schema() -> Value {
    let schema = schemars::schema_for!(RawConfig);
    schema.as_value().clone()
}

/// The schema of one team's app file (`apps_from`): one app at the root.
fn app_json_schema() -> Value {
    let schema = schemars::schema_for!(super::raw::RawApp);
    schema.as_value().clone()
}

/// The schema as a Markdown reference: one section per mapping, one row per key.
fn markdown(schema: &Value) -> String {
    let mut out = String::from(
        "# portico config reference\n\n\
         Generated from `src/config/raw.rs` by `cargo test --lib config::schema` (set `PORTICO_BLESS=1` \
         to rewrite); do not edit by hand. Editors can validate against `portico.schema.json`.\n\n\
         Every key is optional unless its description says *Required*. *text* may read `${VAR}` from \
         the environment (`$${` is a literal `${`); *literal text* is shown in browsers and never \
         reads it; where it may be *one per language*, write `{ en: Costs, de: Kosten }` (the languages \
         portico speaks: `en`, `de`) and each browser gets its own, or the English one. A list of one \
         may be written as a single value.\n",
    );
    section(&mut out, "portico config", schema);
    if let Some(Value::Object(definitions)) = schema.get("$defs") {
        for (name, definition) in definitions {
            section(&mut out, name, definition);
        }
    }
    out
}

fn section(out: &mut String, name: &str, definition: &Value) {
    let Some(Value::Object(properties)) = definition.get("properties") else {
        return;
    };
    let _ = write!(out, "\n## {name}\n\n");
    if let Some(Value::String(description)) = definition.get("description") {
        let _ = write!(out, "{}\n\n", one_line(description));
    }
    out.push_str("| key | value | meaning |\n|---|---|---|\n");
    for (key, property) in properties {
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .map(one_line)
            .unwrap_or_default();
        let _ = writeln!(out, "| `{key}` | {} | {description} |", kind(property));
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// A short name for what a property holds, with links to mappings.
fn kind(property: &Value) -> String {
    if let Some(Value::String(reference)) = property.get("$ref") {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return match name {
            "text" => "text".to_owned(),
            "literal_text" => "literal text".to_owned(),
            "translated_text" => "literal text, or one per language".to_owned(),
            _ => format!("[{name}](#{name})"),
        };
    }
    if let Some(Value::Array(options)) = property.get("anyOf") {
        // `List<T>`: a single value or a list of them.
        if let [one, Value::Object(many)] = options.as_slice() {
            if many.get("items") == Some(one) {
                return format!("{}, or a list", kind(one));
            }
        }
        let kinds: Vec<String> = options.iter().map(kind).filter(|k| k != "null").collect();
        return kinds.join(" or ");
    }
    if let Some(Value::Array(words)) = property.get("enum") {
        let words: Vec<String> = words
            .iter()
            .map(|w| format!("`{}`", w.as_str().unwrap_or("?")))
            .collect();
        return words.join(", ");
    }
    let types: Vec<&str> = match property.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types == ["null"] {
        return "null".to_owned();
    }
    let types: Vec<&str> = types.into_iter().filter(|name| *name != "null").collect();
    match types.as_slice() {
        ["array"] => format!(
            "list of {}",
            property.get("items").map(kind).unwrap_or_default()
        ),
        ["object"] => match property.get("additionalProperties") {
            Some(value) => format!("names → {}", kind(value)),
            None => "mapping".to_owned(),
        },
        [name] => (*name).to_owned(),
        _ => "text".to_owned(),
    }
}

#[test]
fn schema_files_are_up_to_date() {
    let schema = json_schema();
    let json = format!(
        "{}\n",
        serde_json::to_string_pretty(&schema).expect("a schema is JSON")
    );
    let reference = markdown(&schema);
    let app = format!(
        "{}\n",
        serde_json::to_string_pretty(&app_json_schema()).expect("a schema is JSON")
    );
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let files = [
        (docs.join("portico.schema.json"), json),
        (docs.join("portico-app.schema.json"), app),
        (docs.join("config-reference.md"), reference),
    ];
    let bless = std::env::var_os("PORTICO_BLESS").is_some();
    for (path, generated) in files {
        if bless {
            std::fs::write(&path, &generated).expect("docs/ is writable");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: run `PORTICO_BLESS=1 cargo test --lib config::schema` and commit it",
            path.display()
        );
    }
}
