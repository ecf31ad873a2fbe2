//! Hop-by-hop headers: they describe one connection, not the message, so they never cross portico in
//! either direction (RFC 9110 §7.6.1). The only exception, a WebSocket handshake's `Upgrade`, is put
//! back by the caller that hands the upgrade on.

use axum::http::{HeaderMap, HeaderName, header};

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    remove_named_by_connection(headers);
    super::remove_where(headers, |name| is_hop_by_hop(name.as_str()));
}

/// Removes the headers `Connection` names that are present and not hop-by-hop anyway (removed by the
/// caller): almost always none (`keep-alive`, `close`, `upgrade`), and then no name is parsed and
/// nothing is allocated.
fn remove_named_by_connection(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        // Lower-case tokens are compared as they are; any other is parsed (which lower-cases it).
        .filter(|token| !token.is_empty() && token != &"close" && !is_hop_by_hop(token))
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .filter(|name| !is_hop_by_hop(name.as_str()) && headers.contains_key(name))
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// Whether a (lower-case) header name is hop-by-hop, or one of the legacy ones (`keep-alive`,
/// `proxy-connection`): a `match` on the text (a length switch, then one compare) rather than nine
/// `HeaderName` comparisons for every header of every message.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
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
        // RFC 9110 §7.6.1's list and the two legacy names.
        let names = "connection keep-alive proxy-connection proxy-authenticate proxy-authorization \
                     te trailer transfer-encoding upgrade";
        for name in names.split_whitespace() {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "host",
            "content-length",
            "tee",
            "upgrade-insecure-requests",
            "x-connection",
            "authorization",
        ] {
            assert!(!is_hop_by_hop(name), "{name}");
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
