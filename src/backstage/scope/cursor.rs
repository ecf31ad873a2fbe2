//! By-query cursors: base64 JSON that carries the whole query, so portico narrows each one it forwards.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::Scope;
use crate::backstage::BackstageError;

/// A by-query cursor re-scoped. Backstage's cursor is base64 JSON that carries the whole query
/// (`query`, a filter predicate, and `filter`, the older form, both applied), so a client could write
/// its own. Portico narrows `query` in every cursor it forwards, its own included (those it
/// recognises and keeps), and re-encodes the result.
pub(super) fn rescope_cursor(scope: &Scope, encoded: &str) -> Result<String, BackstageError> {
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
