//! Header hygiene for forwarded requests and responses, one job per file.
//!
//! What goes upstream ([`prepare_request_headers`]): no hop-by-hop headers ([`hop`]), no client-sent
//! identity, forwarding or override headers ([`untrusted`], BRIEF invariant 4), no portal cookie
//! ([`cookies`]), no client `Host` or `Authorization`; then portico's forwarding facts ([`forwarded`]:
//! `X-Forwarded-Host`/`-Proto` from the tenant's origin, never from the client's Host) and identity
//! headers ([`identity`]). What comes back: no hop-by-hop headers, no portal cookie set by an app, app
//! cookies scoped, `Location` kept on the portal ([`location`]), framing and origin-wide headers decided
//! by portico ([`framing`]). Everything here is a pure function over a `HeaderMap`; nothing here knows
//! a feature (the portal's cookie names are the caller's, see [`PortalCookies`]).

pub(crate) mod cookies;
pub(crate) mod forwarded;
pub(crate) mod framing;
pub(crate) mod hop;
pub(crate) mod identity;
pub(crate) mod location;
#[cfg(test)]
mod tests;
pub(crate) mod untrusted;

use axum::http::{HeaderMap, HeaderName, header};

pub use cookies::scope_set_cookies;
pub(crate) use cookies::{
    PortalCookies, SendCookies, remove_portal_set_cookies, strip_portal_cookies,
};
pub(crate) use forwarded::Hop;
pub(crate) use framing::{frame_only_by_shell, remove_origin_wide_headers};
pub(crate) use hop::remove_hop_by_hop;
pub(crate) use identity::{Identity, IdentityValues, bearer_value};
pub use location::rewrite_location;

/// At most how many headers [`prepare_request_headers`] adds: `X-Forwarded-For`, `-Proto`, `-Host`,
/// `X-Request-Id`, the assertion, `Authorization` and seven identity headers.
const ADDED_HEADERS: usize = 13;

/// Makes a client's request headers safe to send upstream and adds portico's forwarding headers and,
/// with an `identity`, its identity headers. `cookies` says which `Cookie` the upstream gets.
pub(crate) fn prepare_request_headers(
    headers: &mut HeaderMap,
    hop: &Hop<'_>,
    identity: Option<&Identity<'_>>,
    cookies: SendCookies<'_>,
) {
    hop::remove_hop_by_hop(headers);
    untrusted::remove_untrusted(headers);
    cookies::send_cookies(headers, cookies);
    headers.remove(header::HOST);
    // The browser holds no token (BFF), so a client-sent Authorization is someone else's credential.
    headers.remove(header::AUTHORIZATION);
    // Room for what is added below, at once: the map otherwise grows (and rehashes) up to three
    // times on the way to a dozen more headers.
    headers.reserve(ADDED_HEADERS);
    forwarded::insert_forwarded(headers, hop);
    if let Some(identity) = identity {
        identity::insert_identity(headers, identity);
    }
}

/// Removes every header whose name `unwanted` picks, by scanning the names present: cheaper than a
/// hashed removal per candidate name. Nothing is allocated: each match is removed as it is found and
/// the scan starts again, which is one scan when nothing matches and two when one does (a response's
/// `Connection`), the usual cases.
fn remove_where(headers: &mut HeaderMap, unwanted: impl Fn(&HeaderName) -> bool) {
    while let Some(name) = headers.keys().find(|name| unwanted(name)).cloned() {
        headers.remove(name);
    }
}
