//! The HTTP kit: what every route shares and no feature owns.
//!
//! Errors and how they become responses ([`error`]), the per-request context that tenant resolution
//! leaves for the handlers ([`context`]), and the same-origin proof every state change needs
//! ([`csrf`]: pure checks over headers, used by `/auth` and by the forwarding kit alike). Features (auth, apps, backstage, shell) import this module;
//! this module imports no feature, only `config` and `telemetry`, so it can sit low in the house.

pub(crate) mod compress;
pub(crate) mod context;
pub(crate) mod csrf;
pub(crate) mod error;
pub(crate) mod watched;

pub(crate) use context::RequestContext;
pub(crate) use error::{AppError, Class, Problem};

/// Appends `ip` as its `Display` writes it; IPv4, the usual case, without the formatting machinery
/// (about 1,000 instructions a call, on every request's access line and `X-Forwarded-For`).
/// The essence of a media type (`type/subtype`, RFC 9110 §8.3.1): the `Content-Type` value before its
/// parameters, without surrounding spaces, case kept (compare it case-insensitively). Split by byte
/// position, without allocating: it is read on every response.
pub(crate) fn media_essence(content_type: &str) -> &str {
    let end = content_type
        .bytes()
        .position(|byte| byte == b';')
        .unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// Whether `text` ends with `suffix`, ASCII case ignored.
pub(crate) fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

pub(crate) fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.4",
            "::1",
            "2001:db8::42",
            "::ffff:192.0.2.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            super::push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }
}
