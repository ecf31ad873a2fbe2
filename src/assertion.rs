//! The signed identity assertion: a short-lived ES256 JWT that tells an upstream who the user is, and the
//! JWKS that lets the upstream verify it (Pomerium's model, not oauth2-proxy's unsigned headers).
//!
//! Keys come from PEM files (so every instance signs with the same key) or are generated at start. The
//! first key signs; every key is published, so rotation is: add the next key second, roll out, swap it
//! first, roll out, drop the old one once its last tokens (one minute) have expired. Signing is not paid
//! per request: a token is reused per user (`auth::Principal`) and app until shortly before it expires.
//!
//! `p256` reads, generates and publishes the keys; `jsonwebtoken` writes the tokens (header `alg`,
//! `typ: JWT`, `kid`; the claims below), the library upstream teams verify them with.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clock::unix_now;
use crate::config::AppId;

/// A cached assertion is replaced when it has less than a third of its lifetime left, so upstreams
/// never receive one about to expire.
const REUSE_FRACTION: u64 = 3;

/// Why the signing keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key {path} is not a P-256 private key in PEM (PKCS#8 or SEC1): {reason}")]
    Parse { path: String, reason: String },
}

struct Key {
    /// `alg: ES256`, `typ: JWT` and this key's `kid`.
    header: Header,
    encoding: EncodingKey,
}

impl Key {
    /// The key as `jsonwebtoken` signs with it (PKCS#8 DER), tried once so that signing cannot fail later.
    fn new(signing: &SigningKey, kid: &str) -> Result<Key, String> {
        let der = signing.to_pkcs8_der().map_err(|error| error.to_string())?;
        let key = Key {
            header: Header {
                typ: Some("JWT".into()),
                kid: Some(kid.to_owned()),
                ..Header::new(Algorithm::ES256)
            },
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
        };
        jsonwebtoken::encode(&key.header, &json!({}), &key.encoding)
            .map_err(|error| error.to_string())?;
        Ok(key)
    }
}

/// The keys portico signs assertions with and publishes.
pub struct SigningKeys {
    keys: Vec<Key>,
    jwks: Bytes,
}

impl SigningKeys {
    /// One fresh key, for a single instance. Several instances behind one name need keys from files.
    pub fn generate() -> Self {
        // Not every 32 bytes are a P-256 scalar; draw again until they are (almost always at once).
        loop {
            let bytes = crate::token::random_bytes::<32>();
            if let Ok(keys) = SigningKey::from_bytes(&bytes.into())
                .map_err(|error| error.to_string())
                .and_then(|signing| Self::from_signing_keys(vec![signing]))
            {
                return keys;
            }
        }
    }

    /// Keys from PEM files; the first signs, all are published.
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let display = path.display().to_string();
            let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
                path: display.clone(),
                source,
            })?;
            keys.push(parse_pem(&pem).map_err(|reason| KeyError::Parse {
                path: display.clone(),
                reason,
            })?);
        }
        Self::from_signing_keys(keys).map_err(|reason| KeyError::Parse {
            path: paths
                .iter()
                .map(|path| path.as_ref().display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason,
        })
    }

    fn from_signing_keys(signing_keys: Vec<SigningKey>) -> Result<Self, String> {
        let mut jwks = Vec::new();
        let mut keys = Vec::new();
        for signing in signing_keys {
            let (x, y, kid) = public_coordinates(&signing);
            keys.push(Key::new(&signing, &kid)?);
            jwks.push(json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig" }));
        }
        let jwks = Bytes::from(json!({ "keys": jwks }).to_string());
        Ok(SigningKeys { keys, jwks })
    }

    /// The JWKS document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    /// The id of the key that signs.
    pub fn signing_kid(&self) -> &str {
        self.keys
            .first()
            .and_then(|key| key.header.kid.as_deref())
            .unwrap_or("")
    }

    /// The signed token; empty only if there is no key (or signing failed, which the key was tried
    /// against when it was loaded).
    fn sign(&self, claims: &serde_json::Value) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        jsonwebtoken::encode(&key.header, claims, &key.encoding).unwrap_or_else(|error| {
            tracing::error!(%error, "signing an assertion failed");
            String::new()
        })
    }
}

fn parse_pem(pem: &str) -> Result<SigningKey, String> {
    if let Ok(key) = SigningKey::from_pkcs8_pem(pem) {
        return Ok(key);
    }
    p256::SecretKey::from_sec1_pem(pem)
        .map(SigningKey::from)
        .map_err(|error| error.to_string())
}

/// `x`, `y` (base64url) and the RFC 7638 thumbprint used as `kid`.
fn public_coordinates(key: &SigningKey) -> (String, String, String) {
    let point = key.verifying_key().to_encoded_point(false);
    let x = point
        .x()
        .map(|x| URL_SAFE_NO_PAD.encode(x))
        .unwrap_or_default();
    let y = point
        .y()
        .map(|y| URL_SAFE_NO_PAD.encode(y))
        .unwrap_or_default();
    // The thumbprint input has exactly these members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    (x, y, kid)
}

/// `GET /.well-known/jwks.json` on every tenant origin: the public keys upstreams verify assertions with.
/// It needs the keys only, not the server's state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(keys: Arc<SigningKeys>) -> axum::Router<S> {
    axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks_get))
        .with_state(keys)
}

async fn jwks_get(
    axum::extract::State(keys): axum::extract::State<Arc<SigningKeys>>,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Short enough that a newly published key is seen well before it signs.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        keys.jwks(),
    )
        .into_response()
}

/// Who the user is, as portico tells an upstream: the identity headers (`proxy::headers`) and the
/// signed assertion say the same, so they read one struct, built once per request and borrowed from
/// the session and the request's role set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UserClaims<'a> {
    /// The subject at the IdP (or the dev user's id).
    pub user: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub groups: &'a [String],
    pub roles: &'a [&'a str],
    pub tenant: &'a str,
}

/// Who an assertion speaks for, and to whom.
pub(crate) struct Subject<'a> {
    pub claims: &'a UserClaims<'a>,
    pub issuer: &'a str,
    pub audience: &'a AppId,
    /// Seconds the assertion is valid (`proxy.assertion_lifetime`).
    pub lifetime: u64,
}

struct Cached {
    audience: AppId,
    /// Ready to send: cloning a `HeaderValue` shares its bytes instead of copying them.
    token: HeaderValue,
    expires_at: u64,
    /// The key that signed it and the lifetime it was signed for: a token is not reused once
    /// either changed (a key rotation, a reload with a new `assertion_lifetime`).
    kid: String,
    lifetime: u64,
}

/// The assertions signed for one user in one tenant config (kept by `auth::Principal`, which is
/// derived anew whenever the session record or the tenant changes, so the claims of one principal's
/// tokens cannot change), per app, reused until shortly before they expire.
#[derive(Default)]
pub(crate) struct Assertions {
    per_app: Mutex<Vec<Cached>>,
}

impl Assertions {
    /// A valid assertion for `subject`, the kept one when it has enough life left. Every `subject`
    /// given to one `Assertions` must say the same about the user (see the type's docs).
    pub(crate) fn assertion(&self, keys: &SigningKeys, subject: &Subject<'_>) -> HeaderValue {
        let now = unix_now();
        let kid = keys.signing_kid();
        let mut per_app = self.per_app.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = per_app
            .iter()
            .find(|cached| cached.audience == *subject.audience)
        {
            if cached.kid == kid
                && cached.lifetime == subject.lifetime
                && cached.expires_at > now + subject.lifetime / REUSE_FRACTION
            {
                return cached.token.clone();
            }
        }
        let expires_at = now + subject.lifetime;
        let token = keys.sign(&json!({
            "iss": subject.issuer,
            "aud": subject.audience,
            "sub": subject.claims.user,
            "email": subject.claims.email,
            "name": subject.claims.name,
            "groups": subject.claims.groups,
            "roles": subject.claims.roles,
            "tenant": subject.claims.tenant,
            "iat": now,
            "nbf": now.saturating_sub(5),
            "exp": expires_at,
        }));
        // A JWT is base64url and dots: always a valid header value.
        let token = HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static(""));
        per_app.retain(|cached| cached.audience != *subject.audience);
        per_app.push(Cached {
            audience: subject.audience.clone(),
            token: token.clone(),
            expires_at,
            kid: kid.to_owned(),
            lifetime: subject.lifetime,
        });
        token
    }
}

/// How long a service token portico signs for itself is valid (`service_token: signed` of Backstage).
pub(crate) const SERVICE_TOKEN_LIFETIME: u64 = 60;

/// The subject of portico's own service tokens: Backstage names the caller `external:portico`.
pub(crate) const SERVICE_SUBJECT: &str = "portico";

struct CachedServiceToken {
    issuer: String,
    audience: &'static str,
    token: String,
    expires_at: u64,
    kid: String,
}

/// Portico's own service tokens, per issuer (a tenant) and audience: signed with the first signing key
/// for [`SERVICE_TOKEN_LIFETIME`] and reused until a third of that is left, so a leaked one is worth a
/// minute and signing is not paid per request. A new signing key signs the next one at once.
#[derive(Default)]
pub(crate) struct ServiceTokens {
    held: Mutex<Vec<CachedServiceToken>>,
}

impl ServiceTokens {
    /// A service token of `issuer` for `audience` with enough life left.
    pub(crate) fn token(&self, keys: &SigningKeys, issuer: &str, audience: &'static str) -> String {
        let now = unix_now();
        let kid = keys.signing_kid();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = held.iter().find(|cached| {
            cached.issuer == issuer
                && cached.audience == audience
                && cached.kid == kid
                && cached.expires_at > now + SERVICE_TOKEN_LIFETIME / REUSE_FRACTION
        }) {
            return cached.token.clone();
        }
        let expires_at = now + SERVICE_TOKEN_LIFETIME;
        let token = keys.sign(&json!({
            "iss": issuer,
            "aud": audience,
            "sub": SERVICE_SUBJECT,
            "iat": now,
            "nbf": now.saturating_sub(5),
            "exp": expires_at,
        }));
        held.retain(|cached| !(cached.issuer == issuer && cached.audience == audience));
        held.push(CachedServiceToken {
            issuer: issuer.to_owned(),
            audience,
            token: token.clone(),
            expires_at,
            kid: kid.to_owned(),
        });
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};

    fn claims<'a>(roles: &'a [&'a str]) -> UserClaims<'a> {
        UserClaims {
            user: "dev",
            email: "dev@acme.example",
            name: "Dev",
            groups: &[],
            roles,
            tenant: "acme",
        }
    }

    static AUDIENCE: std::sync::LazyLock<AppId> =
        std::sync::LazyLock::new(|| AppId::new("cost-insights"));

    fn subject<'a>(claims: &'a UserClaims<'a>) -> Subject<'a> {
        Subject {
            claims,
            issuer: "https://portal.acme.example",
            audience: &AUDIENCE,
            lifetime: 60,
        }
    }

    #[test]
    fn tokens_verify_with_the_published_key_and_say_who() {
        let keys = SigningKeys::generate();
        let cache = Assertions::default();
        let token = cache.assertion(&keys, &subject(&claims(&["developer"])));
        let parts: Vec<&str> = token.to_str().unwrap().split('.').collect();
        assert_eq!(parts.len(), 3);
        let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        let verifying = VerifyingKey::from_sec1_bytes(&point).unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        verifying
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({ "alg": "ES256", "typ": "JWT", "kid": keys.signing_kid() })
        );
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let mut names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "aud", "email", "exp", "groups", "iat", "iss", "name", "nbf", "roles", "sub",
                "tenant"
            ]
        );
        assert_eq!(claims["aud"], "cost-insights");
        assert_eq!(claims["roles"], json!(["developer"]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            60
        );
    }

    #[test]
    fn tokens_are_reused_per_app_until_the_key_or_the_lifetime_changes() {
        let keys = SigningKeys::generate();
        let cache = Assertions::default();
        let developer = claims(&["developer"]);
        let first = cache.assertion(&keys, &subject(&developer));
        assert_eq!(cache.assertion(&keys, &subject(&developer)), first);
        let other_app = AppId::new("status");
        let for_other_app = cache.assertion(
            &keys,
            &Subject {
                audience: &other_app,
                ..subject(&developer)
            },
        );
        assert_ne!(for_other_app, first, "another app, another token");
        assert_eq!(cache.assertion(&keys, &subject(&developer)), first);
        let longer = Subject {
            lifetime: 120,
            ..subject(&developer)
        };
        let after_reload = cache.assertion(&keys, &longer);
        assert_ne!(after_reload, first, "a new lifetime, a new token");
        let rotated = SigningKeys::generate();
        assert_ne!(
            cache.assertion(&rotated, &longer),
            after_reload,
            "a new signing key, a new token"
        );
    }

    #[test]
    fn service_tokens_say_portico_for_a_minute_and_are_reused() {
        let keys = SigningKeys::generate();
        let tokens = ServiceTokens::default();
        let token = tokens.token(&keys, "https://portal.acme.example", "backstage-service");
        assert_eq!(
            tokens.token(&keys, "https://portal.acme.example", "backstage-service"),
            token
        );
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["iss"], "https://portal.acme.example");
        assert_eq!(claims["aud"], "backstage-service");
        assert_eq!(claims["sub"], "portico");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            SERVICE_TOKEN_LIFETIME
        );
        let other_tenant =
            tokens.token(&keys, "https://portal.globex.example", "backstage-service");
        assert_ne!(other_tenant, token, "each tenant's issuer its own token");
        let rotated = SigningKeys::generate();
        assert_ne!(
            tokens.token(&rotated, "https://portal.acme.example", "backstage-service"),
            token,
            "a new signing key signs at once"
        );
    }
}
