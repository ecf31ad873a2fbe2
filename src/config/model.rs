//! The compiled config: what the running server reads. Every value here has been validated; nothing
//! here knows YAML or file positions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;

pub use super::ids::{AppId, TenantId};
use crate::i18n::Locale;
use crate::rbac::{AccessPolicy, AccessRule, PathCase, RoleMap};

/// Text shown to people that config may give per language (`label: { en: Costs, de: Kosten }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// What a language without its own text sees: the English text, else the first one written.
    fallback: String,
    per_language: Vec<(Locale, String)>,
}

impl Text {
    /// The same text in every language.
    pub fn new(text: impl Into<String>) -> Self {
        Text {
            fallback: text.into(),
            per_language: Vec::new(),
        }
    }

    /// Texts per language, in written order; `None` when there is none.
    pub(crate) fn per_language(texts: Vec<(Locale, String)>) -> Option<Self> {
        let fallback = texts
            .iter()
            .find(|(locale, _)| *locale == Locale::En)
            .or_else(|| texts.first())?
            .1
            .clone();
        Some(Text {
            fallback,
            per_language: texts,
        })
    }

    /// One of portico's own texts (`builtin.catalog.label` in `web/shell/i18n/*.json`), in every
    /// language portico speaks: the labels of the apps portico brings itself.
    pub(crate) fn builtin(key: &str) -> Self {
        let texts = Locale::ALL
            .into_iter()
            .map(|locale| (locale, locale.texts().get(key).to_owned()))
            .collect();
        Text::per_language(texts).unwrap_or_else(|| Text::new(key))
    }

    /// The text in `locale`, else the fallback.
    pub(crate) fn get(&self, locale: Locale) -> &str {
        self.per_language
            .iter()
            .find(|(written, _)| *written == locale)
            .map_or(&self.fallback, |(_, text)| text)
    }

    /// The English (or first written) text: logs, the command line, matching.
    pub fn fallback(&self) -> &str {
        &self.fallback
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.fallback == *other
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fallback)
    }
}

/// A whole validated configuration: one snapshot that a request reads from start to end.
#[derive(Debug)]
pub struct Config {
    pub server: ServerSettings,
    pub sessions: SessionSettings,
    pub proxy: ProxySettings,
    pub tenants: Vec<Arc<Tenant>>,
    /// The tenant that answers a Host no tenant lists; `None` means such a request gets 404.
    pub default_tenant: Option<TenantId>,
    /// Where this config came from (a path, or "embedded default"), for logs.
    pub source: String,
    /// Trace export (read at start, like the listeners).
    pub telemetry: TelemetrySettings,
}

/// `telemetry:`
#[derive(Debug, Clone, Default)]
pub struct TelemetrySettings {
    /// Where request spans are posted as OTLP/HTTP JSON; `None`: no trace export.
    pub otlp_endpoint: Option<http::Uri>,
}

impl ServerSettings {
    /// How many workers serve the tenant listener: `workers`, or one per CPU core this process may use.
    pub fn worker_count(&self) -> usize {
        self.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            std::num::NonZeroUsize::get,
        )
    }
}

impl Config {
    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.iter().find(|tenant| tenant.id == id)
    }
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Health and readiness; never served on tenant origins.
    pub admin_listen: Option<SocketAddr>,
    /// The assertion signing keys, read from their PEM files at each load (so a reload rotates them):
    /// the first signs, all are published. Empty: generated at start.
    pub signing_keys: Vec<SigningKeyFile>,
    /// A request's head must arrive within this long of its first byte (for the first request, of the
    /// accept; a TLS handshake too), else the connection is closed: half-sent requests cannot hold a
    /// slot (default 30 s).
    pub header_read_timeout: Duration,
    /// Open connections on the tenant listener; more are refused with 503 (default 4096).
    pub max_connections: usize,
    /// Worker threads, each with its own runtime, listening socket and upstream pool; `None`: one per
    /// CPU core the process may use (`auto`, the default).
    pub workers: Option<std::num::NonZeroUsize>,
    /// Open connections from one client address (an IPv6 /64 counts as one); more are refused with
    /// 429 (default 256). Raise it when clients arrive through one NAT or load-balancer address.
    pub max_connections_per_client: usize,
    /// A connection with no request in flight closes after this long without a new one (default 75 s,
    /// nginx's `keepalive_timeout`).
    pub keepalive_timeout: Duration,
    /// A request body that sends nothing for this long while it is read is cut off (default 60 s,
    /// nginx's `client_body_timeout`).
    pub body_read_timeout: Duration,
    /// How long a shutdown waits for requests in flight (default 30 s).
    pub shutdown_timeout: Duration,
    /// TLS on the tenant listener; `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    /// A plain listener that only redirects to https.
    pub redirect_listen: Option<SocketAddr>,
    /// The `Strict-Transport-Security` value for tenants whose public origin is https; `None`: off.
    pub hsts: Option<http::HeaderValue>,
    /// Proxies in front of portico whose `X-Forwarded-For` and `X-Request-Id` are believed (for the
    /// access line's client address and the request id). Empty (the default): nobody's are.
    pub trusted_proxies: Vec<Cidr>,
    /// Set by `portico preview --serve` only, never from YAML: the banner every shell page shows
    /// (whose navigation this is), so a preview is never mistaken for the portal.
    pub preview_banner: Option<String>,
}

/// An IP network, `10.0.0.0/8` or `2001:db8::/32` (a bare address is its own /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: std::net::IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: std::net::IpAddr = address.trim().parse().map_err(|_| "not an IP address")?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or("the prefix length is not a number within the address's size")?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            signing_keys: Vec::new(),
            header_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            workers: None,
            max_connections_per_client: 256,
            keepalive_timeout: Duration::from_secs(75),
            body_read_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            tls: None,
            redirect_listen: None,
            hsts: Some(http::HeaderValue::from_static(DEFAULT_HSTS)),
            trusted_proxies: Vec::new(),
            preview_banner: None,
        }
    }
}

/// One year, this host only: subdomains may still serve plain HTTP.
pub const DEFAULT_HSTS: &str = "max-age=31536000";

/// `server.tls`: certificate files, checked when the config was compiled; the first is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub certificates: Vec<CertificateFiles>,
    /// How often the files are looked at for a renewal.
    pub reload_interval: Duration,
}

/// A certificate chain (leaf first) and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Where sessions live; fixed at start (a reload keeps the running one).
    pub store: StoreSettings,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Sign-ins started (sent to the IdP) and not yet back, at most, per client address (an IPv6 /64)
    /// and tenant. Behind a proxy every user shares its address: raise it to `pending_sign_ins_per_tenant`.
    pub pending_sign_ins_per_client: usize,
    /// The same per tenant; when full, the client holding the most gives up its oldest.
    pub pending_sign_ins_per_tenant: usize,
    /// How long a session outlives its access token while the IdP cannot be reached to refresh it
    /// (default 5 min; zero: it ends with the token).
    pub refresh_grace: Duration,
    /// Sessions kept in the store (with Redis: by all instances); a sign-in beyond it ends the least
    /// recently used one.
    pub max_sessions: usize,
    /// Sessions of one user (tenant and subject); a sign-in beyond it ends that user's least recently
    /// used one.
    pub max_sessions_per_user: usize,
}

impl SessionSettings {
    /// The session stores config accepts (`sessions.store`).
    pub const STORES: [&'static str; 2] = ["memory", "redis"];
}

/// `sessions.store`: where sessions (and sign-ins in flight, Backstage tokens) live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSettings {
    /// In this process: lost on restart, not shared with another instance.
    #[default]
    Memory,
    /// In Redis, shared by every instance.
    Redis(RedisSettings),
}

/// `sessions.redis`, checked when the config was compiled (the key file read, the URL parsed).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://` or `rediss://`; it may carry credentials, so `Debug` shows only its scheme.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The AES-256-GCM key sealing what portico writes to Redis.
    pub key: [u8; 32],
    /// Prefix of every key portico writes.
    pub prefix: String,
    /// The CA of the Redis server's certificate, PEM; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// How long cached sessions keep working while Redis cannot be reached.
    pub outage_grace: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split("://").next().unwrap_or("");
        f.debug_struct("RedisSettings")
            .field("url", &format_args!("{scheme}://.."))
            .field("username", &self.username)
            .field("has_password", &self.password.is_some())
            .field("prefix", &self.prefix)
            .field("ca", &self.ca)
            .field("outage_grace", &self.outage_grace)
            .finish_non_exhaustive()
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            store: StoreSettings::Memory,
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            pending_sign_ins_per_client: 100,
            pending_sign_ins_per_tenant: 10_000,
            refresh_grace: Duration::from_secs(300),
            max_sessions: 100_000,
            max_sessions_per_user: 20,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProxySettings {
    pub connect_timeout: Duration,
    /// How long an upstream may take to send its response headers before the client gets 504.
    pub response_timeout: Duration,
    /// A response body that sends nothing for this long is cut off (default 60 s).
    pub idle_timeout: Duration,
    /// Request bodies larger than this are refused with 413 (default 100 MiB).
    pub max_request_body: u64,
    /// How long a signed identity assertion is valid (default one minute).
    pub assertion_lifetime: Duration,
    /// Bounds of the response cache (`proxy.cache`).
    pub cache: CacheSettings,
}

/// `proxy.cache:`: read at every store, so a reload applies to the next response stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// All entries together (bodies, headers and keys), in bytes (default 64 MiB).
    pub max_bytes: u64,
    /// One entry at most (default 8 MiB); a larger response is passed on, not stored.
    pub max_entry_bytes: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            max_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_request_body: 100 * 1024 * 1024,
            assertion_lifetime: Duration::from_secs(60),
            cache: CacheSettings::default(),
        }
    }
}

/// One isolated portal.
#[derive(Debug)]
pub struct Tenant {
    pub id: TenantId,
    /// Lower-case `host` or `host:port` values the Host header is matched against.
    pub hosts: Vec<String>,
    /// The origin users reach the tenant at; absolute URLs (redirect URIs) are built from it, never from Host.
    pub public_origin: Option<PublicOrigin>,
    /// Where users reach the tenant: the public origin, else `http://<first host>` (loopback demos);
    /// `None` for a tenant that lists no host. Links to the tenant are built from it.
    pub origin: Option<String>,
    /// `iss` of the identity assertions sent upstream: `origin`, else a URN naming the tenant.
    /// Computed once here because the proxy needs it on every request.
    pub assertion_issuer: String,
    pub branding: Branding,
    /// The few Luigi shell settings a tenant may choose (`luigi:`).
    pub luigi: LuigiSettings,
    pub sign_in: SignIn,
    pub roles: RoleMap,
    /// In the order they appear in config, which is the order of the navigation.
    pub apps: Vec<Arc<App>>,
    /// The Backstage backend mounted at `/backstage/api/`, if any.
    pub backstage: Option<BackstageSettings>,
    /// Where a refused user asks for access (`request_access:`): a link template filled per role and
    /// group on the 403 page and in the shell's not-found view.
    pub request_access: Option<RequestAccess>,
    /// The in-server probe of the tenant's apps (`health:`); `None`: off (absent or `interval: off`).
    pub health: Option<HealthSettings>,
    /// Where a developer may point an app for their own session (`previews:`); `None`: nowhere.
    pub previews: Option<PreviewSettings>,
    /// Bearer tokens (`tokens:`): personal access tokens and the per-token rate limit.
    pub tokens: TokenSettings,
}

/// `tokens:` of a tenant: whether users mint personal access tokens, and how often one bearer token
/// may be used (`auth::personal`, `auth::extract`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// The longest a personal access token may live; `None`: users mint none.
    pub personal: Option<Duration>,
    /// Requests one bearer token may make per instance; `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
}

impl TokenSettings {
    /// The longest `personal` may be: a year and a day, so a yearly token can be renewed in time.
    pub const MAX_PERSONAL_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
    /// `rate_limit` when config does not say.
    pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
        requests: 600,
        per: Duration::from_secs(60),
    };
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            personal: None,
            rate_limit: Some(Self::DEFAULT_RATE_LIMIT),
        }
    }
}

/// `<requests>/<per>`: at most `requests` in any window of `per`, refilled evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

/// `previews:` of a tenant: the preview upstreams a signed-in developer may send one app's requests
/// to, for their own session only (README, "Preview an app's pull request"). `apps::preview` uses it.
#[derive(Debug, Clone)]
pub struct PreviewSettings {
    /// A preview URL must match one of these (scheme, host, port); its path is free.
    pub upstreams: Vec<PreviewPattern>,
    /// How long one override lasts at most; it ends sooner with its session.
    pub lifetime: Duration,
    /// Who may start one, on top of being allowed to open the app; `None`: every such user.
    pub roles: Option<AccessRule>,
    /// How portico speaks TLS to an `https://` preview: the system's roots, like an upstream that
    /// names no `tls:`. Built once here, so previews share one connection pool.
    pub tls: Arc<UpstreamTls>,
}

impl PreviewSettings {
    /// `lifetime` when config does not say.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(8 * 3600);

    /// Whether `upstream` (a parsed preview URL) matches one of the allowed patterns.
    pub fn allows(&self, upstream: &Upstream) -> bool {
        self.upstreams
            .iter()
            .any(|pattern| pattern.matches(upstream))
    }
}

/// One allowed preview origin: `http://*.preview.internal`, `https://pr-1.acme.example:8443`,
/// `http://127.0.0.1:*`. `*` stands for one or more whole DNS labels in front of a fixed suffix, or for
/// any port; nothing else is a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewPattern {
    pub https: bool,
    pub host: PreviewHost,
    /// `None`: any port (`:*`).
    pub port: Option<u16>,
    /// The pattern as written, for messages.
    pub written: String,
}

/// The host part of a [`PreviewPattern`], lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewHost {
    /// Exactly this host name or IP address.
    Exact(String),
    /// Any name that ends in `.<suffix>` with at least one label before it (`*.<suffix>`).
    Below(String),
}

impl PreviewPattern {
    /// Whether `upstream` has this pattern's scheme, a host it covers and a port it allows.
    pub fn matches(&self, upstream: &Upstream) -> bool {
        if upstream.url.starts_with("https://") != self.https {
            return false;
        }
        let Ok(authority) = upstream.authority.parse::<http::uri::Authority>() else {
            return false;
        };
        let host = authority.host().to_ascii_lowercase();
        let port_ok = self
            .port
            .is_none_or(|port| authority.port_u16() == Some(port));
        let host_ok = match &self.host {
            PreviewHost::Exact(exact) => host == *exact,
            PreviewHost::Below(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|front| {
                    !front.is_empty() && front.split('.').all(|label| !label.is_empty())
                }),
        };
        port_ok && host_ok
    }
}

/// `health:` of a tenant: how often its apps' entry views are probed, how long a probe may take, and
/// the groups of the synthetic user it runs as (`doctor::watch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    /// Grant at least one role of the tenant (config checks it).
    pub groups: Vec<String>,
}

impl HealthSettings {
    /// `timeout` when config does not say.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
    /// The shortest `interval` config accepts: a probe is a request to every app.
    pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
}

/// A tenant's Backstage backend.
#[derive(Debug, Clone)]
pub struct BackstageSettings {
    pub backend: Upstream,
    pub identity: BackstageIdentity,
    /// Plugins reachable under `/backstage/api/<plugin>/`; never `auth`.
    pub plugins: Vec<String>,
    /// Catalog namespaces this tenant owns. Empty: the catalog is not scoped (one tenant per Backstage).
    /// Otherwise `backstage::scope` narrows catalog reads to these plus `shared_namespaces`.
    pub namespaces: Vec<String>,
    /// The namespace this tenant's users are signed in to Backstage in (`user` identity): portico names
    /// them `<user_namespace>/<subject>` and Backstage resolves them only there (docs/backstage-identity.md).
    /// One of `namespaces` (default: the first), or `default` for a tenant that lists none.
    pub user_namespace: String,
    /// Namespaces this tenant reads but shares with other tenants (e.g. `common`); `portico check`
    /// accepts a namespace claimed by several tenants only when every one of them marks it shared.
    pub shared_namespaces: Vec<String>,
    /// Catalog endpoints that cannot be scoped to namespaces but are let through anyway (e.g.
    /// `/locations`), as path globs below `/api/catalog`; everything unscopable is refused otherwise.
    pub allow_unscoped: Vec<crate::rbac::PathGlob>,
    /// How users are signed in to Backstage (`identity: user`).
    pub sign_in: BackstageSignIn,
    /// Who may do what in Backstage, by portico role (`permissions:`): sent to Backstage as grants in
    /// the sign-in assertion, where portico's permission policy decides from them
    /// (integrations/backstage, docs/backstage-identity.md).
    pub permissions: Vec<BackstageGrantRule>,
    /// Whether the tenant gets the built-in Catalog app (`catalog_app`, default true).
    pub catalog_app: bool,
}

/// How portico signs a user in to Backstage (`backstage.sign_in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackstageSignIn {
    /// The `portico` provider when the backend has it (integrations/backstage), else `oauth2Proxy`.
    #[default]
    Auto,
    /// Only the `portico` provider: a signed assertion Backstage verifies against portico's JWKS.
    Assertion,
    /// Only the `oauth2Proxy` provider: headers Backstage cannot verify (docs/backstage-identity.md).
    Oauth2Proxy,
}

impl BackstageSignIn {
    /// Each mode with its name in config.
    pub const ALL: [(&'static str, BackstageSignIn); 3] = [
        ("auto", BackstageSignIn::Auto),
        ("assertion", BackstageSignIn::Assertion),
        ("oauth2_proxy", BackstageSignIn::Oauth2Proxy),
    ];
    /// The names of the modes in config.
    pub const NAMES: [&'static str; 3] = ["auto", "assertion", "oauth2_proxy"];
}

/// One rule of `backstage.permissions`: users with any of `roles` may do `allow` (Backstage permission
/// names, `prefix.*` patterns or `*`) on what lies in `namespaces`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackstageGrantRule {
    pub roles: Vec<crate::rbac::RoleName>,
    pub allow: Vec<String>,
    /// Default: every namespace of the tenant, its shared ones included (which Backstage's policy
    /// honours for `read` permissions only).
    pub namespaces: Vec<String>,
}

/// The `aud` of the sign-in assertions portico sends Backstage's `portico` provider.
pub const BACKSTAGE_SIGN_IN_AUDIENCE: &str = "backstage-sign-in";

impl BackstageSettings {
    /// Whether catalog reads are narrowed to namespaces at all.
    pub fn scoped(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// The namespaces the tenant reads: its own, then the shared ones.
    pub fn readable_namespaces(&self) -> impl Iterator<Item = &str> {
        self.namespaces
            .iter()
            .chain(&self.shared_namespaces)
            .map(String::as_str)
    }
}

/// Who portico is when it calls Backstage.
#[derive(Debug, Clone)]
pub enum BackstageIdentity {
    /// The signed-in user, through Backstage's oauth2Proxy provider.
    User,
    /// A static external-access token.
    Service(Secret),
    /// Portico itself (`service_token: signed`): a token portico signs with its assertion keys for a
    /// minute, which Backstage verifies against portico's JWKS (`externalAccess` of type `jwks`, with
    /// this tenant's assertion issuer and the audience [`BACKSTAGE_AUDIENCE`]). No shared secret.
    SignedService,
}

/// The `aud` of the service tokens portico signs for Backstage (`service_token: signed`). Not
/// `backstage`: Backstage takes every token with that audience for one of its own user tokens.
pub const BACKSTAGE_AUDIENCE: &str = "backstage-service";

impl BackstageIdentity {
    /// The names of the identities in config (`backstage.identity`).
    pub const NAMES: [&'static str; 2] = ["user", "service"];
}

impl Tenant {
    /// The app at `/apps/<id>/`.
    pub fn app(&self, id: &str) -> Option<&Arc<App>> {
        self.apps
            .iter()
            .find(|app| app.id == id && app.mount == AppMount::Apps)
    }

    /// Backstage's web UI at `/backstage/`, when the tenant mounts it (`backstage.ui`).
    pub fn backstage_ui(&self) -> Option<&Arc<App>> {
        self.apps
            .iter()
            .find(|app| app.mount == AppMount::BackstageUi)
    }
}

/// A tenant's `request_access` link template, e.g.
/// `https://tickets.acme.example/new?summary=Access+to+{app}&group={group}`: what a refused user is
/// offered on the 403 page and in the shell's not-found view, one link per group that would let them in.
///
/// Its scheme and host are fixed when config is read (`https://`, `http://` on a loopback host, or
/// `mailto:` with a literal address), and placeholders may stand only after them, so a filled link
/// always goes where the tenant admin wrote, and is never a `javascript:` URL. Every filled value is
/// percent-encoded as a URL component (all but letters, digits and `-._~`), so nothing a user or a
/// config value holds (`&`, `#`, `"`, `<`, spaces) can end a parameter, start another one or markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAccess {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Template text, already a valid part of a URL.
    Literal(String),
    Value(Placeholder),
}

/// What a `request_access` template may name, in `{braces}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// The app's id (`cost-insights`).
    App,
    /// The app's label in the user's language.
    AppLabel,
    /// The refused page's label; empty when the refusal is for the whole app.
    Page,
    /// A role that would open it.
    Role,
    /// A group that grants that role.
    Group,
    /// The user: their verified email address, else their subject at the IdP.
    User,
    /// The tenant's id.
    Tenant,
    /// The path the user asked for (`/apps/<id>/…` at the proxy, `/home/<id>/…` in the shell).
    Path,
}

impl Placeholder {
    /// Every placeholder by its name in a template.
    pub const ALL: [(&'static str, Placeholder); 8] = [
        ("app", Placeholder::App),
        ("app_label", Placeholder::AppLabel),
        ("page", Placeholder::Page),
        ("role", Placeholder::Role),
        ("group", Placeholder::Group),
        ("user", Placeholder::User),
        ("tenant", Placeholder::Tenant),
        ("path", Placeholder::Path),
    ];
}

/// Why a `request_access` template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestAccessError {
    #[error("`{0}` is not an https://, http:// (loopback only) or mailto: link")]
    Scheme(String),
    #[error("plain http is only accepted on a loopback host, not on `{0}`")]
    PlainHttp(String),
    #[error("the link has no host")]
    NoHost,
    #[error("`{0}` is not a valid host and port")]
    BadHost(String),
    #[error("the link may not carry a user name or password")]
    Credentials,
    #[error("the mailto: link has no address")]
    NoAddress,
    #[error("`{{{0}}}` stands before the path: the scheme, host and address must be written out")]
    PlaceholderInAddress(String),
    #[error("unknown placeholder `{{{0}}}`")]
    UnknownPlaceholder(String),
    #[error("a `{{` is not closed by `}}`")]
    Unclosed,
    #[error("a `}}` closes no placeholder")]
    StrayClose,
    #[error("the link may not contain {0}")]
    BadCharacter(String),
}

/// The values one refusal fills a template with. `role` and `group` come per link.
#[derive(Debug, Clone, Copy)]
pub struct AccessAsk<'a> {
    pub app: &'a str,
    pub app_label: &'a str,
    pub page: Option<&'a str>,
    pub user: &'a str,
    pub tenant: &'a str,
    pub path: &'a str,
}

impl<'a> AccessAsk<'a> {
    /// Who asks, as `{user}` says it: the verified email address (what a ticket system knows people
    /// by), else the subject the IdP names them with.
    pub fn requester(email: &'a str, subject: &'a str) -> &'a str {
        if email.is_empty() { subject } else { email }
    }
}

/// One filled `request_access` link. `role` and `group` are set when the template names them (the
/// link is for that role or group); a template that names neither gives one link for the refusal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessLink {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub url: String,
}

/// Bytes a filled value keeps as they are: RFC 3986's unreserved characters. Everything else is
/// percent-encoded, which is safe in a path, a query and a fragment alike.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl RequestAccess {
    /// Reads a template; every problem is reported, not only the first.
    pub fn parse(template: &str) -> Result<Self, Vec<RequestAccessError>> {
        let mut errors = Vec::new();
        let lower = template.get(..8).unwrap_or(template).to_ascii_lowercase();
        // Where placeholders may start: after the authority, or after a mailto: address.
        let fixed_end = if lower.starts_with("https://") || lower.starts_with("http://") {
            let start = template.find("//").map_or(0, |at| at + 2);
            let end = template[start..]
                .find(['/', '?', '#'])
                .map_or(template.len(), |at| start + at);
            check_authority(
                &template[start..end],
                lower.starts_with("http://"),
                &mut errors,
            );
            end
        } else if lower.starts_with("mailto:") {
            let end = template.find(['?', '#']).unwrap_or(template.len());
            let address = &template["mailto:".len()..end];
            if address.is_empty() {
                errors.push(RequestAccessError::NoAddress);
            }
            end
        } else {
            let scheme = template.split(':').next().unwrap_or(template);
            return Err(vec![RequestAccessError::Scheme(scheme.to_owned())]);
        };
        let mut pieces = Vec::new();
        let mut rest = template;
        let mut at = 0;
        while !rest.is_empty() {
            let literal_end = rest.find(['{', '}']).unwrap_or(rest.len());
            if literal_end > 0 {
                let literal = &rest[..literal_end];
                check_literal(literal, &mut errors);
                // Non-ASCII letters (`für`) are allowed and written as the URL needs them.
                let encoded =
                    percent_encoding::utf8_percent_encode(literal, percent_encoding::CONTROLS);
                pieces.push(Piece::Literal(encoded.to_string()));
            }
            rest = &rest[literal_end..];
            at += literal_end;
            if rest.starts_with('}') {
                errors.push(RequestAccessError::StrayClose);
                rest = &rest[1..];
                at += 1;
            } else if rest.starts_with('{') {
                let Some(close) = rest.find('}') else {
                    errors.push(RequestAccessError::Unclosed);
                    break;
                };
                let name = &rest[1..close];
                match Placeholder::ALL.iter().find(|(known, _)| *known == name) {
                    Some(_) if at < fixed_end => {
                        errors.push(RequestAccessError::PlaceholderInAddress(name.to_owned()))
                    }
                    Some((_, placeholder)) => pieces.push(Piece::Value(*placeholder)),
                    None => errors.push(RequestAccessError::UnknownPlaceholder(name.to_owned())),
                }
                rest = &rest[close + 1..];
                at += close + 1;
            }
        }
        if errors.is_empty() {
            Ok(RequestAccess { pieces })
        } else {
            Err(errors)
        }
    }

    /// Whether the template names `placeholder`.
    pub fn uses(&self, placeholder: Placeholder) -> bool {
        self.pieces.contains(&Piece::Value(placeholder))
    }

    /// The template with `ask`, `role` and `group` filled in, each value percent-encoded.
    pub fn fill(&self, ask: &AccessAsk<'_>, role: &str, group: &str) -> String {
        let mut url = String::new();
        for piece in &self.pieces {
            let value = match piece {
                Piece::Literal(text) => {
                    url.push_str(text);
                    continue;
                }
                Piece::Value(Placeholder::App) => ask.app,
                Piece::Value(Placeholder::AppLabel) => ask.app_label,
                Piece::Value(Placeholder::Page) => ask.page.unwrap_or(""),
                Piece::Value(Placeholder::Role) => role,
                Piece::Value(Placeholder::Group) => group,
                Piece::Value(Placeholder::User) => ask.user,
                Piece::Value(Placeholder::Tenant) => ask.tenant,
                Piece::Value(Placeholder::Path) => ask.path,
            };
            url.extend(percent_encoding::utf8_percent_encode(value, COMPONENT));
        }
        url
    }

    /// The links for one refusal: one per group of each needed role (`needs`: each role with the
    /// groups that grant it), or per role, or one in all, when the template names no group, or no role
    /// either; in the order of `needs`, each once.
    pub fn links<'n>(
        &self,
        ask: &AccessAsk<'_>,
        needs: impl IntoIterator<Item = (&'n str, &'n [String])>,
    ) -> Vec<AccessLink> {
        let per_group = self.uses(Placeholder::Group);
        let per_role = per_group || self.uses(Placeholder::Role);
        let mut links: Vec<AccessLink> = Vec::new();
        for (role, groups) in needs {
            for group in groups {
                let url = self.fill(ask, role, group);
                if links.iter().any(|link| link.url == url) {
                    continue;
                }
                links.push(AccessLink {
                    role: per_role.then(|| role.to_owned()),
                    group: per_group.then(|| group.clone()),
                    url,
                });
            }
        }
        links
    }
}

/// The host (and port) of an http(s) template: written out, no credentials, loopback for plain http.
fn check_authority(authority: &str, plain_http: bool, errors: &mut Vec<RequestAccessError>) {
    if authority.contains(['{', '}']) {
        // Reported as a placeholder before the path.
        return;
    }
    if authority.is_empty() {
        errors.push(RequestAccessError::NoHost);
        return;
    }
    if authority.contains('@') {
        errors.push(RequestAccessError::Credentials);
        return;
    }
    let Ok(parsed) = authority.parse::<http::uri::Authority>() else {
        errors.push(RequestAccessError::BadHost(authority.to_owned()));
        return;
    };
    let after_host = &authority[parsed.host().len()..];
    if let Some(port) = after_host.strip_prefix(':')
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        errors.push(RequestAccessError::BadHost(authority.to_owned()));
        return;
    }
    let host = parsed.host().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if plain_http && !loopback {
        errors.push(RequestAccessError::PlainHttp(parsed.host().to_owned()));
    }
}

/// Template text outside placeholders: nothing a URL cannot hold as written, nor quotes and angle
/// brackets (percent-encode them: `%22`, `%3C`).
fn check_literal(text: &str, errors: &mut Vec<RequestAccessError>) {
    let bad = text.chars().find(|c| {
        c.is_control() || c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '|')
    });
    if let Some(bad) = bad {
        let shown = if bad == ' ' {
            "a space".to_owned()
        } else {
            format!("`{}`", bad.escape_default())
        };
        let error = RequestAccessError::BadCharacter(shown);
        if !errors.contains(&error) {
            errors.push(error);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Branding {
    pub title: String,
    pub logo: Option<BrandImage>,
    pub favicon: Option<BrandImage>,
    /// Colours of the shell, served as CSS custom properties at `/shell/theme.css`.
    pub theme: Theme,
}

/// A logo or favicon: a URL the browser loads, or a file next to the config that portico serves at
/// `/shell/brand/<logo|favicon>` (read at every config load, so a reload picks up a new one).
#[derive(Debug, Clone)]
pub enum BrandImage {
    Url(String),
    File(std::sync::Arc<BrandFile>),
}

/// A branding image read from a file.
#[derive(Debug)]
pub struct BrandFile {
    pub bytes: bytes::Bytes,
    pub content_type: &'static str,
    /// A hash of the bytes: the query that makes each version's URL its own, so it is cached for good.
    pub version: String,
}

impl Branding {
    /// The logo's URL on this tenant's pages (portico's own when config names none).
    pub fn logo_href(&self) -> String {
        self.logo
            .as_ref()
            .map_or_else(|| "/shell/logo.svg".to_owned(), |logo| logo.href("logo"))
    }

    /// The favicon's URL, if config names one.
    pub fn favicon_href(&self) -> Option<String> {
        self.favicon.as_ref().map(|favicon| favicon.href("favicon"))
    }

    /// The favicon a page of portico's own names: the tenant's, else portico's logo (a page that
    /// names none makes the browser ask for `/favicon.ico`, which is no public path here).
    pub fn page_favicon(&self) -> String {
        self.favicon_href()
            .unwrap_or_else(|| "/shell/logo.svg".to_owned())
    }
}

impl BrandImage {
    /// Where this tenant's pages load it: `which` is `logo` or `favicon`.
    pub fn href(&self, which: &str) -> String {
        match self {
            BrandImage::Url(url) => url.clone(),
            BrandImage::File(file) => format!("/shell/brand/{which}?v={}", file.version),
        }
    }
}

/// Luigi settings per tenant. Only JSON values: function-valued settings stay in the shell's script.
#[derive(Debug, Clone)]
pub struct LuigiSettings {
    /// `settings.responsiveNavigation`.
    pub responsive_navigation: ResponsiveNavigation,
    /// `settings.sideNavFooterText`; default `portico <version>`.
    pub side_nav_footer: Option<String>,
    /// How long the shell waits for an app's Luigi Client handshake before it shows a panel saying
    /// what is wrong (`web/shell/bootstrap.js`): a frame never spins forever.
    pub frame_timeout: std::time::Duration,
}

impl LuigiSettings {
    /// `frame_timeout` when config does not say.
    pub const DEFAULT_FRAME_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
}

/// Luigi's `settings.responsiveNavigation` modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ResponsiveNavigation {
    #[default]
    SemiCollapsible,
    Simple,
    SimpleMobileOnly,
    Fiori3,
}

impl ResponsiveNavigation {
    /// Each mode with its name in config and in Luigi's settings.
    pub const ALL: [(&'static str, ResponsiveNavigation); 4] = [
        ("semiCollapsible", ResponsiveNavigation::SemiCollapsible),
        ("simple", ResponsiveNavigation::Simple),
        ("simpleMobileOnly", ResponsiveNavigation::SimpleMobileOnly),
        ("Fiori3", ResponsiveNavigation::Fiori3),
    ];

    /// The name Luigi knows the mode by.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponsiveNavigation::SemiCollapsible => "semiCollapsible",
            ResponsiveNavigation::Simple => "simple",
            ResponsiveNavigation::SimpleMobileOnly => "simpleMobileOnly",
            ResponsiveNavigation::Fiori3 => "Fiori3",
        }
    }
}

/// A tenant's colours; each a CSS hex colour (`#rgb` or `#rrggbb`), checked by config.
#[derive(Debug, Clone, Default)]
pub struct Theme {
    /// The shell bar's background.
    pub shell_color: Option<String>,
    /// Selection and highlight colour (selected navigation entry, links, focus).
    pub accent_color: Option<String>,
}

/// `scheme://host[:port]` of a tenant, as users see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    /// HTTPS origins get `Secure`, `__Host-` cookies.
    pub https: bool,
    /// Lower-case, no trailing slash, e.g. `https://portal.acme.example`.
    pub origin: String,
}

/// How users of a tenant sign in.
#[derive(Debug, Clone)]
pub enum SignIn {
    /// Pick a demo user from a list. Only ever served on a loopback listener (see `auth::dev`).
    Dev { users: Vec<DevUser> },
    /// OpenID Connect authorization code flow with PKCE, portico as a confidential client.
    Oidc(OidcSettings),
}

/// One tenant's OpenID Provider and client registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Always starts with `openid`.
    pub scopes: Vec<String>,
    /// Path into the ID token's claims, e.g. `["realm_access", "roles"]` or `["cognito:groups"]`.
    pub groups_claim: Vec<String>,
    /// Accepted ID token signing algorithms (asymmetric only), parsed once here.
    pub signing_algs: Vec<SigningAlg>,
    /// How often the IdP is probed (discovery and keys fetched again); also the longest backoff
    /// between retries while it is down.
    pub probe_interval: Duration,
    /// The `aud` of the IdP's JWT access tokens that portico accepts as `Authorization: Bearer`
    /// (`bearer.audience`); `None`: no bearer tokens from this IdP.
    pub bearer_audience: Option<String>,
    /// Opaque (non-JWT) bearer tokens are asked about at the IdP's introspection endpoint
    /// (`bearer.introspect`, RFC 7662); only ever set together with `bearer_audience`.
    pub bearer_introspect: bool,
}

impl OidcSettings {
    /// The default of `auth.oidc.probe_interval`.
    pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);
}

/// An ID token signing algorithm portico accepts: asymmetric only, so no one holding the client
/// secret can mint ID tokens, and never `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl SigningAlg {
    /// Every accepted algorithm, in the order of the default list.
    pub const ALL: [SigningAlg; 9] = [
        SigningAlg::Rs256,
        SigningAlg::Rs384,
        SigningAlg::Rs512,
        SigningAlg::Ps256,
        SigningAlg::Ps384,
        SigningAlg::Ps512,
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::EdDsa,
    ];

    /// The JOSE name (`alg` in a JWS header).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Rs384 => "RS384",
            SigningAlg::Rs512 => "RS512",
            SigningAlg::Ps256 => "PS256",
            SigningAlg::Ps384 => "PS384",
            SigningAlg::Ps512 => "PS512",
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JOSE name, if portico accepts it.
    pub fn from_name(name: &str) -> Option<SigningAlg> {
        SigningAlg::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

/// One of `server.signing_keys`: the file and what it held when the config was loaded (checked to
/// be a P-256 private key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyFile {
    pub path: PathBuf,
    pub pem: Secret,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A demo user for dev sign-in, with the groups an IdP would send.
#[derive(Debug, Clone)]
pub struct DevUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub groups: Vec<String>,
}

/// One registered micro-app.
#[derive(Debug)]
pub struct App {
    pub id: AppId,
    pub label: Text,
    pub category: Option<Text>,
    pub icon: Option<String>,
    pub owner: Option<String>,
    /// What the app does, in a sentence: the launchpad's tile shows it.
    pub description: Option<Text>,
    /// The app's entity in the tenant's Backstage catalog (`component:acme/cost-insights`, lower
    /// case); the shell shows its owner and links, fetched as the user.
    pub catalog_ref: Option<String>,
    pub access: AccessRule,
    /// The app's rule plus its nodes' narrower rules; what `rbac::decide` reads.
    pub policy: AccessPolicy,
    pub target: AppTarget,
    /// The app's navigation entries below its own top-level entry.
    pub nodes: Vec<NavNode>,
    /// Whether the app loads Luigi Client; if not, Luigi must not wait for its handshake.
    pub luigi_client: bool,
    /// What portico tells the upstream about the user.
    pub identity: IdentityModes,
    /// What happens to the upstream's cookies (`cookies:`); see `jar` for why `Jar` is the default.
    pub cookies: CookieMode,
    /// Where the app lives on the origin: `/apps/<id>/`, or `/backstage/` for Backstage's web UI.
    pub mount: AppMount,
    /// Whether the upstream's shareable answers are kept in portico's response cache (`cache:`,
    /// upstream apps only; see `proxy::cache` for which answers).
    pub cache: bool,
    /// Which of the app's answers portico compresses (`compress:`); see `CompressMode`.
    pub compress: CompressMode,
}

/// Where an app lives on the tenant's origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppMount {
    /// `/apps/<id>/`: every app registered in config.
    #[default]
    Apps,
    /// `/backstage/` (but never `/backstage/api/`): Backstage's own web UI (`backstage.ui`), built with
    /// `app.baseUrl` ending in `/backstage` and `backend.baseUrl` at the portal, so its API calls take
    /// portico's `/backstage/api/` mount.
    BackstageUi,
}

impl App {
    /// The app's path on the origin, without the trailing slash: `/apps/<id>` or `/backstage`.
    pub fn base(&self) -> std::borrow::Cow<'_, str> {
        match self.mount {
            AppMount::Apps => format!("/apps/{}", self.id).into(),
            AppMount::BackstageUi => "/backstage".into(),
        }
    }
}

/// Which answers of an app portico compresses on the fly (`compress:` of an app).
///
/// BREACH: a compressed answer's length tells an observer of the encrypted traffic how much of an
/// attacker-chosen text (reflected from the URL, say) matches a secret in the same answer (a CSRF
/// token, a user's data). Scripts, stylesheets and fonts are the same for every user and rarely
/// reflect a request, so they are compressed by default; HTML and JSON are where secrets and reflected
/// input meet, so they are the app's choice (`text`), not portico's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompressMode {
    /// Nothing: every answer passes as the app sent it.
    Off,
    /// Static-looking types only: CSS, JavaScript, SVG, WebAssembly, uncompressed fonts (default).
    #[default]
    Assets,
    /// Those and every other text type: HTML, JSON, XML, plain text, …
    Text,
}

impl CompressMode {
    /// Each mode with its name in config.
    pub const ALL: [(&'static str, CompressMode); 3] = [
        ("assets", CompressMode::Assets),
        ("text", CompressMode::Text),
        ("off", CompressMode::Off),
    ];
}

/// Where an app's cookies live (`cookies:` of an app).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieMode {
    /// In portico's session store, per session and app; the browser never sees them and the
    /// upstream gets only these (the default).
    #[default]
    Jar,
    /// In the browser, `Path` moved below `/apps/<id>/` and `Domain` dropped: script-readable, and
    /// readable and writable by every other app's script on the origin.
    Scoped,
    /// Nowhere: the upstream's `Set-Cookie` is dropped.
    Drop,
}

impl CookieMode {
    /// Each mode with its name in config.
    pub const ALL: [(&'static str, CookieMode); 3] = [
        ("jar", CookieMode::Jar),
        ("scoped", CookieMode::Scoped),
        ("drop", CookieMode::Drop),
    ];
}

/// What goes upstream about the user (`identity:` of an app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityModes {
    /// `X-Portico-Assertion`: the signed JWT (verify with `/.well-known/jwks.json`).
    pub assertion: bool,
    /// `X-Portico-User`, `-Email`, `-Name`, `-Groups`, `-Roles`, `-Tenant`, `-App`.
    pub headers: bool,
    /// `Authorization: Bearer <the user's OIDC access token>`; opt-in.
    pub access_token: bool,
}

impl IdentityModes {
    /// The words of `identity:` in config.
    pub const WORDS: [&'static str; 4] = ["assertion", "headers", "access_token", "none"];

    /// Nothing about the user goes upstream (`identity: none`).
    pub const NONE: IdentityModes = IdentityModes {
        assertion: false,
        headers: false,
        access_token: false,
    };
}

impl Default for IdentityModes {
    fn default() -> Self {
        IdentityModes {
            assertion: true,
            headers: true,
            access_token: false,
        }
    }
}

/// The methods a request rule (`rules[].methods`) may name.
pub const REQUEST_METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// The path modes of an app (`paths:`), with how rules then compare letter case.
pub const PATH_MODES: [(&str, PathCase); 2] = [
    ("case_insensitive", PathCase::Insensitive),
    ("case_sensitive", PathCase::Sensitive),
];

/// Where an app's content comes from.
#[derive(Debug, Clone)]
pub enum AppTarget {
    /// An HTTP upstream; requests to `/apps/<id>/rest` go to `base_path + rest`.
    Upstream(Upstream),
    /// Files in a directory on disk.
    StaticDir(PathBuf),
    /// A bundle compiled into the binary (the demo apps), by name.
    Embedded(String),
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host:port` to connect to and to send as Host.
    pub authority: String,
    /// Path prefix on the upstream, without a trailing slash ("" for the root).
    pub base_path: String,
    /// The URL as written, for logs and error pages.
    pub url: String,
    /// How portico speaks TLS to it: `None` for an `http://` upstream, always set for `https://`.
    pub tls: Option<Arc<UpstreamTls>>,
}

/// The TLS settings of an `https://` upstream (`tls:` beside its URL), read and checked at load: the
/// PEM files are parsed here, so a broken file is a config error, not a failure at the first request.
/// Upstreams with equal settings share one connection pool (see `proxy::tls`), found by `fingerprint`.
#[derive(Debug)]
pub struct UpstreamTls {
    /// Who may vouch for the upstream's certificate.
    pub roots: TrustRoots,
    /// The certificate portico shows an upstream that asks for one (mTLS).
    pub client_auth: Option<ClientAuth>,
    /// The name the upstream's certificate must carry and SNI sends, when not the URL's host.
    pub server_name: Option<rustls::pki_types::ServerName<'static>>,
    /// SHA-256 over everything above: equal settings, equal fingerprint, also across reloads.
    pub fingerprint: [u8; 32],
}

/// The certificate authorities an upstream's certificate is checked against.
#[derive(Debug, Clone)]
pub enum TrustRoots {
    /// The operating system's roots (no `ca`/`extra_ca`).
    System,
    /// The system's roots and these (`extra_ca:`).
    SystemAnd(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// Only these (`ca:`): no public CA can vouch for an internal upstream.
    Only(Vec<rustls::pki_types::CertificateDer<'static>>),
}

impl TrustRoots {
    /// Whether the system's roots are needed.
    pub fn uses_system(&self) -> bool {
        !matches!(self, TrustRoots::Only(_))
    }
}

/// A client certificate chain and its private key, checked to belong together at load.
pub struct ClientAuth {
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One navigation entry of an app.
#[derive(Debug, Clone)]
pub struct NavNode {
    /// One path segment; the entry lives at `/<app-id>/<path>` in the shell.
    pub path: String,
    pub label: Text,
    /// Path inside the app that the entry shows, starting with `/`.
    pub view: String,
    pub icon: Option<String>,
    /// `None` inherits the app's rule.
    pub access: Option<AccessRule>,
    pub children: Vec<NavNode>,
}

impl NavNode {
    /// A path parameter (`path: ":incident"`): the node matches any one segment, and Luigi puts the
    /// segment into its view (`/incidents/:incident`). Such a node is a route, not an entry: it never
    /// shows in the navigation.
    pub fn is_parameter(&self) -> bool {
        self.path.starts_with(':')
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const ASK: AccessAsk<'static> = AccessAsk {
        app: "cost-insights",
        app_label: "Kosten & \"Nutzen\" <b>",
        page: Some("Berichte für 2024"),
        user: "ann+x@acme.example",
        tenant: "acme",
        path: "/apps/cost-insights/a b?c=d#e",
    };

    #[test]
    fn filled_values_are_percent_encoded_and_never_break_out_of_their_parameter() {
        let template = RequestAccess::parse(
            "https://tickets.acme.example/new?summary=Access+to+{app_label}&app={app}&page={page}&user={user}&t={tenant}&p={path}&r={role}&g={group}",
        )
        .unwrap();
        let url = template.fill(&ASK, "fin-ops", "acme finance & co");
        assert_eq!(
            url,
            "https://tickets.acme.example/new?summary=Access+to+Kosten%20%26%20%22Nutzen%22%20%3Cb%3E\
             &app=cost-insights&page=Berichte%20f%C3%BCr%202024&user=ann%2Bx%40acme.example&t=acme\
             &p=%2Fapps%2Fcost-insights%2Fa%20b%3Fc%3Dd%23e&r=fin-ops&g=acme%20finance%20%26%20co"
        );
        for bad in ['"', '<', '>', ' ', '#', '\''] {
            assert!(!url.contains(bad), "{bad:?} in {url}");
        }
        // One `&` per parameter of the template, none from the values.
        assert_eq!(url.matches('&').count(), 7);
    }

    #[test]
    fn literal_text_outside_placeholders_keeps_its_letters_as_a_url_needs_them() {
        let template =
            RequestAccess::parse("mailto:access@acme.example?subject=Zugang%20f\u{fc}r%20{app}")
                .unwrap();
        assert_eq!(
            template.fill(&ASK, "r", "g"),
            "mailto:access@acme.example?subject=Zugang%20f%C3%BCr%20cost-insights"
        );
    }

    #[test]
    fn links_come_per_group_per_role_or_once_as_the_template_names_them() {
        let finance = ["acme-finance".to_owned(), "acme-controlling".to_owned()];
        let admins = ["acme-admins".to_owned()];
        let needs = [("finance", &finance[..]), ("admin", &admins[..])];
        let per_group = RequestAccess::parse("https://t.example/?g={group}").unwrap();
        let links = per_group.links(&ASK, needs);
        let groups: Vec<_> = links.iter().map(|l| l.group.as_deref().unwrap()).collect();
        assert_eq!(groups, ["acme-finance", "acme-controlling", "acme-admins"]);
        assert_eq!(links[2].role.as_deref(), Some("admin"));
        assert_eq!(links[2].url, "https://t.example/?g=acme-admins");

        let per_role = RequestAccess::parse("https://t.example/?r={role}").unwrap();
        let links = per_role.links(&ASK, needs);
        assert_eq!(links.len(), 2);
        assert_eq!(
            (links[0].role.as_deref(), links[0].group.as_deref()),
            (Some("finance"), None)
        );

        let once = RequestAccess::parse("https://t.example/new?app={app}").unwrap();
        assert_eq!(
            once.links(&ASK, needs),
            [AccessLink {
                role: None,
                group: None,
                url: "https://t.example/new?app=cost-insights".to_owned()
            }]
        );
        assert_eq!(once.links(&ASK, []), []);
    }

    #[test]
    fn only_https_loopback_http_and_mailto_links_with_a_written_address_are_templates() {
        for good in [
            "https://tickets.acme.example/new?app={app}&group={group}",
            "HTTPS://tickets.acme.example:8443/{app}/{group}#{page}",
            "http://localhost:3000/?g={group}",
            "http://127.0.0.1/?g={group}",
            "http://[::1]:8080/?g={group}",
            "mailto:access@acme.example?subject={app}&body={user}",
            "https://tickets.acme.example",
        ] {
            assert!(RequestAccess::parse(good).is_ok(), "{good}");
        }
        for (bad, error) in [
            (
                "javascript:alert({app})",
                RequestAccessError::Scheme("javascript".into()),
            ),
            (
                "JavaScript://x.example/%0aalert(1)",
                RequestAccessError::Scheme("JavaScript".into()),
            ),
            (
                "data:text/html,{app}",
                RequestAccessError::Scheme("data".into()),
            ),
            (
                "/tickets?app={app}",
                RequestAccessError::Scheme("/tickets?app={app}".into()),
            ),
            (
                "http://tickets.acme.example/?g={group}",
                RequestAccessError::PlainHttp("tickets.acme.example".into()),
            ),
            ("https:///new?g={group}", RequestAccessError::NoHost),
            (
                "https://{tenant}.tickets.example/",
                RequestAccessError::PlaceholderInAddress("tenant".into()),
            ),
            (
                "https://tickets.example{path}",
                RequestAccessError::PlaceholderInAddress("path".into()),
            ),
            (
                "mailto:{user}?subject={app}",
                RequestAccessError::PlaceholderInAddress("user".into()),
            ),
            ("mailto:?subject={app}", RequestAccessError::NoAddress),
            (
                "https://me:secret@tickets.example/",
                RequestAccessError::Credentials,
            ),
            (
                "https://tickets.example:99999/",
                RequestAccessError::BadHost("tickets.example:99999".into()),
            ),
            (
                "https://t.example/?g={grup}",
                RequestAccessError::UnknownPlaceholder("grup".into()),
            ),
            ("https://t.example/?g={group", RequestAccessError::Unclosed),
            ("https://t.example/?g=}", RequestAccessError::StrayClose),
            (
                "https://t.example/?s=Access to {app}",
                RequestAccessError::BadCharacter("a space".into()),
            ),
            (
                "https://t.example/?s=\"><script>{app}",
                RequestAccessError::BadCharacter("`\\\"`".into()),
            ),
        ] {
            let errors = RequestAccess::parse(bad).expect_err(bad);
            assert_eq!(errors[0], error, "{bad}: {errors:?}");
        }
    }

    #[test]
    fn the_user_is_named_by_email_else_by_subject() {
        assert_eq!(
            AccessAsk::requester("ann@acme.example", "u-1"),
            "ann@acme.example"
        );
        assert_eq!(AccessAsk::requester("", "u-1"), "u-1");
    }
}
