//! Request bodies portico rewrites: the `query` of by-query and facet requests, a refresh's ref.

use serde_json::{Map, Value};

use super::answers::ref_namespace;
use super::cursor::rescope_cursor;
use super::{BodyRule, Scope};
use crate::backstage::BackstageError;

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
