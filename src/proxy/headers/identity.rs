//! Portico's own identity headers: who the user is, in the forms the app asked for (`identity:`).
//!
//! Identity values cannot add anything: each header value is ASCII, with every byte outside visible
//! ASCII (and an inner space), every `%`, and in list headers (`X-Portico-Groups`, `-Roles`) every `,`,
//! `;`, `"` and `\` percent-encoded (UTF-8). A group `eng, platform-admin` arrives as
//! `eng%2C platform-admin`: one item, never a second group; an upstream that percent-decodes each item
//! gets the exact name back. The signed assertion carries the same values as JSON.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::assertion::UserClaims;
use crate::config::IdentityModes;

/// Prefix of every header portico sets upstream; all client-sent headers with it are dropped.
pub(crate) const IDENTITY_PREFIX: &str = "x-portico-";

// Names portico sets on every forwarded request, parsed once rather than per insert.
const X_PORTICO_USER: HeaderName = HeaderName::from_static("x-portico-user");
const X_PORTICO_EMAIL: HeaderName = HeaderName::from_static("x-portico-email");
const X_PORTICO_NAME: HeaderName = HeaderName::from_static("x-portico-name");
const X_PORTICO_GROUPS: HeaderName = HeaderName::from_static("x-portico-groups");
const X_PORTICO_ROLES: HeaderName = HeaderName::from_static("x-portico-roles");
const X_PORTICO_TENANT: HeaderName = HeaderName::from_static("x-portico-tenant");
const X_PORTICO_APP: HeaderName = HeaderName::from_static("x-portico-app");
/// The header that carries the signed identity assertion.
const X_PORTICO_ASSERTION: HeaderName = HeaderName::from_static("x-portico-assertion");

/// The values of the identity headers that say who the user is, encoded once per user and tenant
/// config (kept in `auth::Principal`): cloning a `HeaderValue` shares its bytes.
pub(crate) struct IdentityValues {
    user: HeaderValue,
    email: HeaderValue,
    name: HeaderValue,
    groups: HeaderValue,
    roles: HeaderValue,
    tenant: HeaderValue,
}

impl IdentityValues {
    pub(crate) fn of(claims: &UserClaims<'_>) -> Self {
        IdentityValues {
            user: header_value(claims.user),
            email: header_value(claims.email),
            name: header_value(claims.name),
            groups: list_value(claims.groups),
            roles: list_value(claims.roles),
            tenant: header_value(claims.tenant),
        }
    }
}

/// `Bearer <token>` for `Authorization`, encoded as any identity value.
pub(crate) fn bearer_value(token: &str) -> HeaderValue {
    header_value(&format!("Bearer {token}"))
}

/// Who the user is, as portico tells one app, and in which forms (`identity:` of the app).
pub(crate) struct Identity<'a> {
    pub values: &'a IdentityValues,
    pub app: &'a str,
    pub modes: IdentityModes,
    /// The signed assertion, when `modes.assertion` (a shared, ready header value).
    pub assertion: Option<HeaderValue>,
    /// `Authorization` with the user's OIDC access token, when `modes.access_token` and the session
    /// has one.
    pub bearer: Option<&'a HeaderValue>,
}

/// Adds the identity headers `identity.modes` asks for. The client's own headers of these names were
/// removed before (`untrusted`), and so was its `Authorization`.
pub(crate) fn insert_identity(headers: &mut HeaderMap, identity: &Identity<'_>) {
    if let Some(assertion) = identity
        .assertion
        .clone()
        .filter(|_| identity.modes.assertion)
    {
        headers.insert(X_PORTICO_ASSERTION, assertion);
    }
    if let Some(bearer) = identity.bearer.filter(|_| identity.modes.access_token) {
        headers.insert(header::AUTHORIZATION, bearer.clone());
    }
    if identity.modes.headers {
        let values = identity.values;
        headers.insert(X_PORTICO_USER, values.user.clone());
        headers.insert(X_PORTICO_EMAIL, values.email.clone());
        headers.insert(X_PORTICO_NAME, values.name.clone());
        headers.insert(X_PORTICO_GROUPS, values.groups.clone());
        headers.insert(X_PORTICO_ROLES, values.roles.clone());
        headers.insert(X_PORTICO_TENANT, values.tenant.clone());
        headers.insert(X_PORTICO_APP, header_value(identity.app));
    }
}

/// One identity value as an ASCII header value (see the module docs): clean values as they are,
/// anything else percent-encoded, so no value can end a header, start another or read differently.
pub(super) fn header_value(text: &str) -> HeaderValue {
    encoded_value(text, false)
}

/// A list of identity values, comma-separated; no item can contain the separator.
pub(super) fn list_value<S: AsRef<str>>(items: &[S]) -> HeaderValue {
    let mut joined = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            joined.push(',');
        }
        encode_into(&mut joined, item.as_ref(), true);
    }
    // Only visible ASCII and spaces are left, which is always a valid header value.
    HeaderValue::from_str(&joined).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn encoded_value(text: &str, list_item: bool) -> HeaderValue {
    // The usual case, a clean value, costs one copy; only a value that needs encoding is rebuilt.
    if !needs_encoding(text, list_item) {
        if let Ok(value) = HeaderValue::from_str(text) {
            return value;
        }
    }
    let mut encoded = String::with_capacity(text.len() + 8);
    encode_into(&mut encoded, text, list_item);
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn needs_encoding(text: &str, list_item: bool) -> bool {
    let bytes = text.as_bytes();
    bytes.first() == Some(&b' ')
        || bytes.last() == Some(&b' ')
        || bytes.iter().any(|&byte| must_encode(byte, list_item))
}

fn must_encode(byte: u8, list_item: bool) -> bool {
    match byte {
        b'%' => true,
        b',' | b';' | b'"' | b'\\' => list_item,
        b' ' => false,
        byte => !byte.is_ascii_graphic(),
    }
}

fn encode_into(out: &mut String, text: &str, list_item: bool) {
    use std::fmt::Write;
    let bytes = text.as_bytes();
    let last = bytes.len().saturating_sub(1);
    for (index, &byte) in bytes.iter().enumerate() {
        // A leading or trailing space would vanish when an upstream trims the item.
        let edge_space = byte == b' ' && (index == 0 || index == last);
        if edge_space || must_encode(byte, list_item) {
            let _ = write!(out, "%{byte:02X}");
        } else {
            out.push(char::from(byte));
        }
    }
}
