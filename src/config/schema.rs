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

/// The README's YAML examples, as an editor with `yaml-language-server` would check them against the
/// committed schemas: each block must validate, and so must each broken example below be refused, or
/// the schema would not help anyone. A block with a top-level `id` is an app file; one that is only an
/// app's `upstream` is checked inside a minimal app file; one whose first line names a file under
/// `.github/` (a CI workflow) is not portico's; every other block is a main config.
#[test]
fn readme_examples_validate_and_broken_ones_do_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let main = validator(&root.join("docs/portico.schema.json"));
    let app = validator(&root.join("docs/portico-app.schema.json"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md is readable");
    let blocks = yaml_blocks(&readme);
    assert!(
        blocks.len() >= 4,
        "the README's YAML examples were not found"
    );
    for (line, text) in &blocks {
        if text.starts_with("# .github/") {
            continue;
        }
        let document = yaml_to_json(text);
        let (schema, kind, instance) = if document.get("id").is_some() {
            (&app, "an app file", document)
        } else if document
            .as_object()
            .is_some_and(|map| map.len() == 1 && map.contains_key("upstream"))
        {
            let mut minimal =
                serde_json::json!({ "id": "example", "access": { "roles": ["developer"] } });
            minimal["upstream"] = document["upstream"].clone();
            (&app, "an app file's upstream", minimal)
        } else {
            (&main, "a main config", document)
        };
        let problems: Vec<String> = schema
            .iter_errors(&instance)
            .map(|error| {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() {
                    "the top level".to_owned()
                } else {
                    at
                };
                format!("{error}, at {at}")
            })
            .collect();
        assert!(
            problems.is_empty(),
            "README.md line {line}: the example ({kind}) does not validate against its schema:\n  {}",
            problems.join("\n  ")
        );
    }

    let broken_apps = [
        ("a misspelt key", "id: x\nacess: { roles: [developer] }\n"),
        ("a list where one text is wanted", "id: x\nowner: [a, b]\n"),
        (
            "an unknown language",
            "id: x\nlabel: { en: Costs, fr: Coûts }\n",
        ),
        (
            "a rule that is not a list",
            "id: x\nrules: { path: /admin/** }\n",
        ),
        ("a node without its mapping", "id: x\nnodes: [reports]\n"),
        (
            "cookies mode that does not exist",
            "id: x\ncookies: share\n",
        ),
    ];
    for (what, text) in broken_apps {
        assert!(
            !app.is_valid(&yaml_to_json(text)),
            "the app schema accepts {what}:\n{text}"
        );
    }
    let broken_configs = [
        (
            "a misspelt top-level key",
            "tenant:\n  acme: { hosts: [a.example] }\n",
        ),
        (
            "hosts as a mapping",
            "tenants:\n  acme: { hosts: { a: b } }\n",
        ),
        (
            "a session store that does not exist",
            "sessions: { store: postgres }\n",
        ),
        (
            "a key that is not a tenant's",
            "tenants:\n  acme: { hosts: [a.example], upstream: http://x }\n",
        ),
    ];
    for (what, text) in broken_configs {
        assert!(
            !main.is_valid(&yaml_to_json(text)),
            "the config schema accepts {what}:\n{text}"
        );
    }
}

fn validator(path: &Path) -> jsonschema::Validator {
    let text = std::fs::read_to_string(path).expect("the committed schema is readable");
    let schema: Value = serde_json::from_str(&text).expect("the committed schema is JSON");
    jsonschema::validator_for(&schema).expect("the committed schema is a valid JSON Schema")
}

/// Each fenced ```yaml block of a Markdown text, with the line its text starts on.
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            None if line.trim_start().starts_with("```yaml") => {
                open = Some((index + 2, String::new()))
            }
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(open.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// A YAML document as JSON with YAML's own scalar types (what a YAML language server validates),
/// unlike `config::yaml`, which keeps scalars as text for the loader to read.
fn yaml_to_json(text: &str) -> Value {
    fn convert(yaml: &yaml_rust2::Yaml) -> Value {
        use yaml_rust2::Yaml;
        match yaml {
            Yaml::Real(text) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            Yaml::Integer(number) => Value::from(*number),
            Yaml::String(text) => Value::String(text.clone()),
            Yaml::Boolean(flag) => Value::Bool(*flag),
            Yaml::Array(items) => Value::Array(items.iter().map(convert).collect()),
            Yaml::Hash(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| {
                        let key = match key {
                            Yaml::String(text) => text.clone(),
                            other => format!("{other:?}"),
                        };
                        (key, convert(value))
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    let documents = yaml_rust2::YamlLoader::load_from_str(text).expect("the example is YAML");
    documents.first().map_or(Value::Null, convert)
}
