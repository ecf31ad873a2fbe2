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
use crate::config::{AppId, SigningKeyFile};

/// A cached assertion is replaced when it has less than a third of its lifetime left, so upstreams
/// never receive one about to expire.
const REUSE_FRACTION: u64 = 3;

/// Why the signing keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
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
    /// Made at start (no `server.signing_keys`): a reload keeps it while the config names none.
    generated: bool,
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
                return SigningKeys {
                    generated: true,
                    ..keys
                };
            }
        }
    }

    /// The keys of `server.signing_keys`, as the config read them; the first signs, all are
    /// published.
    pub fn from_files(files: &[SigningKeyFile]) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for file in files {
            keys.push(parse_pem(&file.pem.0).map_err(|reason| KeyError::Parse {
                path: file.path.display().to_string(),
                reason,
            })?);
        }
        Self::from_signing_keys(keys).map_err(|reason| KeyError::Parse {
            path: files
                .iter()
                .map(|file| file.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            reason,
        })
    }

    /// The keys for `files` (a reload), or `None` when they are the ones in use: the current keys
    /// stay, and with them every token signed and kept. No files keeps a generated key.
    pub(crate) fn reloaded(&self, files: &[SigningKeyFile]) -> Result<Option<Self>, KeyError> {
        if files.is_empty() {
            return Ok((!self.generated).then(Self::generate));
        }
        let next = Self::from_files(files)?;
        // The JWKS lists every key in order, the signing one first: equal documents, equal keys.
        Ok((next.jwks != self.jwks).then_some(next))
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
        Ok(SigningKeys {
            keys,
            jwks,
            generated: false,
        })
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
    pub(crate) fn sign(&self, claims: &serde_json::Value) -> String {
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        jsonwebtoken::encode(&key.header, claims, &key.encoding).unwrap_or_else(|error| {
            tracing::error!(%error, "signing an assertion failed");
            String::new()
        })
    }
}

/// Whether `pem` is a P-256 private key portico can sign with (PKCS#8 or SEC1), for the config check;
/// the reason in words a reader of `portico check` can act on.
pub(crate) fn check_pem(pem: &str) -> Result<(), String> {
    if !pem.contains("-----BEGIN ") {
        return Err("no PEM block in the file".into());
    }
    parse_pem(pem)
        .map(drop)
        .map_err(|_| "the PEM block is not a P-256 private key (PKCS#8 or SEC1)".into())
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

/// The keys in use: swapped whole by a reload that rotates them (`server.signing_keys`).
pub(crate) type CurrentKeys = Arc<arc_swap::ArcSwap<SigningKeys>>;

/// `GET /.well-known/jwks.json` on every tenant origin: the public keys upstreams verify assertions with.
/// It needs the keys only, not the server's state.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(keys: CurrentKeys) -> axum::Router<S> {
    axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks_get))
        .with_state(keys)
}

async fn jwks_get(
    axum::extract::State(keys): axum::extract::State<CurrentKeys>,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Short enough that a newly published key is seen well before it signs.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        keys.load().jwks(),
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
    /// How a request that did not use the session cookie authenticated: `(kind, token id)`, e.g.
    /// `("idp_token", jti)`, written as `via` and `token_id`; absent for a session.
    pub via: Option<(&'a str, &'a str)>,
}

/// Tokens portico signed, kept per `K` (an app's assertions; a tenant's service tokens) and reused
/// while more than a third of their life is left and the key that signed them and the lifetime asked
/// for are still the current ones (a key rotation, a reload with a new lifetime sign anew). The lookup
/// comes before anything of a new token is built: a reuse, nearly every request, costs a lock and a
/// short scan.
pub(crate) struct Kept<K, T> {
    held: Mutex<Vec<KeptToken<K, T>>>,
}

struct KeptToken<K, T> {
    key: K,
    /// Ready to send: cloning a `HeaderValue` shares its bytes instead of copying them.
    token: T,
    expires_at: u64,
    kid: String,
    lifetime: u64,
}

impl<K, T> Default for Kept<K, T> {
    fn default() -> Self {
        Kept {
            held: Mutex::default(),
        }
    }
}

impl<K, T: Clone> Kept<K, T> {
    /// The kept token whose key `is` picks, if it may be reused; else `sign(now, expires_at)`, kept
    /// under `key()` in its place.
    fn get_or_sign(
        &self,
        keys: &SigningKeys,
        lifetime: u64,
        is: impl Fn(&K) -> bool,
        key: impl FnOnce() -> K,
        sign: impl FnOnce(u64, u64) -> T,
    ) -> T {
        let now = unix_now();
        let kid = keys.signing_kid();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = held.iter().find(|kept| {
            is(&kept.key)
                && kept.kid == kid
                && kept.lifetime == lifetime
                && kept.expires_at > now + lifetime / REUSE_FRACTION
        }) {
            return kept.token.clone();
        }
        let expires_at = now + lifetime;
        let token = sign(now, expires_at);
        held.retain(|kept| !is(&kept.key));
        held.push(KeptToken {
            key: key(),
            token: token.clone(),
            expires_at,
            kid: kid.to_owned(),
            lifetime,
        });
        token
    }
}

/// The assertions signed for one user in one tenant config, per app (kept by `auth::Principal`, which
/// is derived anew whenever the session record or the tenant changes, so what one principal's tokens
/// say cannot change).
pub(crate) type Assertions = Kept<AppId, HeaderValue>;

impl Assertions {
    /// An assertion for `audience` valid for `lifetime` seconds: the kept one, or
    /// `sign(now, expires_at)` (with [`SigningKeys::assertion`]), called only when none may be reused.
    /// Every assertion kept in one `Assertions` must say the same about the user (see the type's docs).
    pub(crate) fn assertion(
        &self,
        keys: &SigningKeys,
        audience: &AppId,
        lifetime: u64,
        sign: impl FnOnce(u64, u64) -> HeaderValue,
    ) -> HeaderValue {
        self.get_or_sign(
            keys,
            lifetime,
            |app| app == audience,
            || audience.clone(),
            sign,
        )
    }
}

/// How long a service token portico signs for itself is valid (`service_token: signed` of Backstage).
pub(crate) const SERVICE_TOKEN_LIFETIME: u64 = 60;

/// The subject of portico's own service tokens: Backstage names the caller `external:portico`.
pub(crate) const SERVICE_SUBJECT: &str = "portico";

/// Portico's own service tokens, per issuer (a tenant) and audience, valid for
/// [`SERVICE_TOKEN_LIFETIME`]: a leaked one is worth a minute, and signing is not paid per request.
pub(crate) type ServiceTokens = Kept<(String, &'static str), String>;

impl ServiceTokens {
    /// A service token of `issuer` for `audience` with enough life left.
    pub(crate) fn token(&self, keys: &SigningKeys, issuer: &str, audience: &'static str) -> String {
        self.get_or_sign(
            keys,
            SERVICE_TOKEN_LIFETIME,
            |(kept_issuer, kept_audience)| kept_issuer == issuer && *kept_audience == audience,
            || (issuer.to_owned(), audience),
            |now, expires_at| {
                keys.sign(&json!({
                    "iss": issuer,
                    "aud": audience,
                    "sub": SERVICE_SUBJECT,
                    "iat": now,
                    "nbf": now.saturating_sub(5),
                    "exp": expires_at,
                }))
            },
        )
    }
}

impl SigningKeys {
    /// The assertion `subject` describes, issued at `now`, expiring at `expires_at`.
    pub(crate) fn assertion(
        &self,
        subject: &Subject<'_>,
        now: u64,
        expires_at: u64,
    ) -> HeaderValue {
        let mut claims = json!({
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
        });
        if let (Some((via, token_id)), Some(fields)) = (subject.via, claims.as_object_mut()) {
            fields.insert("via".into(), via.into());
            fields.insert("token_id".into(), token_id.into());
        }
        let token = self.sign(&claims);
        // A JWT is base64url and dots: always a valid header value.
        HeaderValue::from_str(&token).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// What the proxy asks of a user's `Assertions`: the kept assertion for `audience`, or one signed
    /// for a developer, valid `lifetime` seconds.
    fn signed(
        cache: &Assertions,
        keys: &SigningKeys,
        audience: &AppId,
        lifetime: u64,
    ) -> HeaderValue {
        cache.assertion(keys, audience, lifetime, |now, expires_at| {
            let subject = Subject {
                via: None,
                claims: &claims(&["developer"]),
                issuer: "https://portal.acme.example",
                audience,
            };
            keys.assertion(&subject, now, expires_at)
        })
    }

    #[test]
    fn tokens_verify_with_the_published_key_and_say_who() {
        let keys = SigningKeys::generate();
        let cache = Assertions::default();
        let token = signed(&cache, &keys, &AUDIENCE, 60);
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
        let first = signed(&cache, &keys, &AUDIENCE, 60);
        assert_eq!(signed(&cache, &keys, &AUDIENCE, 60), first);
        let other_app = AppId::new("status");
        let for_other_app = signed(&cache, &keys, &other_app, 60);
        assert_ne!(for_other_app, first, "another app, another token");
        assert_eq!(signed(&cache, &keys, &AUDIENCE, 60), first);
        let after_reload = signed(&cache, &keys, &AUDIENCE, 120);
        assert_ne!(after_reload, first, "a new lifetime, a new token");
        let rotated = SigningKeys::generate();
        assert_ne!(
            signed(&cache, &rotated, &AUDIENCE, 120),
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

    /// A fresh P-256 private key in PEM (PKCS#8).
    pub(crate) fn pem() -> String {
        let key = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    }

    fn key_file(name: &str) -> SigningKeyFile {
        SigningKeyFile {
            path: name.into(),
            pem: crate::config::Secret(pem()),
        }
    }

    #[test]
    fn a_reload_swaps_keys_only_when_they_changed() {
        let generated = SigningKeys::generate();
        // No files before and after: the generated key stays (assertions signed with it stay valid).
        assert!(generated.reloaded(&[]).unwrap().is_none());
        let (a, b) = (key_file("a.pem"), key_file("b.pem"));
        let from_a = generated
            .reloaded(std::slice::from_ref(&a))
            .unwrap()
            .unwrap();
        assert!(
            from_a.reloaded(std::slice::from_ref(&a)).unwrap().is_none(),
            "same file, same keys"
        );
        let rotated = from_a.reloaded(&[b.clone(), a.clone()]).unwrap().unwrap();
        assert_ne!(
            rotated.signing_kid(),
            from_a.signing_kid(),
            "the new first key signs"
        );
        // Files gone from the config: a generated key again (never a key the config no longer names).
        let back = rotated.reloaded(&[]).unwrap().unwrap();
        assert!(back.generated);
        let mut broken = a;
        broken.pem = crate::config::Secret("not a key".into());
        assert!(rotated.reloaded(&[broken]).is_err());
        assert!(check_pem("not a key").is_err());
        assert!(check_pem(&b.pem.0).is_ok());
    }
}
