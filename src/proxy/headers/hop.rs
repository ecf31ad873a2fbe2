//! Hop-by-hop headers: they describe one connection, not the message, so they never cross portico in
//! either direction (RFC 9110 §7.6.1). The only exception, a WebSocket handshake's `Upgrade`, is put
//! back by the caller that hands the upgrade on.

use axum::http::{HeaderMap, HeaderName, header};

/// The hop-by-hop names, and the legacy ones (`keep-alive`, `proxy-connection`), in the order of the
/// bits [`hop_index`] gives them.
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
///
/// One pass over the dozen names a message has notes which hop-by-hop ones are present (most
/// messages carry none, or only `Connection`); only those are removed, each by its constant name.
/// Nothing is allocated unless `Connection` names a header that is present and not hop-by-hop anyway.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(index) = hop_index(name.as_str()) {
            present |= 1 << index;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        remove_named_by_connection(headers);
    }
    for (index, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << index) != 0 {
            headers.remove(name);
        }
    }
}

/// Removes the headers `Connection` names that are present and not among the hop-by-hop ones (which
/// the caller removes): almost always none (`keep-alive`, `close`, `upgrade`), then without parsing a
/// name or allocating.
fn remove_named_by_connection(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !is_hop_by_hop_token(token))
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .filter(|name| headers.contains_key(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Whether a `Connection` token (any case) needs no lookup: a hop-by-hop name, `close`, or nothing.
fn is_hop_by_hop_token(token: &str) -> bool {
    token.is_empty()
        || token.eq_ignore_ascii_case("close")
        || HOP_BY_HOP
            .iter()
            .any(|name| name.as_str().eq_ignore_ascii_case(token))
}

/// The index in [`HOP_BY_HOP`] of a (lower-case) header name: a `match` on the text (a length switch,
/// then one compare) rather than nine `HeaderName` comparisons for every header of every message.
fn hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}

#[cfg(test)]
fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_index(name.as_str()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_hop_by_hop_names_are_recognised() {
        // RFC 9110 §7.6.1's list and the two legacy names, spelled out apart from `HOP_BY_HOP`.
        let names = "connection keep-alive proxy-connection proxy-authenticate proxy-authorization \
                     te trailer transfer-encoding upgrade";
        for name in names.split_whitespace() {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
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
        for (index, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(name.as_str()), Some(index), "{name}");
        }
    }

    #[test]
    fn what_connection_names_goes_and_the_rest_stays() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, "Keep-Alive, X-Trace".parse().unwrap());
        headers.append(header::CONNECTION, "close,,upgrade".parse().unwrap());
        headers.insert("keep-alive", "timeout=5".parse().unwrap());
        headers.insert("x-trace", "1".parse().unwrap());
        headers.append(header::TE, "trailers".parse().unwrap());
        headers.append(header::TE, "gzip".parse().unwrap());
        headers.insert(header::ACCEPT, "text/html".parse().unwrap());
        headers.insert("x-other", "2".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-other"]);
    }
}
