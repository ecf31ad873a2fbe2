//! Host-based tenant resolution: the first thing that runs for every request on a tenant origin.
//!
//! The Host header (or the HTTP/2 authority) picks the tenant; a host no tenant lists gets the configured
//! default tenant or a 404, never another tenant's shell. Whether the tenant answers by a listed host or
//! only as the default is recorded (`RequestContext::host_listed`), so what must never answer a foreign
//! host name (dev sign-in, against DNS rebinding) can refuse. This module must not look at cookies or
//! X-Forwarded-Host: identity and forwarding headers are not trusted to choose a tenant.

use std::sync::Arc;

use arc_swap::ArcSwap;

use axum::extract::Request;
use axum::http::{StatusCode, header};

use crate::config::{Config, Tenant};
use crate::http::{Class, Problem, RequestContext};
use crate::telemetry::Labels;

/// Why no tenant answers a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TenantError {
    /// 404: the Host names no tenant and there is no default tenant.
    #[error("no portal is configured for host `{0}`")]
    UnknownHost(String),
    /// 404: the request names two hosts (Host lines, `:authority`) that lead to different tenants (or
    /// one to none); answered like an unknown host, never guessed.
    #[error("no portal is configured for host `{first}` and `{other}`")]
    AmbiguousHost { first: String, other: String },
}

impl Problem for TenantError {
    fn classify(&self) -> Class {
        match self {
            TenantError::UnknownHost(_) | TenantError::AmbiguousHost { .. } => {
                Class::new(StatusCode::NOT_FOUND, "unknown_host")
            }
        }
    }
}

/// Whether `tenant` lists the Host value (`name` or `name:port`, any case) among its own hosts: a
/// listed `name:port` must match exactly, a listed bare `name` matches it on any port.
pub(crate) fn lists_host(tenant: &Tenant, host: &str) -> bool {
    // Listed hosts are lower-case already; compare without allocating per request.
    let host = host.trim();
    let host_without_port = strip_port(host);
    tenant.hosts.iter().any(|listed| {
        listed.eq_ignore_ascii_case(host)
            || (listed.eq_ignore_ascii_case(host_without_port) && !listed.contains(':'))
    })
}

/// Finds the tenant for a Host value (`name` or `name:port`, any case).
pub(crate) fn resolve<'c>(config: &'c Config, host: &str) -> Option<&'c Arc<Tenant>> {
    resolve_listed(config, host).map(|(tenant, _)| tenant)
}

/// [`resolve`], and whether the tenant lists `host` (false: it answers as the default tenant).
fn resolve_listed<'c>(config: &'c Config, host: &str) -> Option<(&'c Arc<Tenant>, bool)> {
    match config
        .tenants
        .iter()
        .find(|tenant| lists_host(tenant, host))
    {
        Some(tenant) => Some((tenant, true)),
        None => config
            .default_tenant
            .as_ref()
            .and_then(|id| config.tenant(id.as_str()))
            .map(|tenant| (tenant, false)),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        return host
            .split_once("]:")
            .map_or(host, |(name, _)| name)
            .trim_end_matches(']')
            .trim_start_matches('[');
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// `name` or `name:port` with a decimal port: a listed name cannot smuggle a path or a second authority
/// into what upstreams are told through the part after the colon.
fn has_numeric_port_or_none(host: &str) -> bool {
    let after_name = match host.strip_prefix('[') {
        Some(literal) => literal.split_once(']').map_or("", |(_, rest)| rest),
        None => host.rsplit_once(':').map_or("", |(_, port)| port),
    };
    let port = after_name.strip_prefix(':').unwrap_or(after_name);
    if host.starts_with('[') && !after_name.is_empty() && !after_name.starts_with(':') {
        return false;
    }
    port.is_empty() && !after_name.starts_with(':')
        || (1..=5).contains(&port.len()) && port.bytes().all(|byte| byte.is_ascii_digit())
}

/// Loads the config snapshot once and resolves the request's tenant: the tenant origin's one pass
/// (`app::router`) takes this `RequestContext` before any route runs, hands it to `apps::serve`
/// directly, and puts it into the request's extensions for every other route (an extension's insert
/// and removal cost about 450 instructions per proxied request).
pub(crate) fn context(
    config: &ArcSwap<Config>,
    request: &Request,
) -> Result<RequestContext, TenantError> {
    let config = config.load_full();
    // Every authority the request names: its Host header lines, then the request target's (the HTTP/2
    // `:authority`, or an HTTP/1.1 absolute-form target). Normally there is exactly one.
    let mut names = request
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|value| value.to_str().unwrap_or_default())
        .chain(
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str()),
        );
    let host = names.next().unwrap_or_default();
    let (tenant, mut host_listed) = match resolve_listed(&config, host) {
        Some((tenant, listed)) => (Some(tenant.clone()), listed),
        None => (None, false),
    };
    // Names that lead to different tenants make the request ambiguous: a proxy in front may have routed
    // or filtered it by one name while we would serve another tenant by the other (several Host lines
    // are a 400 in RFC 9112 §3.2; a Host that differs from `:authority` is malformed in RFC 9113
    // §8.3.1). Without this check the first Host line won, even over the HTTP/2 `:authority`, so
    // `:authority: acme…` with `host: globex…` was served by globex. Refuse such a request, never guess.
    let same_tenant = |other: &str| {
        resolve(&config, other).map(|t| t.id.as_str()) == tenant.as_ref().map(|t| t.id.as_str())
    };
    // `host_listed`: whether the tenant answers because it lists every name, rather than as
    // `default_tenant`.
    for other in names {
        if !same_tenant(other) {
            return Err(TenantError::AmbiguousHost {
                first: host.to_owned(),
                other: other.to_owned(),
            });
        }
        host_listed &= tenant.as_ref().is_some_and(|t| lists_host(t, other));
    }
    let Some(tenant) = tenant else {
        return Err(TenantError::UnknownHost(host.to_owned()));
    };
    if let Some(labels) = request.extensions().get::<Labels>() {
        labels.tenant(&tenant.id);
    }
    let listed_authority =
        (host_listed && has_numeric_port_or_none(host)).then(|| host.to_ascii_lowercase());
    Ok(RequestContext {
        config,
        tenant,
        host_listed,
        listed_authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_from_names_and_ipv6_literals() {
        assert_eq!(
            strip_port("portal.acme.example:8443"),
            "portal.acme.example"
        );
        assert_eq!(strip_port("portal.acme.example"), "portal.acme.example");
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }

    #[test]
    fn only_numeric_ports_are_passed_on_as_the_listed_authority() {
        for good in ["acme.example", "acme.example:8080", "[::1]", "[::1]:8080"] {
            assert!(has_numeric_port_or_none(good), "{good}");
        }
        for bad in [
            "acme.example:80/evil",
            "acme.example:evil.example",
            "acme.example:123456",
            "[::1]evil",
            "[::1]:x",
        ] {
            assert!(!has_numeric_port_or_none(bad), "{bad}");
        }
    }
}
