//! Narrowing Backstage catalog requests to the tenant's namespaces (`backstage.namespaces` plus
//! `backstage.shared_namespaces`), for tenants that share one Backstage whose tokens read everything.
//!
//! Each catalog request is classified by method and path (case-insensitively and with an optional
//! trailing slash, as Backstage's Express router matches) and then either rewritten (the `filter` query
//! parameters, a by-query cursor, the JSON `query` of a request body), checked before it is sent (an
//! entity ref's namespace), checked in its answer (by-uid, ancestry: the only answers buffered, with a
//! size cap), or refused with 403 unless an `allow_unscoped` glob lets it through. Anything this module
//! does not know is refused: default deny. What portico forwards is always re-encoded by portico, so
//! Backstage parses exactly what was checked here, never the client's own spelling of it.
//!
//! This module must not decide plugin access (`backstage::mod` does), must not touch credentials, and
//! is pure apart from reading a response body: the rules are unit-tested below and against a real
//! Backstage in tests/api/backstage.rs. It assumes the catalog plugin of Backstage 1.55
//! (`@backstage/plugin-catalog-backend` 4.0.0); docs/backstage-scoping.md lists every endpoint.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::BodyExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::BackstageError;
use crate::config::BackstageSettings;
use crate::rbac::PathGlob;

/// The search key Backstage stores an entity's namespace under (keys are compared lower-cased).
const NAMESPACE_KEY: &str = "metadata.namespace";
/// A filter statement that matches no entity: no namespace is the empty string.
const MATCH_NOTHING: &str = "metadata.namespace=";
/// Backstage's namespace for entities that name none.
const DEFAULT_NAMESPACE: &str = "default";
/// Express's query parser reads only the first 1000 parameters; refusing long queries means portico and
/// Backstage always look at the same ones.
const MAX_QUERY_PARAMS: usize = 100;
/// The largest request body portico rewrites (entity and facet queries are small).
pub const MAX_REWRITTEN_BODY: usize = 1024 * 1024;
/// The largest answer portico buffers to check (one entity, or one entity's ancestry).
pub const MAX_CHECKED_ANSWER: usize = 8 * 1024 * 1024;

/// What `encodeURIComponent` leaves alone; everything else portico sends percent-encoded, so no
/// parser between portico and the catalog can read a parameter differently.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The namespaces a tenant may read in the catalog: its own, then the shared ones, lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    namespaces: Vec<String>,
}

impl Scope {
    /// The tenant's scope, or `None` when its catalog is not scoped (no `namespaces`).
    pub fn of(settings: &BackstageSettings) -> Option<Scope> {
        if !settings.scoped() {
            return None;
        }
        Some(Scope::new(
            settings
                .namespaces
                .iter()
                .chain(&settings.shared_namespaces)
                .map(String::as_str),
        ))
    }

    pub fn new<'a>(namespaces: impl IntoIterator<Item = &'a str>) -> Scope {
        let mut unique: Vec<String> = Vec::new();
        for namespace in namespaces {
            let namespace = namespace.to_lowercase();
            if !unique.contains(&namespace) {
                unique.push(namespace);
            }
        }
        Scope { namespaces: unique }
    }

    /// Whether `namespace` is readable; Backstage lower-cases namespaces before it compares them.
    pub fn contains(&self, namespace: &str) -> bool {
        let namespace = namespace.to_lowercase();
        self.namespaces.contains(&namespace)
    }

    /// The filter predicate (Backstage's JSON query language) that holds exactly for scoped entities.
    fn predicate(&self) -> Value {
        json!({ NAMESPACE_KEY: { "$in": self.namespaces } })
    }

    /// `query` narrowed to the scope. Portico's own form, `{"$all": [scope, …]}`, is recognised and kept
    /// as it is, so a cursor that goes round page after page does not grow.
    fn narrow(&self, query: Option<Value>) -> Value {
        let scope = self.predicate();
        match query {
            None | Some(Value::Null) => json!({ "$all": [scope] }),
            Some(query) if is_narrowed(&query, &scope) => query,
            Some(query) => json!({ "$all": [scope, query] }),
        }
    }
}

/// `{"$all": [scope, …]}` and nothing else in the object: Backstage reads only `$all` then, and `$all`
/// holds only where every member does.
fn is_narrowed(query: &Value, scope: &Value) -> bool {
    query.as_object().is_some_and(|object| {
        object.len() == 1
            && object
                .get("$all")
                .and_then(Value::as_array)
                .and_then(|all| all.first())
                == Some(scope)
    })
}

/// What to do with one catalog request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The query string to send instead of the client's (`Some("")`: none); `None` keeps the client's.
    pub query: Option<String>,
    pub body: BodyRule,
    /// Read the entity with GET first and go on only if it is in scope (by-uid DELETE).
    pub check_first: bool,
    pub answer: AnswerRule,
}

impl Plan {
    pub fn pass() -> Plan {
        Plan {
            query: None,
            body: BodyRule::Keep,
            check_first: false,
            answer: AnswerRule::Stream,
        }
    }

    fn query(query: String) -> Plan {
        Plan {
            query: Some(query),
            ..Plan::pass()
        }
    }

    fn body(body: BodyRule) -> Plan {
        Plan {
            body,
            ..Plan::pass()
        }
    }
}

/// How the request body is rewritten before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRule {
    /// Streamed as the client sent it.
    Keep,
    /// `POST /entities/by-query`: `query` narrowed, or `cursor` re-scoped.
    EntityQuery,
    /// `POST /entity-facets`: `query` narrowed.
    FacetQuery,
    /// `POST /refresh`: `entityRef` must be in scope; `authorizationToken` is dropped.
    Refresh,
}

/// How Backstage's answer is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerRule {
    /// Streamed as it comes.
    Stream,
    /// One entity: passed on only if it is in scope, else 404.
    Entity,
    /// An entity's ancestry: ancestors outside the scope are left out.
    Ancestry,
}

/// The catalog routes of plugin-catalog-backend 4.0.0 that portico can scope.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint<'a> {
    Entities,
    ByQuery,
    ByRefs,
    ByUid,
    ByName { namespace: &'a str },
    Ancestry { namespace: &'a str },
    Facets,
    Refresh,
    LocationByEntity { namespace: &'a str },
    Other,
}

/// `path` is decoded and relative to `/api/catalog`. Express matches these routes case-insensitively
/// and with an optional trailing slash, so this does too: a spelling that reaches a route in Backstage
/// must reach the same rule here.
fn endpoint(path: &str) -> Endpoint<'_> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is = |index: usize, literal: &str| {
        segments
            .get(index)
            .is_some_and(|segment| segment.eq_ignore_ascii_case(literal))
    };
    match segments.len() {
        1 if is(0, "entities") => Endpoint::Entities,
        1 if is(0, "entity-facets") => Endpoint::Facets,
        1 if is(0, "refresh") => Endpoint::Refresh,
        2 if is(0, "entities") && is(1, "by-query") => Endpoint::ByQuery,
        2 if is(0, "entities") && is(1, "by-refs") => Endpoint::ByRefs,
        3 if is(0, "entities") && is(1, "by-uid") => Endpoint::ByUid,
        5 if is(0, "entities") && is(1, "by-name") => Endpoint::ByName {
            namespace: segments[3],
        },
        6 if is(0, "entities") && is(1, "by-name") && is(5, "ancestry") => Endpoint::Ancestry {
            namespace: segments[3],
        },
        5 if is(0, "locations") && is(1, "by-entity") => Endpoint::LocationByEntity {
            namespace: segments[3],
        },
        _ => Endpoint::Other,
    }
}

/// Decides how a catalog request is scoped. `path` is the decoded path below `/api/catalog` and
/// `query` the client's raw query string.
pub fn plan(
    scope: &Scope,
    allow_unscoped: &[PathGlob],
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<Plan, BackstageError> {
    // Express answers HEAD with the GET route.
    let read = *method == Method::GET || *method == Method::HEAD;
    let require = |namespace: &str| {
        if scope.contains(namespace) {
            Ok(())
        } else {
            Err(BackstageError::EntityNotFound)
        }
    };
    match endpoint(path) {
        Endpoint::Entities | Endpoint::Facets if read => {
            Ok(Plan::query(scope_query(scope, query, false)?))
        }
        Endpoint::ByQuery if read => Ok(Plan::query(scope_query(scope, query, true)?)),
        Endpoint::ByQuery if *method == Method::POST => Ok(Plan::body(BodyRule::EntityQuery)),
        Endpoint::Facets if *method == Method::POST => Ok(Plan::body(BodyRule::FacetQuery)),
        // The filter parameter and the body's `query` are AND-ed; refs outside it come back as null.
        Endpoint::ByRefs if *method == Method::POST => {
            Ok(Plan::query(scope_query(scope, query, false)?))
        }
        Endpoint::Refresh if *method == Method::POST => Ok(Plan::body(BodyRule::Refresh)),
        // The route reads no parameters; dropping them keeps `fields` from hiding the namespace.
        Endpoint::ByUid if *method == Method::GET => Ok(Plan {
            query: Some(String::new()),
            answer: AnswerRule::Entity,
            ..Plan::pass()
        }),
        Endpoint::ByUid if *method == Method::DELETE => Ok(Plan {
            query: Some(String::new()),
            check_first: true,
            ..Plan::pass()
        }),
        Endpoint::ByName { namespace } | Endpoint::LocationByEntity { namespace } if read => {
            require(namespace).map(|()| Plan::pass())
        }
        Endpoint::Ancestry { namespace } if read => {
            require(namespace)?;
            Ok(Plan {
                query: Some(String::new()),
                answer: if *method == Method::GET {
                    AnswerRule::Ancestry
                } else {
                    AnswerRule::Stream
                },
                ..Plan::pass()
            })
        }
        // Locations, analyze-location, validate-entity, the OpenAPI document, the actions registry
        // (`/.backstage/actions/…`), other methods and routes of newer versions: not narrowable.
        _ if allow_unscoped.iter().any(|glob| glob.matches(path)) => Ok(Plan::pass()),
        _ => Err(BackstageError::CatalogUnscoped(path.to_owned())),
    }
}

/// The client's query string with every `filter` narrowed (and, for by-query, the cursor re-scoped),
/// re-encoded by portico.
fn scope_query(scope: &Scope, raw: Option<&str>, cursor: bool) -> Result<String, BackstageError> {
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
fn scope_filters(scope: &Scope, filters: &[String]) -> Vec<String> {
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

/// A by-query cursor re-scoped. Backstage's cursor is base64 JSON that carries the whole query
/// (`query`, a filter predicate, and `filter`, the older form, both applied), so a client could write
/// its own. Portico narrows `query` in every cursor it forwards, its own included (those it
/// recognises and keeps), and re-encodes the result.
fn rescope_cursor(scope: &Scope, encoded: &str) -> Result<String, BackstageError> {
    const NOT_A_CURSOR: BackstageError = BackstageError::BadCatalogRequest("not a catalog cursor");
    // Node decodes both base64 alphabets, with or without padding.
    let standard: String = encoded
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(standard)
        .map_err(|_| NOT_A_CURSOR)?;
    let Ok(Value::Object(mut cursor)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(NOT_A_CURSOR);
    };
    let query = cursor.remove("query");
    cursor.insert("query".into(), scope.narrow(query));
    let json = serde_json::to_vec(&Value::Object(cursor)).map_err(|_| NOT_A_CURSOR)?;
    Ok(STANDARD.encode(json))
}

/// The query string as (name, value) pairs, decoded the way a form is (`+` is a space). Names with
/// brackets are refused: Express's parser turns `filter[]` or `filter[0]` into `filter` too.
fn parse_query(raw: &str) -> Result<Vec<(String, String)>, BackstageError> {
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

fn encode_query(pairs: impl IntoIterator<Item = (String, String)>) -> String {
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

/// The request body rewritten by `rule` (never `Keep`). An empty body counts as `{}`, as Backstage
/// reads it: without portico's `query` that would be every entity.
pub fn scope_body(scope: &Scope, rule: BodyRule, body: &[u8]) -> Result<Vec<u8>, BackstageError> {
    let mut object = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => object,
            _ => {
                return Err(BackstageError::BadCatalogRequest(
                    "the body must be a JSON object",
                ));
            }
        }
    };
    match rule {
        BodyRule::Keep => {}
        // With a cursor Backstage reads only the cursor; without one, only `query` selects.
        BodyRule::EntityQuery if object.contains_key("cursor") => {
            let Some(Value::String(cursor)) = object.get("cursor") else {
                return Err(BackstageError::BadCatalogRequest(
                    "the cursor must be a string",
                ));
            };
            if cursor.is_empty() {
                return Err(BackstageError::BadCatalogRequest(
                    "the cursor must not be empty",
                ));
            }
            let rescoped = rescope_cursor(scope, cursor)?;
            object.insert("cursor".into(), Value::String(rescoped));
        }
        BodyRule::EntityQuery | BodyRule::FacetQuery => {
            let query = object.remove("query");
            object.insert("query".into(), scope.narrow(query));
        }
        BodyRule::Refresh => {
            let Some(Value::String(entity_ref)) = object.get("entityRef") else {
                return Err(BackstageError::BadCatalogRequest(
                    "`entityRef` must be a string",
                ));
            };
            if !ref_namespace(entity_ref).is_some_and(|namespace| scope.contains(namespace)) {
                return Err(BackstageError::EntityNotFound);
            }
            // Backstage would act with this token instead of portico's credential for the user.
            object.remove("authorizationToken");
        }
    }
    serde_json::to_vec(&Value::Object(object))
        .map_err(|_| BackstageError::BadCatalogRequest("the body cannot be re-encoded"))
}

/// The namespace of a full entity ref `kind:namespace/name`, as the catalog stores refs. Backstage
/// looks a refresh's ref up as written, so a ref without both parts names no stored entity.
fn ref_namespace(entity_ref: &str) -> Option<&str> {
    let (_, rest) = entity_ref.split_once(':')?;
    let (namespace, name) = rest.split_once('/')?;
    (!namespace.is_empty() && !name.is_empty()).then_some(namespace)
}

/// An entity's namespace; Backstage's default when it names none.
fn entity_namespace(entity: &Value) -> Option<&str> {
    match entity.get("metadata")?.get("namespace") {
        None | Some(Value::Null) => Some(DEFAULT_NAMESPACE),
        Some(namespace) => namespace.as_str(),
    }
}

/// One entity's JSON: in scope or not.
pub fn check_entity(scope: &Scope, body: &[u8]) -> Result<(), BackstageError> {
    let entity: Value = serde_json::from_slice(body)
        .map_err(|error| BackstageError::UnexpectedAnswer(format!("entity: {error}")))?;
    match entity_namespace(&entity) {
        Some(namespace) if scope.contains(namespace) => Ok(()),
        _ => Err(BackstageError::EntityNotFound),
    }
}

/// An ancestry answer (`{rootEntityRef, items: [{entity, parentEntityRefs}]}`) without the ancestors
/// outside the scope (usually the `default` namespace's generated Location entities) or refs to them.
pub fn filter_ancestry(scope: &Scope, body: &[u8]) -> Result<Vec<u8>, BackstageError> {
    let unexpected = |what: &str| BackstageError::UnexpectedAnswer(format!("ancestry: {what}"));
    let mut answer: Value =
        serde_json::from_slice(body).map_err(|error| unexpected(&error.to_string()))?;
    let items = answer
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| unexpected("no items"))?;
    items.retain(|item| {
        item.get("entity")
            .and_then(entity_namespace)
            .is_some_and(|namespace| scope.contains(namespace))
    });
    for item in items.iter_mut() {
        if let Some(parents) = item
            .get_mut("parentEntityRefs")
            .and_then(Value::as_array_mut)
        {
            parents.retain(|parent| {
                parent
                    .as_str()
                    .and_then(ref_namespace)
                    .is_some_and(|namespace| scope.contains(namespace))
            });
        }
    }
    serde_json::to_vec(&answer).map_err(|error| unexpected(&error.to_string()))
}

/// Reads a whole answer (at most [`MAX_CHECKED_ANSWER`]) so it can be checked. Portico asked for it
/// uncompressed; a compressed one cannot be read and is refused.
pub async fn read_answer(
    response: Response,
) -> Result<(axum::http::response::Parts, Bytes), BackstageError> {
    let (mut parts, body) = response.into_parts();
    if parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|encoding| encoding != "identity")
    {
        return Err(BackstageError::UnexpectedAnswer(
            "a compressed answer".into(),
        ));
    }
    let bytes = http_body_util::Limited::new(body, MAX_CHECKED_ANSWER)
        .collect()
        .await
        .map_err(|error| BackstageError::UnexpectedAnswer(format!("reading it: {error}")))?
        .to_bytes();
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.remove(header::CONTENT_ENCODING);
    Ok((parts, bytes))
}

/// A response from checked or rewritten answer bytes.
pub fn answer(mut parts: axum::http::response::Parts, body: Vec<u8>) -> Response {
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Response::from_parts(parts, Body::from(body))
}

/// An entity answer (by-uid) passed on only when in scope. Backstage's own 404 becomes portico's, so
/// the answer does not tell a uid of another tenant from one that does not exist.
pub async fn checked_entity(scope: &Scope, response: Response) -> Result<Response, BackstageError> {
    let (parts, body) = read_answer(response).await?;
    match parts.status {
        StatusCode::OK => check_entity(scope, &body).map(|()| answer(parts, body.to_vec())),
        StatusCode::NOT_FOUND => Err(BackstageError::EntityNotFound),
        _ => Ok(answer(parts, body.to_vec())),
    }
}

/// An ancestry answer with what is outside the scope left out.
pub async fn checked_ancestry(
    scope: &Scope,
    response: Response,
) -> Result<Response, BackstageError> {
    let (parts, body) = read_answer(response).await?;
    if parts.status != StatusCode::OK {
        return Ok(answer(parts, body.to_vec()));
    }
    let filtered = filter_ancestry(scope, &body)?;
    Ok(answer(parts, filtered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Scope {
        Scope::new(["acme", "common"])
    }

    fn filters(query: &str) -> Vec<String> {
        parse_query(query)
            .unwrap()
            .into_iter()
            .filter(|(name, _)| name == "filter")
            .map(|(_, value)| value)
            .collect()
    }

    fn decode_cursor(encoded: &str) -> Value {
        serde_json::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap()
    }

    fn encode_cursor(cursor: &Value) -> String {
        STANDARD.encode(cursor.to_string())
    }

    fn get(path: &str, query: Option<&str>) -> Result<Plan, BackstageError> {
        plan(&acme(), &[], &Method::GET, path, query)
    }

    #[test]
    fn no_filter_gets_the_scope() {
        let plan = get("/entities", Some("fields=metadata.name")).unwrap();
        assert_eq!(
            plan.query.as_deref(),
            Some(
                "filter=metadata.namespace%3Dacme%2Cmetadata.namespace%3Dcommon&fields=metadata.name"
            )
        );
        assert_eq!(plan.answer, AnswerRule::Stream);
    }

    #[test]
    fn each_filter_is_narrowed_and_kept_in_order() {
        let plan = get(
            "/entities",
            Some("filter=kind=component&filter=kind=group,spec.type=team&limit=2"),
        )
        .unwrap();
        let query = plan.query.unwrap();
        assert_eq!(
            filters(&query),
            [
                "kind=component,metadata.namespace=acme,metadata.namespace=common",
                "kind=group,spec.type=team,metadata.namespace=acme,metadata.namespace=common",
            ]
        );
        assert!(query.ends_with("&limit=2"), "{query}");
    }

    #[test]
    fn a_filter_cannot_widen_the_namespaces_by_merging_with_the_scope() {
        // Same key: Backstage would merge `globex` into portico's own statement.
        let scope = acme();
        assert_eq!(
            scope_filters(&scope, &["kind=component,metadata.namespace=globex".into()]),
            [MATCH_NOTHING]
        );
        // Other spellings of the key, padded with what JavaScript's trim removes.
        for key in [
            "Metadata.Namespace",
            " metadata.namespace ",
            "\u{feff}metadata.namespace",
            "METADATA.NAMESPACE\u{3000}",
        ] {
            let filter = format!("{key}=globex,kind=component");
            assert_eq!(scope_filters(&scope, &[filter]), [MATCH_NOTHING], "{key:?}");
        }
        // Asking for a namespace in scope narrows to it alone, case-insensitively.
        assert_eq!(
            scope_filters(&scope, &["metadata.namespace=ACME, kind=api".into()]),
            ["kind=api,metadata.namespace=acme"]
        );
        // Several values of one key are "any of"; different keys are "all of".
        assert_eq!(
            scope_filters(
                &scope,
                &["metadata.namespace=globex,metadata.namespace=common".into()]
            ),
            ["metadata.namespace=common"]
        );
        assert_eq!(
            scope_filters(
                &scope,
                &["metadata.namespace=acme,Metadata.Namespace=common".into()]
            ),
            [MATCH_NOTHING]
        );
        // A key alone (exists) does not restrict the namespace.
        assert_eq!(
            scope_filters(&scope, &["metadata.namespace,kind=api".into()]),
            ["kind=api,metadata.namespace=acme,metadata.namespace=common"]
        );
        // `\u{85}` is not a JavaScript space, but it is a Unicode one: portico takes the statement for a
        // namespace condition anyway, which can only narrow (found by fuzz/backstage_scope).
        assert_eq!(
            scope_filters(&scope, &["\u{85}metadata.namespace=globex".into()]),
            [MATCH_NOTHING]
        );
        assert_eq!(
            scope_filters(&scope, &["\u{85} metadata.namespace=acme,kind=api".into()]),
            ["kind=api,metadata.namespace=acme"]
        );
    }

    #[test]
    fn empty_filters_are_ignored_as_backstage_ignores_them() {
        let scope = acme();
        assert_eq!(
            scope_filters(&scope, &[" , ".into(), String::new()]),
            ["metadata.namespace=acme,metadata.namespace=common"]
        );
        assert_eq!(
            scope_filters(&scope, &[" ,".into(), "kind=api".into()]),
            ["kind=api,metadata.namespace=acme,metadata.namespace=common"]
        );
        // Values keep their `=`.
        assert_eq!(
            scope_filters(&scope, &["metadata.annotations.x=a=b".into()]),
            ["metadata.annotations.x=a=b,metadata.namespace=acme,metadata.namespace=common"]
        );
    }

    #[test]
    fn queries_are_parsed_strictly_and_re_encoded() {
        assert_eq!(
            parse_query("filter=kind%3Dapi+x&&fields=a,b&flag").unwrap(),
            [
                ("filter".to_owned(), "kind=api x".to_owned()),
                ("fields".to_owned(), "a,b".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        for bad in [
            "filter[]=metadata.namespace=globex",
            "filter%5B0%5D=x",
            "filter=%zz",
            "filter=%e9",
            "filter=%4",
        ] {
            assert!(
                matches!(parse_query(bad), Err(BackstageError::BadCatalogRequest(_))),
                "{bad}"
            );
        }
        let many = vec!["a=1"; MAX_QUERY_PARAMS + 1].join("&");
        assert!(parse_query(&many).is_err());
        assert_eq!(
            encode_query([("a b".to_owned(), "x=y,z/é~".to_owned())]),
            "a%20b=x%3Dy%2Cz%2F%C3%A9~"
        );
    }

    #[test]
    fn a_cursor_gets_the_scope_whatever_it_carried() {
        let scope = acme();
        let forged = json!({
            "orderFields": [], "isPrevious": false, "query": { "kind": "component" },
            "orderFieldValues": ["x"], "totalItems": 99,
        });
        let rescoped = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&forged)).unwrap());
        assert_eq!(
            rescoped["query"],
            json!({ "$all": [scope.predicate(), { "kind": "component" }] })
        );
        assert_eq!(rescoped["orderFieldValues"], json!(["x"]));
        // No query at all: the scope alone.
        let bare = json!({ "orderFields": [], "isPrevious": false });
        let rescoped = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&bare)).unwrap());
        assert_eq!(rescoped["query"], json!({ "$all": [scope.predicate()] }));
        // A cursor portico already scoped is kept as it is, so paging does not grow it.
        let again = rescope_cursor(&scope, &encode_cursor(&rescoped)).unwrap();
        assert_eq!(decode_cursor(&again), rescoped);
        // The scope must be the first member of a lone `$all`; anything else is wrapped again.
        for sneaky in [
            json!({ "$all": [{ "kind": "x" }, scope.predicate()] }),
            json!({ "$all": [scope.predicate()], "$any": [] }),
            json!({ "$any": [scope.predicate(), { "metadata.namespace": "globex" }] }),
        ] {
            let cursor = json!({ "orderFields": [], "isPrevious": false, "query": sneaky });
            let out = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&cursor)).unwrap());
            assert_eq!(out["query"], json!({ "$all": [scope.predicate(), sneaky] }));
        }
        // URL-safe base64 without padding decodes too.
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(rescope_cursor(&scope, &url_safe).is_ok());
        for bad in ["not base64!", "bnVsbA==", "WzFd"] {
            assert!(rescope_cursor(&scope, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn by_query_get_rescopes_its_cursor() {
        let cursor = encode_cursor(&json!({ "orderFields": [], "isPrevious": false }));
        let query = format!(
            "cursor={}&limit=1",
            utf8_percent_encode(&cursor, QUERY_VALUE)
        );
        let plan = get("/entities/by-query", Some(&query)).unwrap();
        let pairs = parse_query(plan.query.as_deref().unwrap()).unwrap();
        let sent = &pairs.iter().find(|(name, _)| name == "cursor").unwrap().1;
        assert_eq!(
            decode_cursor(sent)["query"],
            json!({ "$all": [acme().predicate()] })
        );
        let twice = format!("{query}&{query}");
        assert!(get("/entities/by-query", Some(&twice)).is_err());
    }

    #[test]
    fn bodies_get_the_scope() {
        let scope = acme();
        let body = |rule, text: &str| -> Value {
            serde_json::from_slice(&scope_body(&scope, rule, text.as_bytes()).unwrap()).unwrap()
        };
        let query = body(
            BodyRule::EntityQuery,
            r#"{"query":{"kind":"api"},"limit":2}"#,
        );
        assert_eq!(
            query,
            json!({ "query": { "$all": [scope.predicate(), { "kind": "api" }] }, "limit": 2 })
        );
        assert_eq!(
            body(BodyRule::EntityQuery, ""),
            json!({ "query": { "$all": [scope.predicate()] } })
        );
        assert_eq!(
            body(BodyRule::FacetQuery, r#"{"facets":["kind"],"query":null}"#),
            json!({ "facets": ["kind"], "query": { "$all": [scope.predicate()] } })
        );
        let forged = encode_cursor(&json!({ "orderFields": [], "isPrevious": false }));
        let with_cursor = body(
            BodyRule::EntityQuery,
            &json!({ "cursor": forged, "limit": 1 }).to_string(),
        );
        assert_eq!(
            decode_cursor(with_cursor["cursor"].as_str().unwrap())["query"],
            json!({ "$all": [scope.predicate()] })
        );
        for bad in [r#"{"cursor":""}"#, r#"{"cursor":5}"#, "[1]", "query=x"] {
            assert!(
                scope_body(&scope, BodyRule::EntityQuery, bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn refresh_is_limited_to_refs_in_scope() {
        let scope = acme();
        let refresh = |text: &str| scope_body(&scope, BodyRule::Refresh, text.as_bytes());
        let sent: Value = serde_json::from_slice(
            &refresh(r#"{"entityRef":"component:acme/a","authorizationToken":"t"}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(sent, json!({ "entityRef": "component:acme/a" }));
        for outside in [
            r#"{"entityRef":"component:globex/a"}"#,
            r#"{"entityRef":"component:a"}"#,
            r#"{"entityRef":"acme/a"}"#,
        ] {
            assert!(
                matches!(refresh(outside), Err(BackstageError::EntityNotFound)),
                "{outside}"
            );
        }
        assert!(matches!(
            refresh(r#"{"entityRef":["component:acme/a"]}"#),
            Err(BackstageError::BadCatalogRequest(_))
        ));
    }

    #[test]
    fn routes_are_matched_as_express_matches_them() {
        assert_eq!(endpoint("/entities/"), Endpoint::Entities);
        assert_eq!(endpoint("/ENTITIES/By-Query"), Endpoint::ByQuery);
        assert_eq!(
            endpoint("/entities/by-name/component/globex/x/"),
            Endpoint::ByName {
                namespace: "globex"
            }
        );
        assert_eq!(
            endpoint("/Entities/BY-NAME/component/Globex/x/Ancestry"),
            Endpoint::Ancestry {
                namespace: "Globex"
            }
        );
        assert_eq!(endpoint("/entities/by-name/component/x"), Endpoint::Other);
        assert_eq!(
            endpoint("/entities/by-name/component/acme/x/other"),
            Endpoint::Other
        );
        assert_eq!(endpoint("/locations"), Endpoint::Other);
        assert_eq!(endpoint("/"), Endpoint::Other);
    }

    #[test]
    fn plans_by_method_and_endpoint() {
        let scope = acme();
        let plan_of = |method: Method, path: &str| plan(&scope, &[], &method, path, None);
        assert!(matches!(
            plan_of(Method::GET, "/entities/by-name/component/globex/x"),
            Err(BackstageError::EntityNotFound)
        ));
        assert_eq!(
            plan_of(Method::HEAD, "/entities/by-name/component/ACME/x").unwrap(),
            Plan::pass()
        );
        assert!(matches!(
            plan_of(Method::GET, "/locations/by-entity/component/globex/x"),
            Err(BackstageError::EntityNotFound)
        ));
        assert_eq!(
            plan_of(Method::GET, "/entities/by-uid/u1").unwrap().answer,
            AnswerRule::Entity
        );
        assert!(
            plan_of(Method::DELETE, "/entities/by-uid/u1")
                .unwrap()
                .check_first
        );
        assert_eq!(
            plan_of(Method::GET, "/entities/by-name/component/acme/x/ancestry")
                .unwrap()
                .answer,
            AnswerRule::Ancestry
        );
        assert_eq!(
            plan_of(Method::POST, "/refresh").unwrap().body,
            BodyRule::Refresh
        );
        for (method, path) in [
            (Method::GET, "/locations"),
            (Method::POST, "/locations"),
            (Method::GET, "/locations/1"),
            (Method::POST, "/analyze-location"),
            (Method::POST, "/validate-entity"),
            (Method::GET, "/openapi.json"),
            (
                Method::POST,
                "/.backstage/actions/v1/actions/catalog:x/invoke",
            ),
            (Method::HEAD, "/entities/by-uid/u1"),
            (Method::POST, "/entities"),
            (Method::DELETE, "/entities/by-name/component/acme/x"),
            (Method::GET, "/"),
        ] {
            assert!(
                matches!(
                    plan_of(method.clone(), path),
                    Err(BackstageError::CatalogUnscoped(_))
                ),
                "{method} {path}"
            );
        }
        let allowed = [PathGlob::new("/locations/**")];
        assert_eq!(
            plan(&scope, &allowed, &Method::GET, "/locations", None).unwrap(),
            Plan::pass()
        );
        // A scopable endpoint stays scoped even when a glob matches it.
        let everything = [PathGlob::new("/**")];
        assert!(
            plan(&scope, &everything, &Method::GET, "/entities", None)
                .unwrap()
                .query
                .is_some()
        );
    }

    #[test]
    fn answers_are_checked_and_filtered() {
        let scope = acme();
        let entity = |namespace: Value| {
            json!({ "kind": "Component", "metadata": { "name": "x", "namespace": namespace } })
                .to_string()
        };
        assert!(check_entity(&scope, entity(json!("ACME")).as_bytes()).is_ok());
        assert!(check_entity(&scope, entity(json!("globex")).as_bytes()).is_err());
        assert!(check_entity(&scope, entity(json!(7)).as_bytes()).is_err());
        // No namespace: Backstage's `default`, not in this scope.
        let no_namespace = json!({ "kind": "User", "metadata": { "name": "x" } }).to_string();
        assert!(check_entity(&scope, no_namespace.as_bytes()).is_err());
        assert!(check_entity(&Scope::new(["default"]), no_namespace.as_bytes()).is_ok());
        assert!(matches!(
            check_entity(&scope, b"not json"),
            Err(BackstageError::UnexpectedAnswer(_))
        ));

        let ancestry = json!({
            "rootEntityRef": "component:acme/x",
            "items": [
                { "entity": { "kind": "Component", "metadata": { "name": "x", "namespace": "acme" } },
                  "parentEntityRefs": ["location:default/generated-1", "location:common/l"] },
                { "entity": { "kind": "Location", "metadata": { "name": "generated-1", "namespace": "default" } },
                  "parentEntityRefs": [] },
                { "entity": { "kind": "Location", "metadata": { "name": "l", "namespace": "common" } },
                  "parentEntityRefs": ["location:globex/y"] },
            ],
        });
        let filtered: Value = serde_json::from_slice(
            &filter_ancestry(&scope, ancestry.to_string().as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            filtered,
            json!({
                "rootEntityRef": "component:acme/x",
                "items": [
                    { "entity": { "kind": "Component", "metadata": { "name": "x", "namespace": "acme" } },
                      "parentEntityRefs": ["location:common/l"] },
                    { "entity": { "kind": "Location", "metadata": { "name": "l", "namespace": "common" } },
                      "parentEntityRefs": [] },
                ],
            })
        );
    }
}
