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
//! is pure apart from reading a response body: the rules are unit-tested in `tests.rs` and against a real
//! Backstage in tests/api/backstage.rs. It assumes the catalog plugin of Backstage 1.55
//! (`@backstage/plugin-catalog-backend` 4.0.0); docs/backstage-scoping.md lists every endpoint.

//!
//! One file per job: [`plan`] classifies a request, `query` and `cursor` rewrite what it asks for,
//! `body` rewrites what it sends, `answers` checks what comes back; the rules' tests are in `tests.rs`.

mod answers;
mod body;
mod cursor;
mod plan;
mod query;
#[cfg(test)]
mod tests;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Value, json};

use crate::config::BackstageSettings;

pub use answers::{check_entity, checked_ancestry, checked_entity, filter_ancestry};
pub use body::scope_body;
pub use plan::{AnswerRule, BodyRule, Plan, plan};

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
        Some(Scope::new(settings.readable_namespaces()))
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
