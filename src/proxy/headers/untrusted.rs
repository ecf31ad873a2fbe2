//! Client-sent headers that an upstream would believe because it thinks a trusted proxy set them.
//!
//! Request headers are cleaned with a deny-list, not an allow-list. An allow-list would have to name
//! every header some app relies on (its own API headers, CSRF tokens, tracing, content negotiation)
//! and would break apps silently; what is dangerous is a known family: headers that an upstream
//! framework or auth layer believes because it thinks a trusted proxy set them. Those are removed by
//! exact name and by prefix ([`UNTRUSTED_EXACT`], [`UNTRUSTED_PREFIXES`]): identity headers of other
//! identity proxies, client-address headers, forwarding headers (`Forwarded`, all `X-Forwarded-*`),
//! URL and method overrides (`X-Original-URL`, `X-Rewrite-URL`, `X-HTTP-Method-Override`…), which would
//! let a request decided as `GET /public` run as `DELETE /admin`, and client-certificate headers.

use axum::http::HeaderMap;

use super::identity::IDENTITY_PREFIX;

/// Request headers that upstream frameworks or auth layers believe because a trusted proxy would set
/// them; a client sending them could impersonate someone, fake its address or change what runs.
const UNTRUSTED_EXACT: &[&str] = &[
    // Identity set by other identity-aware proxies (oauth2-proxy, Apache, Grafana's auth proxy…).
    "x-oauth2-proxy-id-token",
    "x-remote-user",
    "remote-user",
    "x-user",
    "x-email",
    // The client's address: portico sets X-Forwarded-For alone.
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-proxyuser-ip",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "x-host",
    // URL and method overrides (IIS/Symfony/Zend, Express method-override, Rails, Spring, Jersey…):
    // the access decision saw the request line, so nothing may replace it.
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    // Client certificates as a TLS-terminating proxy reports them.
    "ssl-client-cert",
    "x-client-cert",
    "x-client-verify",
    "x-arr-clientcert",
];

/// The same, for whole families of names.
const UNTRUSTED_PREFIXES: &[&str] = &[
    // Portico's own; only portico sets them (after this cleaning).
    IDENTITY_PREFIX,
    // X-Forwarded-For/-Host/-Proto/-Port/-Server/-Prefix/-Path/-User/-Email/-Groups/-Client-Cert…
    "x-forwarded-",
    // oauth2-proxy's auth-request headers, Grafana/Jetty-style X-WEBAUTH-USER, Pomerium, AWS ALB,
    // Google IAP, Azure App Service and Cloudflare Access identity headers.
    "x-auth-request-",
    "x-webauth-",
    "x-pomerium-",
    "x-amzn-oidc-",
    "x-goog-authenticated-",
    "x-goog-iap-",
    "x-ms-client-principal",
    "cf-access-",
    // X-Original-URL, -Method, -Host, -URI, -Forwarded-For: overrides of what was decided on.
    "x-original-",
    // Envoy and Istio sidecars trust these from the hop before them.
    "x-envoy-",
    // Client-certificate details from TLS terminators.
    "x-ssl-",
    "ssl-client-",
];

/// Whether a client-sent request header must not reach an upstream (names are lower-case).
fn untrusted(name: &str) -> bool {
    UNTRUSTED_EXACT.contains(&name)
        || UNTRUSTED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// Removes every untrusted header the client sent.
pub(crate) fn remove_untrusted(headers: &mut HeaderMap) {
    super::remove_where(headers, |name| untrusted(name.as_str()));
}
