//! Answers portico checks before passing them on: one entity (in scope or 404) and an ancestry
//! (ancestors outside the scope left out). These are the only answers read whole, with a size cap.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use super::{DEFAULT_NAMESPACE, MAX_CHECKED_ANSWER, Scope};
use crate::backstage::BackstageError;

/// The namespace of a full entity ref `kind:namespace/name`, as the catalog stores refs. Backstage
/// looks a refresh's ref up as written, so a ref without both parts names no stored entity.
pub(super) fn ref_namespace(entity_ref: &str) -> Option<&str> {
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
pub(super) async fn read_answer(
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
pub(super) fn answer(mut parts: axum::http::response::Parts, body: Vec<u8>) -> Response {
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
