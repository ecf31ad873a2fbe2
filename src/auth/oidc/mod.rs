//! OpenID Connect: portico as the relying party (backend-for-frontend) of each tenant's IdP.
//!
//! Per tenant: discovery and JWKS fetched at start and refreshed in the background (an IdP that is down
//! does not stop the portal; its tenant says "sign-in unavailable"); the authorization code flow with
//! PKCE S256, state and nonce, always ([`login`], bounded by [`pending`]); the callback's checks
//! (single-use state bound to the browser, issuer, ID token signature/issuer/audience/expiry/nonce with
//! an allow-list of algorithms); refresh that re-reads groups ([`refresh`]); RP-initiated and
//! back-channel logout ([`logout`]). This is the only module that talks to IdPs, and it never follows a
//! redirect. Tokens never leave the server: they live in the session record, never in a cookie or a
//! page. A service: it sees `Sessions`, never the app state or a request.

mod login;
mod logout;
mod pending;
mod refresh;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, Client, ClientId, ClientSecret,
    EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdTokenFields, IssuerUrl, LogoutProviderMetadata, ProviderMetadata, RedirectUrl,
    StandardErrorResponse, StandardTokenResponse,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::AuthError;
use crate::config::{OidcSettings, SignIn, SigningAlg, Tenant, TenantId};
use crate::http::error::error_chain;

pub use login::{CallbackParams, LoginDone, LoginStart, groups_at};
pub use logout::LogoutSubject;
pub use pending::{ClientKey, PendingLimits};

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

/// What the background discovery knows about one tenant's IdP.
struct Discovered {
    client: OidcClient,
    issuer: String,
    /// The IdP's signing keys in the form logout-token verification uses (see [`logout`]).
    logout_keys: logout::LogoutKeys,
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
    /// The `jti`s of logout tokens already acted on, until they expire: a replayed token is refused.
    seen_logout_tokens: Mutex<logout::SeenTokens>,
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
            status: ArcSwap::from_pointee(IdpStatus::Starting),
            last_discovery: Mutex::new(None),
            seen_logout_tokens: Mutex::default(),
        })
    }
}

/// The shortest time between two discoveries of one IdP prompted by tokens (not by the schedule).
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// How often a healthy IdP is discovered again, and the longest wait between retries of one that is not.
const REDISCOVERY_PERIOD: Duration = Duration::from_secs(900);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

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
    pending: Mutex<pending::PendingLogins>,
    refresh_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
            pending: Mutex::default(),
            refresh_locks: Mutex::default(),
        })
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
        let mut statuses: Vec<(TenantId, IdpStatus)> = self
            .idps
            .load()
            .iter()
            .map(|(tenant, idp)| (tenant.clone(), (**idp.status.load()).clone()))
            .collect();
        statuses.sort_by(|a, b| a.0.cmp(&b.0));
        statuses
    }

    /// Discovers every IdP once now, then keeps them fresh: every 15 minutes when healthy, with backoff
    /// (1 s doubling to 60 s) while one is unreachable. Runs until the process ends.
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

    /// One IdP's discovery schedule, forever.
    async fn keep_discovered(self: Arc<Self>, tenant: TenantId, idp: Arc<TenantIdp>) {
        let mut backoff = Duration::from_secs(1);
        // A reload that removed or replaced this relying party ends its schedule.
        while self.is_current(&tenant, &idp) {
            match self.discover(&idp).await {
                Ok(()) => {
                    tracing::info!(tenant = tenant.as_str(), issuer = %idp.settings.issuer, "OpenID Provider discovered");
                    backoff = Duration::from_secs(1);
                    tokio::time::sleep(REDISCOVERY_PERIOD).await;
                }
                Err(reason) => {
                    tracing::warn!(tenant = tenant.as_str(), issuer = %idp.settings.issuer, reason, "OpenID Provider unavailable; retrying");
                    idp.status.store(Arc::new(IdpStatus::Unavailable(reason)));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
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
        let logout_keys = logout::LogoutKeys::from_jwks(metadata.jwks());
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
            logout_keys,
            end_session,
            requires_iss,
        })));
        idp.status.store(Arc::new(IdpStatus::Ready));
        *idp.last_discovery.lock() = Some(Instant::now());
        Ok(())
    }

    /// Discovers again if the last discovery is older than `REDISCOVERY_INTERVAL`: the IdP may have rotated its keys.
    /// Returns whether it did, so the caller retries once. Rate-limited, so tokens naming unknown keys
    /// cannot make portico hammer the IdP.
    async fn rediscover_if_stale(&self, idp: &TenantIdp) -> bool {
        let due = {
            let mut last = idp.last_discovery.lock();
            let due = last.is_none_or(|at| at.elapsed() >= REDISCOVERY_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        due && self.discover(idp).await.is_ok()
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
                let reason = match &**idp.status.load() {
                    IdpStatus::Unavailable(reason) => reason.clone(),
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
