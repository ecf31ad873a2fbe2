//! OpenID Connect: portico as the relying party (backend-for-frontend) of each tenant's IdP.
//!
//! Per tenant: discovery and JWKS fetched at start and refreshed in the background (an IdP that is down
//! does not stop the portal; its tenant says "sign-in unavailable"); the authorization code flow with
//! PKCE S256, state and nonce, always; the callback's checks (single-use state bound to the browser,
//! issuer, ID token signature/issuer/audience/expiry/nonce with an allow-list of algorithms); refresh that
//! re-reads groups; RP-initiated and back-channel logout. This is the only module that talks to IdPs.
//! Tokens never leave the server: they live in the session record, never in a cookie or a page.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreSubjectIdentifierType, CoreTokenIntrospectionResponse,
    CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, JsonWebKey, LogoutProviderMetadata,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RefreshToken, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuthError;
use super::session::{OidcTokens, Session, User, unix_now};
use crate::config::{OidcSettings, SigningAlg, Tenant};
use crate::error::error_chain;

/// Every claim the standard types do not name, so any groups claim path can be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraClaims(HashMap<String, Value>);
impl AdditionalClaims for ExtraClaims {}

/// Discovery fields beyond OIDC Discovery 1.0 that portico acts on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraProviderMetadata {
    /// RFC 9207: the IdP puts `iss` on every authorization response, so one without it is forged.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraProviderMetadata {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<ExtraProviderMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type IdFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<IdFields, CoreTokenType>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A login that went to the IdP and has not come back yet.
struct PendingLogin {
    tenant: String,
    /// Who started it, for the per-client bound.
    client: ClientKey,
    pkce_verifier: String,
    nonce: String,
    return_to: String,
    /// Also in a cookie of the browser that started the login: a callback from another browser fails.
    browser_binding: String,
    started: Instant,
}

/// How long a user may take at the IdP's login page.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Refresh this long before the access token expires (at most a quarter of its lifetime).
const REFRESH_MARGIN_SECS: u64 = 30;

/// What the background discovery knows about one tenant's IdP.
struct Discovered {
    client: OidcClient,
    issuer: String,
    jwks: CoreJsonWebKeySet,
    end_session: Option<EndSessionUrl>,
    /// The discovery document says `authorization_response_iss_parameter_supported: true` (RFC 9207).
    requires_iss: bool,
}

/// The state of one tenant's IdP, for pages and readiness.
#[derive(Debug, Clone)]
pub enum IdpStatus {
    Starting,
    Ready,
    Unavailable(String),
}

/// One tenant's relying party.
pub struct TenantIdp {
    settings: OidcSettings,
    redirect_uri: String,
    post_logout_uri: String,
    discovered: ArcSwapOption<Discovered>,
    status: ArcSwap<IdpStatus>,
    /// When discovery last ran, so a token naming an unknown key triggers at most one fetch every few seconds.
    last_discovery: Mutex<Option<Instant>>,
}

/// The shortest time between two discoveries of one IdP prompted by tokens (not by the schedule).
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// All tenants' relying parties, plus the state of logins in flight and refreshes under way.
pub struct OidcRegistry {
    idps: HashMap<String, Arc<TenantIdp>>,
    http: openidconnect::reqwest::Client,
    pending: Mutex<PendingLogins>,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where the browser goes next after a successful callback.
pub struct LoginDone {
    pub session: Session,
    pub return_to: String,
}

/// The start of a login: the IdP URL to send the browser to and the binding cookie's value.
pub struct LoginStart {
    pub authorize_url: String,
    pub browser_binding: String,
}

/// What a back-channel logout token asks to end.
#[derive(Debug)]
pub struct LogoutSubject {
    pub subject: Option<String>,
    pub sid: Option<String>,
}

impl OidcRegistry {
    /// Prepares a relying party for every OIDC tenant. Nothing is fetched yet: see [`Self::run_discovery`].
    pub fn new(tenants: &[Arc<Tenant>]) -> Self {
        let mut idps = HashMap::new();
        for tenant in tenants {
            let (crate::config::SignIn::Oidc(settings), Some(origin)) =
                (&tenant.sign_in, &tenant.public_origin)
            else {
                continue;
            };
            idps.insert(
                tenant.id.clone(),
                Arc::new(TenantIdp {
                    settings: settings.clone(),
                    redirect_uri: format!("{}/auth/callback", origin.origin),
                    post_logout_uri: format!("{}/auth/signed-out", origin.origin),
                    discovered: ArcSwapOption::empty(),
                    status: ArcSwap::from_pointee(IdpStatus::Starting),
                    last_discovery: Mutex::new(None),
                }),
            );
        }
        // Redirects are never followed: a discovery document must not be able to point the server
        // somewhere else (SSRF); timeouts keep a slow IdP from holding requests.
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        OidcRegistry {
            idps,
            http,
            pending: Mutex::new(PendingLogins::default()),
            refresh_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Each tenant's IdP status, for readiness.
    pub fn statuses(&self) -> Vec<(String, IdpStatus)> {
        let mut statuses: Vec<(String, IdpStatus)> = self
            .idps
            .iter()
            .map(|(tenant, idp)| (tenant.clone(), (**idp.status.load()).clone()))
            .collect();
        statuses.sort_by(|a, b| a.0.cmp(&b.0));
        statuses
    }

    /// Discovers every IdP once now, then keeps them fresh: every 15 minutes when healthy, with backoff
    /// (1 s doubling to 60 s) while one is unreachable. Runs until the process ends.
    pub async fn run_discovery(self: Arc<Self>) {
        let mut tasks = Vec::new();
        for (tenant, idp) in &self.idps {
            let registry = self.clone();
            let idp = idp.clone();
            let tenant = tenant.clone();
            tasks.push(tokio::spawn(async move {
                let mut backoff = Duration::from_secs(1);
                loop {
                    match registry.discover(&idp).await {
                        Ok(()) => {
                            tracing::info!(tenant, issuer = %idp.settings.issuer, "OpenID Provider discovered");
                            backoff = Duration::from_secs(1);
                            tokio::time::sleep(Duration::from_secs(900)).await;
                        }
                        Err(reason) => {
                            tracing::warn!(tenant, issuer = %idp.settings.issuer, reason, "OpenID Provider unavailable; retrying");
                            idp.status.store(Arc::new(IdpStatus::Unavailable(reason)));
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Discovers one IdP now (also used when a token names a key we have not seen: the IdP rotated).
    async fn discover(&self, idp: &TenantIdp) -> Result<(), String> {
        let issuer = IssuerUrl::new(idp.settings.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|error| error_chain(&error))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let requires_iss = metadata
            .additional_metadata()
            .additional_metadata
            .authorization_response_iss_parameter_supported
            == Some(true);
        let jwks = metadata.jwks().clone();
        let redirect = RedirectUrl::new(idp.redirect_uri.clone()).map_err(|e| e.to_string())?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(idp.settings.client_id.clone()),
            Some(ClientSecret::new(idp.settings.client_secret.0.clone())),
        )
        .set_redirect_uri(redirect);
        idp.discovered.store(Some(Arc::new(Discovered {
            client,
            issuer: idp.settings.issuer.clone(),
            jwks,
            end_session,
            requires_iss,
        })));
        idp.status.store(Arc::new(IdpStatus::Ready));
        if let Ok(mut last) = idp.last_discovery.lock() {
            *last = Some(Instant::now());
        }
        Ok(())
    }

    /// Discovers again if the last discovery is older than `REDISCOVERY_INTERVAL`: the IdP may have rotated its keys.
    /// Returns whether it did, so the caller retries once. Rate-limited, so tokens naming unknown keys
    /// cannot make portico hammer the IdP.
    async fn rediscover_if_stale(&self, idp: &TenantIdp) -> bool {
        let due = match idp.last_discovery.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|at| at.elapsed() >= REDISCOVERY_INTERVAL);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        due && self.discover(idp).await.is_ok()
    }

    fn idp(&self, tenant: &str) -> Result<(&Arc<TenantIdp>, Arc<Discovered>), AuthError> {
        let idp = self
            .idps
            .get(tenant)
            .ok_or_else(|| AuthError::SignInUnavailable("no IdP configured".into()))?;
        match idp.discovered.load_full() {
            Some(discovered) => Ok((idp, discovered)),
            None => {
                let reason = match &**idp.status.load() {
                    IdpStatus::Unavailable(reason) => reason.clone(),
                    _ => "the identity provider has not been reached yet".into(),
                };
                Err(AuthError::SignInUnavailable(reason))
            }
        }
    }

    /// Starts a login: PKCE S256, state and nonce, all fresh; remembers them server-side, within the
    /// `limits` per client (`client` is the connection's peer address) and per tenant.
    pub fn begin_login(
        &self,
        tenant: &str,
        client: IpAddr,
        limits: PendingLimits,
        return_to: String,
    ) -> Result<LoginStart, AuthError> {
        let (idp, discovered) = self.idp(tenant)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in idp
            .settings
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != "openid")
        {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let browser_binding = random_token();
        let login = PendingLogin {
            tenant: tenant.to_owned(),
            client: ClientKey::of(client),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
            return_to,
            browser_binding: browser_binding.clone(),
            started: Instant::now(),
        };
        self.pending
            .lock()
            .map_err(|_| AuthError::StoreUnavailable)?
            .insert(state.secret().clone(), login, limits)?;
        Ok(LoginStart {
            authorize_url: url.to_string(),
            browser_binding,
        })
    }

    /// Completes a login from the IdP's redirect. Every check failing is a `LoginFailed` with the reason.
    pub async fn finish_login(
        &self,
        tenant: &str,
        callback: &CallbackParams,
        browser_binding: Option<&str>,
    ) -> Result<LoginDone, AuthError> {
        let failed = |reason: &str| AuthError::LoginFailed(reason.to_owned());
        let state = callback
            .state
            .as_deref()
            .ok_or_else(|| failed("the callback has no state"))?;
        // Taking the pending login makes the state single-use: a replayed callback finds nothing.
        let pending = self
            .pending
            .lock()
            .map_err(|_| AuthError::StoreUnavailable)?
            .take(state)
            .ok_or_else(|| failed("unknown or already used state"))?;
        if pending.tenant != tenant {
            return Err(failed("the login was started for another tenant"));
        }
        if !browser_binding.is_some_and(|binding| {
            super::csrf::constant_time_eq(binding.as_bytes(), pending.browser_binding.as_bytes())
        }) {
            return Err(failed("the login was started in another browser"));
        }
        if pending.started.elapsed() > LOGIN_TIMEOUT {
            return Err(failed("the login took too long"));
        }
        if let Some(error) = &callback.error {
            let description = callback.error_description.as_deref().unwrap_or("");
            return Err(AuthError::LoginFailed(format!(
                "the identity provider answered `{error}` {description}"
            )));
        }
        let (idp, discovered) = self.idp(tenant)?;
        // RFC 9207 (defends against IdP mix-up): an `iss` on the callback must be exactly our IdP's
        // issuer, and an IdP that advertises the parameter always sends it, so a response without it
        // did not come from that IdP. Checked before the code goes anywhere.
        match &callback.iss {
            Some(iss) if *iss != discovered.issuer => {
                return Err(failed("the callback came from another issuer"));
            }
            None if discovered.requires_iss => {
                return Err(failed(
                    "the callback has no `iss`, which the identity provider always sends (RFC 9207)",
                ));
            }
            _ => {}
        }
        let code = callback
            .code
            .clone()
            .ok_or_else(|| failed("the callback has no code"))?;
        let response = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|error| AuthError::LoginFailed(error.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|error| {
                AuthError::LoginFailed(format!("code exchange failed: {}", error_chain(&error)))
            })?;
        let nonce = Nonce::new(pending.nonce);
        let verified = match self.verified_user(idp, &discovered, &response, Some(&nonce), None) {
            // Signed with a key we have not seen: the IdP may have rotated since discovery.
            Err(_) if self.rediscover_if_stale(idp).await => {
                let (_, rediscovered) = self.idp(tenant)?;
                self.verified_user(idp, &rediscovered, &response, Some(&nonce), None)
            }
            other => other,
        };
        let (user, sid) = verified?;
        let tokens = tokens_from(&response, None, sid)?;
        Ok(LoginDone {
            session: Session::new(tenant, user).with_oidc(tokens),
            return_to: pending.return_to,
        })
    }

    /// Verifies the response's ID token and reads the user from it. `expected_subject` is set on refresh.
    fn verified_user(
        &self,
        idp: &TenantIdp,
        discovered: &Discovered,
        response: &OidcTokenResponse,
        nonce: Option<&Nonce>,
        expected_subject: Option<&str>,
    ) -> Result<(User, Option<String>), AuthError> {
        let failed = |reason: String| AuthError::LoginFailed(reason);
        let id_token = response
            .id_token()
            .ok_or_else(|| failed("the token response has no ID token".into()))?;
        let algs: Vec<CoreJwsSigningAlgorithm> = idp
            .settings
            .signing_algs
            .iter()
            .map(|alg| core_alg(*alg))
            .collect();
        let verifier = discovered.client.id_token_verifier().set_allowed_algs(algs);
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // A refreshed ID token carries no nonce of ours (OIDC Core 12.2).
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|error| failed(format!("ID token rejected: {error}")))?;
        if let Some(expected_hash) = claims.access_token_hash() {
            let alg = id_token.signing_alg().map_err(|e| failed(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| failed(e.to_string()))?;
            let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
                .map_err(|e| failed(e.to_string()))?;
            if actual != *expected_hash {
                return Err(failed(
                    "the access token does not belong to the ID token".into(),
                ));
            }
        }
        let subject = claims.subject().as_str().to_owned();
        if expected_subject.is_some_and(|expected| expected != subject) {
            return Err(failed("the refreshed ID token names another user".into()));
        }
        let extra = &claims.additional_claims().0;
        let groups = groups_at(extra, &idp.settings.groups_claim);
        // An address the IdP has not verified is just text the user typed: it never becomes identity
        // (apps and Backstage match users by email), so the session keeps only a verified one.
        let email = claims
            .email()
            .filter(|_| claims.email_verified() == Some(true))
            .map(|email| email.as_str().to_owned())
            .unwrap_or_default();
        let name = claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.as_str().to_owned())
            .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| {
                if email.is_empty() {
                    subject.clone()
                } else {
                    email.clone()
                }
            });
        let sid = extra.get("sid").and_then(Value::as_str).map(str::to_owned);
        Ok((
            User {
                subject,
                name,
                email,
                groups,
            },
            sid,
        ))
    }

    /// Refreshes the session's tokens if the access token is close to expiry. Concurrent requests of one
    /// session share one refresh. A failed refresh is an error: the caller ends the session.
    pub async fn refresh_if_needed(
        &self,
        session: Arc<Session>,
        store: &dyn super::session::SessionStore,
    ) -> Result<Arc<Session>, AuthError> {
        let needs_refresh = |session: &Session| {
            session.oidc.as_ref().is_some_and(|tokens| {
                tokens.refresh_token.is_some() && tokens.refresh_at <= unix_now()
            })
        };
        if !needs_refresh(&session) {
            return Ok(session);
        }
        let lock = {
            let mut locks = self
                .refresh_locks
                .lock()
                .map_err(|_| AuthError::StoreUnavailable)?;
            locks
                .entry(session.id.as_str().to_owned())
                .or_default()
                .clone()
        };
        let _guard = lock.lock().await;
        // Another request may have refreshed while this one waited: read the session again.
        let current = store
            .get(&session.id)
            .await
            .map_err(|_| AuthError::StoreUnavailable)?
            .ok_or(AuthError::NotSignedIn)?;
        let result = if needs_refresh(&current) {
            self.refresh(current, store).await
        } else {
            Ok(current)
        };
        if let Ok(mut locks) = self.refresh_locks.lock() {
            if Arc::strong_count(&lock) <= 2 {
                locks.remove(session.id.as_str());
            }
        }
        result
    }

    async fn refresh(
        &self,
        current: Arc<Session>,
        store: &dyn super::session::SessionStore,
    ) -> Result<Arc<Session>, AuthError> {
        let (idp, discovered) = self.idp(&current.tenant)?;
        let mut session = Arc::unwrap_or_clone(current);
        let Some(tokens) = session.oidc.clone() else {
            return Ok(Arc::new(session));
        };
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Ok(Arc::new(session));
        };
        let refresh_token = RefreshToken::new(refresh_token);
        let response = discovered
            .client
            .exchange_refresh_token(&refresh_token)
            .map_err(|error| AuthError::RefreshFailed(error.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|error| AuthError::RefreshFailed(error_chain(&error)))?;
        let mut sid = tokens.sid.clone();
        if response.id_token().is_some() {
            // Groups are read again, so a user removed from a group loses the role now.
            let (user, new_sid) = self
                .verified_user(
                    idp,
                    &discovered,
                    &response,
                    None,
                    Some(&session.user.subject),
                )
                .map_err(|error| AuthError::RefreshFailed(error.to_string()))?;
            session.user = user;
            sid = new_sid.or(sid);
        }
        session.oidc = Some(tokens_from(&response, Some(&tokens), sid)?);
        store
            .insert(session.clone())
            .await
            .map_err(|_| AuthError::StoreUnavailable)?;
        Ok(Arc::new(session))
    }

    /// Where to send the browser after the session ended: the IdP's end-session endpoint when it has one.
    pub fn end_session_url(&self, session: &Session) -> Option<String> {
        let tokens = session.oidc.as_ref()?;
        let (idp, discovered) = self.idp(&session.tenant).ok()?;
        let endpoint = discovered.end_session.clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(idp.settings.client_id.clone()));
        if let Ok(redirect) = PostLogoutRedirectUrl::new(idp.post_logout_uri.clone()) {
            request = request.set_post_logout_redirect_uri(redirect);
        }
        let mut url = request.http_get_url();
        url.query_pairs_mut()
            .append_pair("id_token_hint", &tokens.id_token);
        Some(url.to_string())
    }

    /// Validates an OIDC Back-Channel Logout 1.0 logout token for `tenant` and says whose sessions to end.
    pub async fn verify_logout_token(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<LogoutSubject, AuthError> {
        match self.check_logout_token(tenant, token) {
            Err(LogoutTokenError::UnknownKey) => {
                // The IdP may have rotated its keys since the last discovery: look once more.
                let (idp, _) = self.idp(tenant)?;
                if !self.rediscover_if_stale(idp).await {
                    return Err(LogoutTokenError::UnknownKey.into_auth());
                }
                self.check_logout_token(tenant, token)
                    .map_err(LogoutTokenError::into_auth)
            }
            other => other.map_err(LogoutTokenError::into_auth),
        }
    }

    fn check_logout_token(
        &self,
        tenant: &str,
        token: &str,
    ) -> Result<LogoutSubject, LogoutTokenError> {
        let invalid = |reason: &str| LogoutTokenError::Invalid(reason.to_owned());
        let (idp, discovered) = self
            .idp(tenant)
            .map_err(|_| invalid("sign-in is not available"))?;
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("not a signed JWT"));
        };
        let header: Value = decode_json(header_b64).ok_or_else(|| invalid("unreadable header"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("none");
        if !idp
            .settings
            .signing_algs
            .iter()
            .any(|allowed| allowed.as_str() == alg_name)
        {
            return Err(invalid("signing algorithm not allowed"));
        }
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(Value::String(alg_name.to_owned()))
                .map_err(|_| invalid("unknown algorithm"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| invalid("unreadable signature"))?;
        let message = format!("{header_b64}.{payload_b64}");
        let kid = header.get("kid").and_then(Value::as_str);
        let candidates: Vec<&CoreJsonWebKey> = discovered
            .jwks
            .keys()
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.key_id().is_some_and(|id| id.as_str() == kid)))
            .collect();
        if candidates.is_empty() {
            return Err(LogoutTokenError::UnknownKey);
        }
        if !candidates.iter().any(|key| {
            key.verify_signature(&alg, message.as_bytes(), &signature)
                .is_ok()
        }) {
            return Err(invalid("bad signature"));
        }
        let claims: Value = decode_json(payload_b64).ok_or_else(|| invalid("unreadable claims"))?;
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss.trim_end_matches('/') != discovered.issuer.trim_end_matches('/') {
            return Err(invalid("wrong issuer"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(aud)) => *aud == idp.settings.client_id,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|aud| aud.as_str() == Some(idp.settings.client_id.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(invalid("wrong audience"));
        }
        let now = unix_now();
        let iat = claims
            .get("iat")
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid("no iat"))?;
        if iat > now + 60 {
            return Err(invalid("issued in the future"));
        }
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            if exp + 60 < now {
                return Err(invalid("expired"));
            }
        }
        let has_event = claims
            .get("events")
            .and_then(Value::as_object)
            .is_some_and(|events| {
                events.contains_key("http://schemas.openid.net/event/backchannel-logout")
            });
        if !has_event {
            return Err(invalid("not a back-channel logout event"));
        }
        if claims.get("nonce").is_some() {
            return Err(invalid("a logout token must not carry a nonce"));
        }
        let subject = claims.get("sub").and_then(Value::as_str).map(str::to_owned);
        let sid = claims.get("sid").and_then(Value::as_str).map(str::to_owned);
        if subject.is_none() && sid.is_none() {
            return Err(invalid("neither sub nor sid"));
        }
        Ok(LogoutSubject { subject, sid })
    }
}

enum LogoutTokenError {
    UnknownKey,
    Invalid(String),
}

impl LogoutTokenError {
    fn into_auth(self) -> AuthError {
        match self {
            LogoutTokenError::UnknownKey => {
                AuthError::InvalidLogoutToken("signed with an unknown key".into())
            }
            LogoutTokenError::Invalid(reason) => AuthError::InvalidLogoutToken(reason),
        }
    }
}

/// Who started a login, for the per-client bound: the peer's IPv4 address, or its IPv6 /64 (one
/// subscriber's whole prefix, which a single attacker can draw addresses from at will).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(address: IpAddr) -> ClientKey {
        match address {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => ClientKey(IpAddr::V6(std::net::Ipv6Addr::from(
                    u128::from(v6) & !((1u128 << 64) - 1),
                ))),
            },
        }
    }
}

/// How many logins may be in flight at once (from `sessions:` in the config).
#[derive(Clone, Copy, Debug)]
pub struct PendingLimits {
    pub per_client: usize,
    pub per_tenant: usize,
}

/// Logins in flight, bounded per tenant and per client so that a flood of `/auth/login` from one place
/// neither exhausts memory nor evicts other people's sign-ins: a client at its share gets 429, and a
/// full tenant makes the client holding the most give up its oldest login, never someone with fewer.
#[derive(Default)]
struct PendingLogins {
    by_state: HashMap<String, PendingLogin>,
    /// Per tenant: each client's states, oldest first, and how many the tenant holds.
    tenants: HashMap<String, TenantLogins>,
}

#[derive(Default)]
struct TenantLogins {
    clients: HashMap<ClientKey, VecDeque<(Instant, String)>>,
    total: usize,
}

impl PendingLogins {
    fn insert(
        &mut self,
        state: String,
        login: PendingLogin,
        limits: PendingLimits,
    ) -> Result<(), AuthError> {
        let tenant = self.tenants.entry(login.tenant.clone()).or_default();
        let queue = tenant.clients.entry(login.client).or_default();
        expire(queue, &mut tenant.total, &mut self.by_state);
        if queue.len() >= limits.per_client {
            // Retry when this client's oldest login times out (at most the login timeout).
            let retry_after = queue.front().map_or(LOGIN_TIMEOUT, |(started, _)| {
                LOGIN_TIMEOUT.saturating_sub(started.elapsed())
            });
            return Err(AuthError::TooManySignIns {
                retry_after: retry_after.as_secs().max(1),
            });
        }
        let own = queue.len();
        if tenant.total >= limits.per_tenant {
            for queue in tenant.clients.values_mut() {
                expire(queue, &mut tenant.total, &mut self.by_state);
            }
            tenant
                .clients
                .retain(|client, queue| !queue.is_empty() || *client == login.client);
        }
        if tenant.total >= limits.per_tenant {
            // Fair share: the client with the most logins in flight gives up its oldest, but only if
            // it holds more than this one; otherwise this client is the one over its share.
            let largest = tenant
                .clients
                .iter_mut()
                .max_by_key(|(_, queue)| queue.len())
                .filter(|(_, queue)| queue.len() > own);
            let Some((_, queue)) = largest else {
                return Err(AuthError::TooManySignIns {
                    retry_after: LOGIN_TIMEOUT.as_secs(),
                });
            };
            if let Some((_, oldest)) = queue.pop_front() {
                self.by_state.remove(&oldest);
                tenant.total -= 1;
            }
        }
        tenant
            .clients
            .entry(login.client)
            .or_default()
            .push_back((login.started, state.clone()));
        tenant.total += 1;
        self.by_state.insert(state, login);
        Ok(())
    }

    /// Takes the login out for good, so a state can be used only once.
    fn take(&mut self, state: &str) -> Option<PendingLogin> {
        let login = self.by_state.remove(state)?;
        if let Some(tenant) = self.tenants.get_mut(&login.tenant) {
            if let Some(queue) = tenant.clients.get_mut(&login.client) {
                if let Some(position) = queue.iter().position(|(_, s)| s == state) {
                    queue.remove(position);
                    tenant.total -= 1;
                }
                if queue.is_empty() {
                    tenant.clients.remove(&login.client);
                }
            }
        }
        Some(login)
    }
}

/// Drops a client's timed-out logins (its queue is oldest first).
fn expire(
    queue: &mut VecDeque<(Instant, String)>,
    total: &mut usize,
    by_state: &mut HashMap<String, PendingLogin>,
) {
    while let Some((started, state)) = queue.front() {
        if started.elapsed() < LOGIN_TIMEOUT {
            break;
        }
        by_state.remove(state);
        queue.pop_front();
        *total -= 1;
    }
}

/// The query of `/auth/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn tokens_from(
    response: &OidcTokenResponse,
    previous: Option<&OidcTokens>,
    sid: Option<String>,
) -> Result<OidcTokens, AuthError> {
    let id_token = response
        .id_token()
        .map(ToString::to_string)
        .or_else(|| previous.map(|tokens| tokens.id_token.clone()))
        .ok_or_else(|| AuthError::LoginFailed("no ID token".into()))?;
    let lifetime = response
        .expires_in()
        .map_or(300, |duration| duration.as_secs());
    let now = unix_now();
    Ok(OidcTokens {
        access_token: response.access_token().secret().clone(),
        expires_at: now + lifetime,
        refresh_at: now + lifetime - REFRESH_MARGIN_SECS.min(lifetime / 4),
        // Without a rotated refresh token, the old one stays valid (RFC 6749 §6).
        refresh_token: response
            .refresh_token()
            .map(|token| token.secret().clone())
            .or_else(|| previous.and_then(|tokens| tokens.refresh_token.clone())),
        id_token,
        sid,
    })
}

/// Reads the groups at a claim path: an array of strings, or one string of space- or comma-separated names.
pub fn groups_at(claims: &HashMap<String, Value>, path: &[String]) -> Vec<String> {
    let Some((first, rest)) = path.split_first() else {
        return Vec::new();
    };
    let mut value = match claims.get(first) {
        Some(value) => value,
        None => return Vec::new(),
    };
    for key in rest {
        match value.get(key) {
            Some(inner) => value = inner,
            None => return Vec::new(),
        }
    }
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(text) => text
            .split([' ', ','])
            .filter(|group| !group.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn decode_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The openidconnect name of an algorithm config accepted (`config::SigningAlg`, parsed once there).
fn core_alg(alg: SigningAlg) -> CoreJwsSigningAlgorithm {
    match alg {
        SigningAlg::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        SigningAlg::Rs384 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        SigningAlg::Rs512 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        SigningAlg::Ps256 => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        SigningAlg::Ps384 => CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        SigningAlg::Ps512 => CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        SigningAlg::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        SigningAlg::Es384 => CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        SigningAlg::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> HashMap<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    fn login(tenant: &str, client: &str) -> PendingLogin {
        PendingLogin {
            tenant: tenant.into(),
            client: ClientKey::of(client.parse().unwrap()),
            pkce_verifier: String::new(),
            nonce: String::new(),
            return_to: "/".into(),
            browser_binding: String::new(),
            started: Instant::now(),
        }
    }

    #[test]
    fn a_flood_from_one_client_neither_evicts_others_nor_grows() {
        let limits = PendingLimits {
            per_client: 3,
            per_tenant: 5,
        };
        let mut pending = PendingLogins::default();
        pending
            .insert("victim".into(), login("acme", "10.0.0.9"), limits)
            .unwrap();
        for n in 0..3 {
            pending
                .insert(format!("flood-{n}"), login("acme", "10.0.0.1"), limits)
                .unwrap();
        }
        let refused = pending.insert("flood-3".into(), login("acme", "10.0.0.1"), limits);
        assert!(
            matches!(refused, Err(AuthError::TooManySignIns { retry_after }) if retry_after > 0)
        );
        // Another tenant counts apart.
        pending
            .insert("other".into(), login("globex", "10.0.0.1"), limits)
            .unwrap();
        // The tenant fills up: a new client takes the place of the flooder's oldest, not the victim's.
        pending
            .insert("late".into(), login("acme", "10.0.0.7"), limits)
            .unwrap();
        pending
            .insert("later".into(), login("acme", "10.0.0.8"), limits)
            .unwrap();
        assert!(
            pending.take("flood-0").is_none(),
            "the biggest holder gave way"
        );
        assert!(pending.take("victim").is_some());
        assert!(pending.take("victim").is_none(), "a state is single-use");
        assert_eq!(pending.tenants["acme"].total, 4);
        assert_eq!(pending.by_state.len(), 5);
    }

    #[test]
    fn a_full_tenant_refuses_the_client_that_already_holds_the_most() {
        let limits = PendingLimits {
            per_client: 10,
            per_tenant: 2,
        };
        let mut pending = PendingLogins::default();
        pending
            .insert("a".into(), login("acme", "10.0.0.1"), limits)
            .unwrap();
        pending
            .insert("b".into(), login("acme", "10.0.0.2"), limits)
            .unwrap();
        assert!(
            pending
                .insert("c".into(), login("acme", "10.0.0.1"), limits)
                .is_err()
        );
        assert!(pending.take("a").is_some() && pending.take("b").is_some());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let key = |text: &str| ClientKey::of(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
    }

    #[test]
    fn groups_come_from_any_claim_path_and_shape() {
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            groups_at(&claims(r#"{"groups":["a","b"]}"#), &path("groups")),
            ["a", "b"]
        );
        assert_eq!(
            groups_at(
                &claims(r#"{"realm_access":{"roles":["x"]}}"#),
                &path("realm_access.roles")
            ),
            ["x"]
        );
        assert_eq!(
            groups_at(
                &claims(r#"{"cognito:groups":"a b,c"}"#),
                &path("cognito:groups")
            ),
            ["a", "b", "c"]
        );
        assert!(groups_at(&claims(r#"{"groups":42}"#), &path("groups")).is_empty());
        assert!(groups_at(&claims(r#"{}"#), &path("realm_access.roles")).is_empty());
    }
}
