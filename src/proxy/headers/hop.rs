//! Hop-by-hop headers: they describe one connection, not the message, so they never cross portico in
//! either direction (RFC 9110 §7.6.1). The only exception, a WebSocket handshake's `Upgrade`, is put
//! back by the caller that hands the upgrade on.

use axum::http::{HeaderMap, HeaderName, header};

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
        .filter(|name| !is_hop_by_hop(name) && headers.contains_key(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
    // One pass over the dozen headers a message has, instead of a hashed removal of each of the nine
    // names (most messages carry none of them, or only `Connection`).
    super::remove_where(headers, is_hop_by_hop);
}

/// Whether `name` is hop-by-hop, or one of the legacy ones (`keep-alive`, `proxy-connection`): a
/// `match` on the text (a length switch, then one compare) rather than nine `HeaderName` comparisons
/// for every header of every message.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_hop_by_hop_names_are_recognised() {
        for name in [
            header::CONNECTION,
            HeaderName::from_static("keep-alive"),
            HeaderName::from_static("proxy-connection"),
            header::PROXY_AUTHENTICATE,
            header::PROXY_AUTHORIZATION,
            header::TE,
            header::TRAILER,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
        ] {
            assert!(is_hop_by_hop(&name), "{name}");
        }
        for name in [
            "host",
            "content-length",
            "tee",
            "upgrade-insecure-requests",
            "x-connection",
            "authorization",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }
}
