//! The query string of a catalog request: parsed strictly (as Express would read it), every `filter`
//! narrowed to the scope, and re-encoded by portico.

use percent_encoding::utf8_percent_encode;

use super::cursor::rescope_cursor;
use super::{MATCH_NOTHING, MAX_QUERY_PARAMS, NAMESPACE_KEY, QUERY_VALUE, Scope};
use crate::backstage::BackstageError;

/// The client's query string with every `filter` narrowed (and, for by-query, the cursor re-scoped),
/// re-encoded by portico.
pub(super) fn scope_query(
    scope: &Scope,
    raw: Option<&str>,
    cursor: bool,
) -> Result<String, BackstageError> {
    let mut filters = Vec::new();
    let mut rest = Vec::new();
    let mut cursors = 0;
    for (name, value) in parse_query(raw.unwrap_or(""))? {
        if name == "filter" {
            filters.push(value);
        } else if cursor && name == "cursor" {
            cursors += 1;
            if cursors > 1 {
                return Err(BackstageError::BadCatalogRequest("more than one cursor"));
            }
            // Backstage ignores an empty cursor (and its validator refuses it).
            let value = if value.is_empty() {
                value
            } else {
                rescope_cursor(scope, &value)?
            };
            rest.push((name, value));
        } else {
            rest.push((name, value));
        }
    }
    // The filters first: should a parser ever stop early, it has read the scope.
    let pairs = scope_filters(scope, &filters)
        .into_iter()
        .map(|filter| ("filter".to_owned(), filter))
        .chain(rest);
    Ok(encode_query(pairs))
}

/// `filter` parameters narrowed to the scope. Backstage OR-s the parameters and AND-s the
/// comma-separated statements inside one, except that statements with the same key merge into one
/// "any of these values" condition. So appending `metadata.namespace=acme` to a client's
/// `metadata.namespace=globex` would widen it to both: each filter's namespace statements are taken
/// out, intersected with the scope (an empty intersection matches nothing), and the result put back.
pub(super) fn scope_filters(scope: &Scope, filters: &[String]) -> Vec<String> {
    let mut scoped: Vec<String> = filters
        .iter()
        .filter_map(|filter| scope_filter(scope, filter))
        .collect();
    if scoped.is_empty() {
        scoped.push(namespace_statements(&scope.namespaces));
    }
    scoped
}

/// One filter narrowed, or `None` for a filter without statements (Backstage ignores those).
fn scope_filter(scope: &Scope, filter: &str) -> Option<String> {
    let statements: Vec<&str> = filter
        .split(',')
        .map(js_trim)
        .filter(|statement| !statement.is_empty())
        .collect();
    if statements.is_empty() {
        return None;
    }
    let mut kept = Vec::new();
    // Namespace conditions by exact key, as Backstage groups them; each group is one condition.
    let mut groups: Vec<(&str, Option<Vec<String>>)> = Vec::new();
    for statement in statements {
        let (key, value) = match statement.split_once('=') {
            Some((key, value)) => (js_trim(key), Some(js_trim(value))),
            None => (statement, None),
        };
        // Backstage lower-cases keys before it looks them up, so `Metadata.Namespace` is the namespace.
        // Any Unicode space around the key counts too, a wider set than JavaScript's `trim`: taking a
        // statement for a namespace condition can only narrow what is forwarded, so the scope does not
        // rest on matching Backstage's idea of a space exactly (the fuzzer found `\u{85}` in between).
        if any_space_trim(key).to_lowercase() != NAMESPACE_KEY {
            kept.push(match value {
                Some(value) => format!("{key}={value}"),
                None => key.to_owned(),
            });
            continue;
        }
        let index = match groups.iter().position(|(seen, _)| *seen == key) {
            Some(index) => index,
            None => {
                groups.push((key, None));
                groups.len() - 1
            }
        };
        // A key without a value only asks that the field exist, which every namespace does.
        if let (Some(value), Some((_, values))) = (value, groups.get_mut(index)) {
            values
                .get_or_insert_with(Vec::new)
                .push(value.to_lowercase());
        }
    }
    let mut allowed = scope.namespaces.clone();
    for values in groups.iter().filter_map(|(_, values)| values.as_ref()) {
        allowed.retain(|namespace| values.contains(namespace));
    }
    if allowed.is_empty() {
        return Some(MATCH_NOTHING.to_owned());
    }
    kept.push(namespace_statements(&allowed));
    Some(kept.join(","))
}

fn namespace_statements(namespaces: &[String]) -> String {
    namespaces
        .iter()
        .map(|namespace| format!("{NAMESPACE_KEY}={namespace}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every Unicode space and U+FEFF off both ends: at least what any JavaScript engine's `trim` removes.
fn any_space_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
}

/// `String.prototype.trim`: Backstage trims keys and values with it, and its set of spaces is not
/// Rust's (U+FEFF is one, U+0085 is not). Trimming less than Backstage would let ` metadata.namespace`
/// pass as another key.
fn js_trim(text: &str) -> &str {
    text.trim_matches(|c: char| {
        matches!(
            c,
            '\u{9}'..='\u{d}'
                | ' '
                | '\u{a0}'
                | '\u{1680}'
                | '\u{2000}'..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
        )
    })
}

/// The query string as (name, value) pairs, decoded the way a form is (`+` is a space). Names with
/// brackets are refused: Express's parser turns `filter[]` or `filter[0]` into `filter` too.
pub(super) fn parse_query(raw: &str) -> Result<Vec<(String, String)>, BackstageError> {
    let mut pairs = Vec::new();
    for part in raw.split('&').filter(|part| !part.is_empty()) {
        if pairs.len() == MAX_QUERY_PARAMS {
            return Err(BackstageError::BadCatalogRequest(
                "too many query parameters",
            ));
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (Some(name), Some(value)) = (form_decode(name), form_decode(value)) else {
            return Err(BackstageError::BadCatalogRequest(
                "a query parameter is not valid percent-encoded UTF-8",
            ));
        };
        if name.contains(['[', ']']) {
            return Err(BackstageError::BadCatalogRequest(
                "query parameter names with brackets are not accepted",
            ));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `+` to space, then strict percent-decoding (every `%` starts an escape) into UTF-8.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 2;
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8(out).ok()
}

pub(super) fn encode_query(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    pairs
        .into_iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(&name, QUERY_VALUE),
                utf8_percent_encode(&value, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
