//! Hop-by-hop headers: they describe one connection, not the message, so they never cross portico in
//! either direction (RFC 9110 §7.6.1). The only exception, a WebSocket handshake's `Upgrade`, is put
//! back by the caller that hands the upgrade on.

use axum::http::{HeaderMap, HeaderName, header};

/// The hop-by-hop headers, plus the legacy ones.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // The names `Connection` lists that are present and not removed below anyway: almost always
    // none (`keep-alive`, `close`, `upgrade`), so nothing is allocated.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .filter(|name| !HOP_BY_HOP.contains(name) && headers.contains_key(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
    // One pass over the dozen headers a message has, instead of a hashed removal of each of the nine
    // names (most messages carry none of them, or only `Connection`).
    super::remove_where(headers, |name| HOP_BY_HOP.contains(name));
}
