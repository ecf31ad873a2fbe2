//! Which rule a catalog request falls under: its endpoint (matched as Express matches it) and method.

use axum::http::Method;

use super::Scope;
use super::query::scope_query;
use crate::backstage::BackstageError;
use crate::rbac::PathGlob;

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
pub(super) enum Endpoint<'a> {
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
pub(super) fn endpoint(path: &str) -> Endpoint<'_> {
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
