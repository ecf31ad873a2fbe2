//! OpenID Connect: portico as the relying party (backend-for-frontend) of each tenant's IdP.
//!
//! Per tenant: discovery and JWKS fetched at start and then probed every `probe_interval` (with backoff
//! while the IdP is down, and at once when a token call cannot connect), so an outage and its end are
//! noticed within that interval plus [`PROBE_TIMEOUT`]; an IdP that is down does not stop the portal:
//! its tenant says "sign-in unavailable" at once and is `degraded` in readiness; the authorization code flow with
//! PKCE S256, state and nonce, always (`login`, bounded by `pending`); the callback's checks
//! (single-use state bound to the browser, issuer, ID token signature/issuer/audience/expiry/nonce with
//! an allow-list of algorithms); refresh that re-reads groups (`refresh`); RP-initiated and
//! back-channel logout (`logout`); bearer access tokens, JWTs checked here and opaque ones asked
//! about at the IdP's introspection endpoint (`bearer`). This is the only module that talks to IdPs,
//! and it never follows a redirect. Tokens never leave the server: they live in the session record,
//! never in a cookie or a page. A service: it sees `Sessions`, never the app state or a request.

mod bearer;
mod login;
mod logout;
mod pending;
mod pending_redis;
mod refresh;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, Client, ClientId, ClientSecret,
    EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IntrospectionUrl, IssuerUrl, LogoutProviderMetadata, ProviderMetadata,
    RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::AuthError;
use crate::config::{OidcSettings, SignIn, SigningAlg, Tenant, TenantId};
use crate::http::error::error_chain;
use crate::shared::Redis;

pub use bearer::BearerUser;
pub use login::{CallbackParams, LoginDone, LoginStart, groups_at};
pub use logout::LogoutSubject;
pub use pending::{ClientKey, PendingLimits};
pub use refresh::Refreshed;

/// Every claim the standard types do not name, so any groups claim path can be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraClaims(pub(super) HashMap<String, Value>);
impl AdditionalClaims for ExtraClaims {}

/// Discovery fields beyond OIDC Discovery 1.0 that portico acts on.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraProviderMetadata {
    /// RFC 9207: the IdP puts `iss` on every authorization response, so one without it is forged.
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<bool>,
    /// RFC 8414/7662: where opaque access tokens are introspected (`auth.oidc.bearer.introspect`).
    /// Text, not a URL type: a malformed one must not fail the whole discovery (sign-in needs none).
    #[serde(default)]
    introspection_endpoint: Option<String>,
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
/// The IdP client, with or without its introspection endpoint set (`openidconnect` types that apart).
type IdpClient<HasIntrospectionUrl> = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    bearer::Introspected,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    HasIntrospectionUrl,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;
/// The client of sign-in and refresh.
type OidcClient = IdpClient<EndpointNotSet>;
/// The client that asks the introspection endpoint about opaque bearer tokens.
type IntrospectionClient = IdpClient<EndpointSet>;

/// What the background discovery knows about one tenant's IdP.
struct Discovered {
    client: OidcClient,
    issuer: String,
    /// The IdP's signing keys in the form `jsonwebtoken` verifies with: logout tokens and bearer access
    /// tokens (see [`logout`], [`bearer`]).
    idp_keys: logout::IdpKeys,
    end_session: Option<EndSessionUrl>,
    /// The discovery document says `authorization_response_iss_parameter_supported: true` (RFC 9207).
    requires_iss: bool,
    /// Set when the tenant introspects opaque bearer tokens and the IdP publishes where (see [`bearer`]).
    introspection: Option<IntrospectionClient>,
}

/// The state of one tenant's IdP, for pages and readiness.
#[derive(Debug, Clone)]
pub enum IdpStatus {
    /// Not tried yet (the first probe runs at start, bounded by [`PROBE_TIMEOUT`]).
    Starting,
    Ready,
    /// The last probe, or a token call since, could not reach it; the reason is for operators.
    Unavailable(String),
}

/// [`IdpStatus`] with its history, for readiness: since when, and when the IdP last answered.
#[derive(Debug, Clone)]
pub struct IdpHealth {
    pub status: IdpStatus,
    /// When the status last changed kind (a new reason for the same outage keeps the time).
    pub since: SystemTime,
    /// When the IdP last answered a probe; `None` if it never has.
    pub last_success: Option<SystemTime>,
    /// Whether readiness waits for this IdP's first probe: yes for the IdPs of the config portico
    /// started with; no for one a reload added, which would otherwise take every instance out of
    /// rotation at once for its first probe.
    pub holds_readiness: bool,
}

impl IdpHealth {
    fn starting() -> Self {
        IdpHealth {
            status: IdpStatus::Starting,
            since: SystemTime::now(),
            last_success: None,
            holds_readiness: true,
        }
    }
}

/// One tenant's relying party.
pub struct TenantIdp {
    settings: OidcSettings,
    redirect_uri: String,
    post_logout_uri: String,
    discovered: ArcSwapOption<Discovered>,
    health: Mutex<IdpHealth>,
    /// Cuts the probe's wait short: a token call just failed to reach the IdP, so check now.
    wake: tokio::sync::Notify,
    /// When keys were last fetched because a token named one we do not know, per kind of trigger.
    key_fetches: Mutex<KeyFetches>,
    /// The `jti`s of logout tokens already acted on, until they expire: a replayed token is refused.
    seen_logout_tokens: Mutex<logout::SeenTokens>,
    /// The IdP's recent active answers about opaque bearer tokens (see [`bearer`]).
    /// Introspection calls in flight may not exceed [`bearer::INTROSPECTIONS_IN_FLIGHT`]: refusals are
    /// not cached, so a flood of made-up opaque tokens must not become a flood of calls to the IdP.
    introspecting: tokio::sync::Semaphore,
    introspected: Mutex<bearer::IntrospectionCache>,
}

/// What prompted fetching the IdP's keys outside the probe schedule. Each has its own rate limit, so
/// logout tokens (which anyone can post) cannot use up the fetch a rotated ID token needs.
#[derive(Debug, Clone, Copy)]
enum KeyTrigger {
    /// An ID token from the token endpoint (code exchange or refresh), which only the IdP sends.
    SignIn,
    /// A back-channel logout token, posted by anyone who can reach portico.
    Logout,
    /// A bearer access token, presented by anyone who can reach portico.
    Bearer,
}

#[derive(Default)]
struct KeyFetches {
    id_token: Option<Instant>,
    logout_token: Option<Instant>,
    access_token: Option<Instant>,
}

impl TenantIdp {
    /// A tenant's relying party, not yet discovered; `None` for a tenant that does not use OIDC.
    fn new(tenant: &Tenant) -> Option<TenantIdp> {
        let (SignIn::Oidc(settings), Some(origin)) = (&tenant.sign_in, &tenant.public_origin)
        else {
            return None;
        };
        Some(TenantIdp {
            settings: settings.clone(),
            redirect_uri: format!("{}/auth/callback", origin.origin),
            post_logout_uri: format!("{}/auth/signed-out", origin.origin),
            discovered: ArcSwapOption::empty(),
            health: Mutex::new(IdpHealth::starting()),
            wake: tokio::sync::Notify::new(),
            key_fetches: Mutex::default(),
            seen_logout_tokens: Mutex::default(),
            introspected: Mutex::default(),
            introspecting: tokio::sync::Semaphore::new(bearer::INTROSPECTIONS_IN_FLIGHT),
        })
    }

    fn status(&self) -> IdpStatus {
        self.health.lock().status.clone()
    }

    /// Records a probe's or a token call's finding; returns whether the kind of status changed.
    fn set_status(&self, status: IdpStatus) -> bool {
        let now = SystemTime::now();
        let mut health = self.health.lock();
        let changed = std::mem::discriminant(&health.status) != std::mem::discriminant(&status);
        if changed {
            health.since = now;
        }
        if matches!(status, IdpStatus::Ready) {
            health.last_success = Some(now);
        }
        health.status = status;
        changed
    }

    /// A token call could not reach the IdP: sign-in says so at once, and the probe checks now.
    fn mark_unreachable(&self, reason: String) {
        if self.set_status(IdpStatus::Unavailable(reason)) {
            tracing::warn!(issuer = %self.settings.issuer, "OpenID Provider unreachable from a token call");
        }
        self.wake.notify_one();
    }
}

/// The HTTP client of token calls (code exchange, refresh): the IdP client, except that an HTTP 5xx
/// answer is an error here. It is an error page of the IdP or of a proxy in front of it, not the IdP's
/// verdict on the grant, so the caller treats it as not reaching the IdP.
struct TokenHttp<'a>(&'a openidconnect::reqwest::Client);

type TokenHttpError = openidconnect::HttpClientError<openidconnect::reqwest::Error>;

impl<'c> openidconnect::AsyncHttpClient<'c> for TokenHttp<'_> {
    type Error = TokenHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, TokenHttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = openidconnect::AsyncHttpClient::call(self.0, request).await?;
            if response.status().is_server_error() {
                return Err(openidconnect::HttpClientError::Other(format!(
                    "the identity provider answered HTTP {}",
                    response.status()
                )));
            }
            Ok(response)
        })
    }
}

/// The longest one probe (discovery document and keys) may take before the IdP counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest time between two probes, also when token calls keep waking the probe.
const MIN_PROBE_GAP: Duration = Duration::from_secs(1);
/// Keys are fetched at most this often per IdP and trigger because a token names an unknown key (the
/// probe fetches them on its own schedule too).
const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The HTTP client for IdPs could not be built; portico does not start without it (a default client
/// would follow redirects and have no timeouts).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for identity providers")]
pub struct ClientError(#[source] openidconnect::reqwest::Error);

/// All tenants' relying parties, plus the state of logins in flight and refreshes under way.
pub struct OidcRegistry {
    /// Swapped whole by [`Self::apply`] when a reload changes the tenants' sign-in.
    idps: ArcSwap<HashMap<TenantId, Arc<TenantIdp>>>,
    http: openidconnect::reqwest::Client,
    pending: pending::PendingStore,
    /// One refresh per session at a time in this process; across instances, see [`Self::redis`].
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Set when `sessions.store` is `redis`: the refresh lock every instance takes (see `refresh`).
    redis: Option<Arc<Redis>>,
}

impl OidcRegistry {
    /// Prepares a relying party for every OIDC tenant. Nothing is fetched yet: see [`Self::run_discovery`].
    pub fn new(tenants: &[Arc<Tenant>]) -> Result<Self, ClientError> {
        let idps = tenants
            .iter()
            .filter_map(|tenant| Some((tenant.id.clone(), Arc::new(TenantIdp::new(tenant)?))))
            .collect();
        // Redirects are never followed: a discovery document must not be able to point the server
        // somewhere else (SSRF); timeouts keep a slow IdP from holding requests.
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(ClientError)?;
        Ok(OidcRegistry {
            idps: ArcSwap::from_pointee(idps),
            http,
            pending: pending::PendingStore::Memory(Mutex::default()),
            refresh_locks: Mutex::default(),
            redis: None,
        })
    }

    /// Keeps logins in flight and refresh locks in `redis`, shared by every instance, instead of in
    /// this process (`sessions.store: redis`).
    #[must_use]
    pub fn shared_through(mut self, redis: Option<Arc<Redis>>) -> Self {
        if let Some(redis) = &redis {
            self.pending =
                pending::PendingStore::Redis(pending_redis::RedisPending::new(redis.clone()));
        }
        self.redis = redis;
        self
    }

    /// Brings the registry in line with a reloaded config's tenants: a tenant whose sign-in is
    /// unchanged keeps its relying party (discovered metadata, status, replay memory); a new tenant, or
    /// one whose issuer, client, scopes, algorithms or public origin changed, gets a fresh one whose
    /// discovery starts now; a tenant no longer there (or no longer on OIDC) is dropped, and its
    /// discovery stops at its next turn. Returns the tenants whose relying party is new.
    pub fn apply(self: &Arc<Self>, tenants: &[Arc<Tenant>]) -> Vec<TenantId> {
        let current = self.idps.load_full();
        let mut next = HashMap::new();
        let mut fresh = Vec::new();
        for tenant in tenants {
            let Some(wanted) = TenantIdp::new(tenant) else {
                continue;
            };
            let kept = current.get(&tenant.id).filter(|idp| {
                idp.settings == wanted.settings
                    && idp.redirect_uri == wanted.redirect_uri
                    && idp.post_logout_uri == wanted.post_logout_uri
            });
            let idp = match kept {
                Some(idp) => idp.clone(),
                None => {
                    fresh.push(tenant.id.clone());
                    wanted.health.lock().holds_readiness = false;
                    Arc::new(wanted)
                }
            };
            next.insert(tenant.id.clone(), idp);
        }
        self.idps.store(Arc::new(next));
        let idps = self.idps.load();
        for tenant in &fresh {
            if let Some(idp) = idps.get(tenant) {
                tokio::spawn(self.clone().keep_discovered(tenant.clone(), idp.clone()));
            }
        }
        fresh
    }

    /// Whether `idp` is still the registry's relying party for `tenant` (not replaced by a reload).
    fn is_current(&self, tenant: &TenantId, idp: &Arc<TenantIdp>) -> bool {
        self.idps
            .load()
            .get(tenant)
            .is_some_and(|current| Arc::ptr_eq(current, idp))
    }

    /// Each tenant's IdP status, for readiness.
    pub fn statuses(&self) -> Vec<(TenantId, IdpStatus)> {
        self.health()
            .into_iter()
            .map(|(tenant, health)| (tenant, health.status))
            .collect()
    }

    /// Each tenant's IdP status with since when and the last success, by tenant id.
    pub fn health(&self) -> Vec<(TenantId, IdpHealth)> {
        let mut health: Vec<(TenantId, IdpHealth)> = self
            .idps
            .load()
            .iter()
            .map(|(tenant, idp)| (tenant.clone(), idp.health.lock().clone()))
            .collect();
        health.sort_by(|a, b| a.0.cmp(&b.0));
        health
    }

    /// Probes every IdP now, then keeps probing: every `auth.oidc.probe_interval` while it answers,
    /// with backoff (1 s doubling up to that interval) while it does not. So an outage, and the
    /// recovery after it, shows within `probe_interval` + [`PROBE_TIMEOUT`]. Runs until the process ends.
    pub async fn run_discovery(self: Arc<Self>) {
        let tasks: Vec<_> = self
            .idps
            .load()
            .iter()
            .map(|(tenant, idp)| {
                let keeper = self.clone().keep_discovered(tenant.clone(), idp.clone());
                tokio::spawn(keeper)
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    /// One IdP's probe schedule, forever.
    async fn keep_discovered(self: Arc<Self>, tenant: TenantId, idp: Arc<TenantIdp>) {
        let interval = idp.settings.probe_interval;
        let mut backoff = MIN_PROBE_GAP;
        // A reload that removed or replaced this relying party ends its schedule.
        while self.is_current(&tenant, &idp) {
            let attempt = Instant::now();
            let result = match tokio::time::timeout(PROBE_TIMEOUT, self.discover(&idp)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
            };
            let wait = match result {
                Ok(()) => {
                    if idp.set_status(IdpStatus::Ready) {
                        tracing::info!(tenant = tenant.as_str(), issuer = %idp.settings.issuer, "OpenID Provider available");
                    }
                    backoff = MIN_PROBE_GAP;
                    interval
                }
                Err(reason) => {
                    if idp.set_status(IdpStatus::Unavailable(reason.clone())) {
                        tracing::warn!(tenant = tenant.as_str(), issuer = %idp.settings.issuer, reason, "OpenID Provider unavailable; sign-in is unavailable until it answers");
                    } else {
                        tracing::debug!(
                            tenant = tenant.as_str(),
                            reason,
                            "OpenID Provider still unavailable"
                        );
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).min(interval.max(MIN_PROBE_GAP));
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = idp.wake.notified() => {
                    // A token call failed to reach the IdP: check now, but never in a tight loop.
                    tokio::time::sleep_until((attempt + MIN_PROBE_GAP).into()).await;
                }
            }
        }
    }

    /// Fetches one IdP's discovery document and keys now and installs them.
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
        let idp_keys = logout::IdpKeys::from_jwks(metadata.jwks());
        let introspection = Self::introspection_client(idp, &metadata);
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
            idp_keys,
            end_session,
            requires_iss,
            introspection,
        })));
        Ok(())
    }

    /// The client for the IdP's introspection endpoint, when the tenant introspects opaque tokens
    /// (`bearer.introspect`). An IdP that publishes no usable endpoint is logged (once, not at every
    /// probe); opaque tokens are then refused with a reason that names it.
    fn introspection_client(idp: &TenantIdp, metadata: &Metadata) -> Option<IntrospectionClient> {
        if !(idp.settings.bearer_introspect && idp.settings.bearer_audience.is_some()) {
            return None;
        }
        let published = metadata
            .additional_metadata()
            .additional_metadata
            .introspection_endpoint
            .clone();
        let url = match published.map(IntrospectionUrl::new) {
            Some(Ok(url)) => url,
            missing_or_broken => {
                let known_missing = idp
                    .discovered
                    .load()
                    .as_ref()
                    .is_some_and(|discovered| discovered.introspection.is_none());
                if !known_missing {
                    let problem = match missing_or_broken {
                        Some(Err(error)) => format!("an unusable introspection_endpoint ({error})"),
                        _ => "no introspection_endpoint".to_owned(),
                    };
                    tracing::warn!(issuer = %idp.settings.issuer, problem, "auth.oidc.bearer.introspect is on, but the identity provider publishes no usable introspection endpoint: opaque bearer tokens are refused");
                }
                return None;
            }
        };
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(idp.settings.client_id.clone()),
            Some(ClientSecret::new(idp.settings.client_secret.0.clone())),
        );
        Some(client.set_introspection_url(url))
    }

    /// Fetches the IdP's keys again because a token named a key we do not know (the IdP rotated), at
    /// most once per [`KEY_REFETCH_INTERVAL`] and trigger, so tokens naming unknown keys cannot make
    /// portico hammer the IdP. Returns whether it fetched, so the caller verifies once more.
    async fn refetch_keys(&self, idp: &TenantIdp, trigger: KeyTrigger) -> bool {
        let due = {
            let mut fetches = idp.key_fetches.lock();
            let last = match trigger {
                KeyTrigger::SignIn => &mut fetches.id_token,
                KeyTrigger::Logout => &mut fetches.logout_token,
                KeyTrigger::Bearer => &mut fetches.access_token,
            };
            let due = last.is_none_or(|at| at.elapsed() >= KEY_REFETCH_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if !due {
            tracing::debug!(issuer = %idp.settings.issuer, ?trigger, "unknown signing key; keys were fetched recently");
            return false;
        }
        match tokio::time::timeout(PROBE_TIMEOUT, self.discover(idp)).await {
            Ok(Ok(())) => {
                tracing::info!(issuer = %idp.settings.issuer, ?trigger, "signing keys fetched again: a token named an unknown key");
                true
            }
            Ok(Err(reason)) => {
                tracing::warn!(issuer = %idp.settings.issuer, reason, "fetching the signing keys again failed");
                false
            }
            Err(_) => false,
        }
    }

    /// The tenant's relying party for starting a sign-in: refused at once while the IdP is known to be
    /// down, so the browser gets "sign-in unavailable" instead of a redirect to a dead page.
    fn idp_for_sign_in(
        &self,
        tenant: &TenantId,
    ) -> Result<(Arc<TenantIdp>, Arc<Discovered>), AuthError> {
        let (idp, discovered) = self.idp(tenant)?;
        match idp.status() {
            IdpStatus::Unavailable(reason) => Err(AuthError::SignInUnavailable(reason)),
            IdpStatus::Starting | IdpStatus::Ready => Ok((idp, discovered)),
        }
    }

    fn idp(&self, tenant: &TenantId) -> Result<(Arc<TenantIdp>, Arc<Discovered>), AuthError> {
        let idp = self
            .idps
            .load()
            .get(tenant)
            .cloned()
            .ok_or_else(|| AuthError::SignInUnavailable("no IdP configured".into()))?;
        match idp.discovered.load_full() {
            Some(discovered) => Ok((idp, discovered)),
            None => {
                let reason = match idp.status() {
                    IdpStatus::Unavailable(reason) => reason,
                    _ => "the identity provider has not been reached yet".into(),
                };
                Err(AuthError::SignInUnavailable(reason))
            }
        }
    }
}

/// The one place where a tenant's configured signing algorithms (`auth.oidc.signing_algs`) become
/// algorithm types: for ID tokens (checked by `openidconnect`) and for logout tokens (checked by
/// `jsonwebtoken`). Names neither library knows are left out, so they can never match.
pub(crate) struct Algorithms;

impl Algorithms {
    /// The allow-list for ID tokens.
    fn for_id_tokens(settings: &OidcSettings) -> Vec<CoreJwsSigningAlgorithm> {
        settings
            .signing_algs
            .iter()
            .map(|alg| core_alg(*alg))
            .collect()
    }

    /// Whether a logout token's header algorithm is on the allow-list.
    fn allows_for_logout(settings: &OidcSettings, alg: jsonwebtoken::Algorithm) -> bool {
        settings
            .signing_algs
            .iter()
            .filter_map(|name| name.as_str().parse::<jsonwebtoken::Algorithm>().ok())
            .any(|allowed| allowed == alg)
    }
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
