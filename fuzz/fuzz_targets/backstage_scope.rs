//! Backstage catalog scoping: query, cursor and body rewriting, and the checks on answers.
//!
//! Properties, for a tenant whose scope is `acme` + `common`: every rewritten query string has at least
//! one `filter`, and every `filter` holds namespace statements naming only scoped namespaces (Backstage
//! OR-s filters, so each must be narrowed); every cursor portico forwards, in the query or the body,
//! has a `query` that is exactly `{"$all": [scope, …]}`; a rewritten entity or facet body's `query` is
//! too; an entity or ancestry answer that passes the check is inside the scope. Nothing panics.
#![no_main]

use base64::Engine;
use http::Method;
use libfuzzer_sys::fuzz_target;
use portico::backstage::scope::{BodyRule, Scope, check_entity, filter_ancestry, plan, scope_body};
use serde_json::{Value, json};

const SCOPE: [&str; 2] = ["acme", "common"];

fn predicate() -> Value {
    json!({ "metadata.namespace": { "$in": SCOPE } })
}

/// `{"$all": [scope, …]}` and nothing else.
fn assert_narrowed(query: Option<&Value>) {
    let object = query.and_then(Value::as_object).expect("a query object");
    assert_eq!(object.len(), 1, "{object:?}");
    let all = object["$all"].as_array().expect("$all");
    assert_eq!(all.first(), Some(&predicate()), "{object:?}");
}

fn assert_cursor(encoded: &str) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("portico writes standard base64");
    let cursor: Value = serde_json::from_slice(&bytes).expect("a JSON cursor");
    assert_narrowed(cursor.get("query"));
}

/// Wider than JavaScript's `trim` on purpose: a key that any engine could read as the namespace must be
/// treated as one by portico (it narrows it), so the property does not rest on exact trim parity.
fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// `cursor`: whether the endpoint reads a `cursor` parameter (only by-query does).
fn assert_query_scoped(query: &str, cursor: bool) {
    let mut filters = 0;
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .expect("portico encodes UTF-8")
                .into_owned()
        };
        let (name, value) = (decode(name), decode(value));
        if cursor && name == "cursor" && !value.is_empty() {
            assert_cursor(&value);
        }
        if name != "filter" {
            continue;
        }
        filters += 1;
        let mut namespaces = 0;
        for statement in value.split(',') {
            let (key, value) = statement.split_once('=').unwrap_or((statement, ""));
            if trim(key).to_lowercase() != "metadata.namespace" {
                continue;
            }
            namespaces += 1;
            let value = trim(value).to_lowercase();
            assert!(
                value.is_empty() || SCOPE.contains(&value.as_str()),
                "filter {value:?} widens the scope: {query}"
            );
        }
        assert!(namespaces > 0, "an unscoped filter: {query}");
    }
    assert!(filters > 0, "no filter: {query}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let scope = Scope::new(SCOPE);
    let text = String::from_utf8_lossy(rest);
    match which % 8 {
        0..=3 => {
            let (method, path) = [
                (Method::GET, "/entities"),
                (Method::GET, "/entity-facets"),
                (Method::GET, "/entities/by-query"),
                (Method::POST, "/entities/by-refs"),
            ][usize::from(which % 4)]
            .clone();
            if let Ok(plan) = plan(&scope, &[], &method, path, Some(&text)) {
                let query = plan.query.as_deref().expect("a rewritten query");
                assert_query_scoped(query, path == "/entities/by-query");
            }
        }
        4 | 5 => {
            let rule = if which % 8 == 4 {
                BodyRule::EntityQuery
            } else {
                BodyRule::FacetQuery
            };
            if let Ok(body) = scope_body(&scope, rule, rest) {
                let object: Value = serde_json::from_slice(&body).expect("portico writes JSON");
                match object.get("cursor") {
                    Some(cursor) if rule == BodyRule::EntityQuery => {
                        assert_cursor(cursor.as_str().expect("a string cursor"));
                    }
                    _ => assert_narrowed(object.get("query")),
                }
            }
        }
        6 => {
            if check_entity(&scope, rest).is_ok() {
                let entity: Value = serde_json::from_slice(rest).expect("checked JSON");
                let namespace = entity["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default");
                assert!(
                    SCOPE.contains(&namespace.to_lowercase().as_str()),
                    "{entity}"
                );
            }
        }
        _ => {
            if let Ok(body) = filter_ancestry(&scope, rest) {
                let answer: Value = serde_json::from_slice(&body).expect("portico writes JSON");
                for item in answer["items"].as_array().expect("items") {
                    let namespace = item["entity"]["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("default");
                    assert!(SCOPE.contains(&namespace.to_lowercase().as_str()), "{item}");
                }
            }
        }
    }
});
