//! The config document as written: serde structs mirroring the YAML, one per mapping. This is the
//! schema, in one place: the allowed keys of every mapping (their order is the order hints list them),
//! what each key holds, and its documentation, from which `docs/portico.schema.json` and
//! `docs/config-reference.md` are generated (see `config::schema`).
//!
//! Every key is optional here and every value is wrapped in a [`Val`], which keeps the value's position
//! and stops a shape error (a list where a value belongs, a bad boolean) at that key: the rest of the
//! document is still read, so every mistake is reported at once. What a value *means* (a URL, a role that
//! exists, a duration) is checked by `config::compile`, which also reports required keys that are
//! missing, with a hint per key. Text is either [`Env`] (may read `${VAR}`) or [`Shown`] (reaches
//! users' browsers, so it is written literally): the type of each key says which.

use serde::Deserialize;

pub(crate) use super::wrap::{
    Entity, Env, FlexBool, List, Named, OrText, Shown, Translated, Val, field,
};

/// A list of text values; a single value counts as a list of one.
pub(crate) type Texts = List<Val<Env>>;
/// A list of text values shown to users.
pub(crate) type ShownTexts = List<Val<Shown>>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(title = "portico config"))]
pub(crate) struct RawConfig {
    /// The config format; only `1` exists.
    pub version: Option<Val<Env>>,
    /// The listeners and connection limits.
    pub server: Option<Val<RawServer>>,
    /// Where sessions live and how long they last.
    pub sessions: Option<Val<RawSessions>>,
    /// Timeouts and limits of proxied requests.
    pub proxy: Option<Val<RawProxy>>,
    /// The tenant that answers a Host no tenant lists. Without it such a request gets 404.
    pub default_tenant: Option<Val<Env>>,
    /// The portals, by id (lower-case letters, digits and `-`). Required: at least one.
    pub tenants: Option<Val<Named<Val<RawTenant>>>>,
    /// Apps defined once and enabled for several tenants, each checked against that tenant's roles.
    pub shared_apps: Option<Val<Vec<Val<RawSharedApp>>>>,
    /// Trace export; off by default.
    pub telemetry: Option<Val<RawTelemetry>>,
}

/// `telemetry:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "telemetry"))]
pub(crate) struct RawTelemetry {
    /// OpenTelemetry trace export over OTLP/HTTP (JSON): one server span per request, in batches.
    pub otlp: Option<Val<RawOtlp>>,
}

/// `telemetry.otlp:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "otlp"))]
pub(crate) struct RawOtlp {
    /// Where spans are posted: the full `http://` URL of the traces endpoint, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (an OpenTelemetry Collector beside portico). Required.
    pub endpoint: Option<Val<Env>>,
}

/// `server:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "server"))]
pub(crate) struct RawServer {
    /// The tenant listener, an IP address with a port (default `127.0.0.1:8080`).
    pub listen: Option<Val<Env>>,
    /// Health and readiness (`/healthz`, `/readyz`); never served on tenant origins. Default: off.
    pub admin_listen: Option<Val<Env>>,
    /// PEM files of the P-256 keys that sign identity assertions: the first signs, all are published.
    /// Default: a key generated at start (assertions then do not survive a restart).
    pub signing_keys: Option<Val<Texts>>,
    /// A request's head must arrive within this long of its first byte (the first request's: of the
    /// connection's start; a TLS handshake too) (default `30s`).
    pub header_read_timeout: Option<Val<Env>>,
    /// Open connections on the tenant listener; more are refused with 503 (default 4096).
    pub max_connections: Option<Val<Env>>,
    /// Worker threads, each with its own event loop and upstream connection pool, accepting on the one
    /// tenant listener, like nginx's `worker_processes`: a number, or `auto` for one per CPU core the
    /// process may use (default `auto`).
    pub workers: Option<Val<Env>>,
    /// Open connections from one client address (an IPv6 /64 counts as one); more get 429 (default 256).
    pub max_connections_per_client: Option<Val<Env>>,
    /// Proxies (load balancers) in front of portico, as CIDRs (`10.0.0.0/8`, `2001:db8::/32`, or one
    /// address): from them, `X-Forwarded-For` names the client on the access line and a sent
    /// `X-Request-Id` is kept. Default: none, so no client-sent header is believed.
    pub trusted_proxies: Option<Val<Texts>>,
    /// A connection with no request in flight that sends nothing for this long after its last response
    /// is closed (nginx's `keepalive_timeout`; default `75s`).
    pub keepalive_timeout: Option<Val<Env>>,
    /// A request body that sends nothing for this long while it is being read is cut off: 408 and the
    /// connection closed on HTTP/1, the stream reset on HTTP/2 (nginx's `client_body_timeout`; default `60s`).
    pub body_read_timeout: Option<Val<Env>>,
    /// How long a shutdown (SIGTERM, Ctrl-C) waits for requests in flight before it cuts them; a second
    /// signal exits at once (default `30s`).
    pub shutdown_timeout: Option<Val<Env>>,
    /// Serve the tenant listener over TLS (HTTPS, HTTP/2 by ALPN). Default: plain HTTP.
    pub tls: Option<Val<RawTls>>,
    /// A plain HTTP listener that only redirects to `https://` (for hosts a tenant lists), e.g.
    /// `0.0.0.0:80`. Default: off.
    pub redirect_listen: Option<Val<Env>>,
    /// `Strict-Transport-Security` on every response of a tenant whose `public_origin` is https.
    pub hsts: Option<Val<RawHsts>>,
}

/// `server.tls:`: certificate chains and keys in PEM files (relative to the config file). The first
/// certificate is the default, served to clients that send no server name (SNI) or one no certificate
/// covers; the others are chosen by the DNS names in their subjectAltName (`*.` wildcards too).
/// Changed files are picked up without a restart; a broken renewal is logged and the old one stays.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "tls"))]
pub(crate) struct RawTls {
    /// The certificate chain, leaf first (PEM). With `key`, the first (default) certificate.
    pub cert: Option<Val<Env>>,
    /// The private key of `cert` (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: Option<Val<Env>>,
    /// More certificates, each `{ cert, key }`, chosen by SNI.
    pub certificates: Option<Val<Vec<Val<RawCertificate>>>>,
    /// How often the files are checked for a renewed certificate (default `5s`).
    pub reload_interval: Option<Val<Env>>,
}

/// One entry of `server.tls.certificates`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "certificate"))]
pub(crate) struct RawCertificate {
    /// The certificate chain, leaf first (PEM). Required.
    pub cert: Option<Val<Env>>,
    /// Its private key (PEM). Required.
    pub key: Option<Val<Env>>,
}

/// `server.hsts:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "hsts"))]
pub(crate) struct RawHsts {
    /// How long browsers keep to https for the host (default `365d`); `off` sends no header.
    pub max_age: Option<Val<Env>>,
    /// Also for every subdomain of the host (default `false`): only when all of them serve https.
    pub include_subdomains: Option<Val<FlexBool>>,
}

/// `sessions:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "sessions"))]
pub(crate) struct RawSessions {
    /// Where sessions live: `memory` (default: this process only, lost on restart) or `redis` (shared
    /// by every instance; configure `redis:`).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::stores"))]
    pub store: Option<Val<Env>>,
    /// A session unused this long ends (default `8h`).
    pub idle_timeout: Option<Val<Env>>,
    /// A session ends this long after sign-in, used or not (default `24h`).
    pub absolute_timeout: Option<Val<Env>>,
    /// Sign-ins sent to the IdP and not yet back, per client address and tenant (default 100).
    pub pending_sign_ins_per_client: Option<Val<Env>>,
    /// The same per tenant (default 10000); when full, the client holding most gives up its oldest.
    pub pending_sign_ins_per_tenant: Option<Val<Env>>,
    /// How long a session outlives its access token while the IdP cannot be reached to refresh it
    /// (default `5m`; `0s`: it ends with the token). A refresh the IdP refuses ends it at once.
    pub refresh_grace: Option<Val<Env>>,
    /// Sessions the store keeps (in memory: this instance; in Redis: all instances together); a new
    /// sign-in beyond it ends the least recently used one (default 100000).
    pub max_sessions: Option<Val<Env>>,
    /// Sessions one user (tenant and subject) keeps; a new sign-in beyond it ends that user's least
    /// recently used one (default 20).
    pub max_sessions_per_user: Option<Val<Env>>,
    /// The Redis that `store: redis` keeps sessions, sign-ins in flight and Backstage tokens in.
    pub redis: Option<Val<RawRedis>>,
}

/// `sessions.redis:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "redis"))]
pub(crate) struct RawRedis {
    /// `redis://host:6379/0`, or `rediss://` for TLS. Credentials belong in `username` and
    /// `password_file` (or `password: ${VAR}`), not here.
    pub url: Option<Val<Env>>,
    /// The ACL user (Redis 6+); omit for the default user.
    pub username: Option<Val<Env>>,
    /// The password, usually `${REDIS_PASSWORD}`.
    pub password: Option<Val<Env>>,
    /// A file holding the password (a mounted secret); instead of `password`.
    pub password_file: Option<Val<Env>>,
    /// A file holding the key that encrypts sessions at rest: 32 random bytes in base64
    /// (`openssl rand -base64 32`). Required; every instance needs the same file.
    pub key_file: Option<Val<Env>>,
    /// Every key portico writes starts with it, so one Redis can serve several deployments
    /// (default `portico:`).
    pub prefix: Option<Val<Env>>,
    /// PEM file of the CA that signed the Redis server's certificate (`rediss://` with a private CA;
    /// default: the system's roots).
    pub ca: Option<Val<Env>>,
    /// How long a signed-in user's requests keep working from this instance's cache while Redis
    /// cannot be reached (default `60s`; `0s`: not at all).
    pub outage_grace: Option<Val<Env>>,
}

/// `proxy:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "proxy"))]
pub(crate) struct RawProxy {
    /// How long connecting to an upstream may take (default `5s`).
    pub connect_timeout: Option<Val<Env>>,
    /// How long an upstream may take to send its response headers before the client gets 504
    /// (default `30s`).
    pub response_timeout: Option<Val<Env>>,
    /// A response body that sends nothing for this long is cut off (default `60s`).
    pub idle_timeout: Option<Val<Env>>,
    /// Larger request bodies are refused with 413: `512KiB`, `10MiB`, `1GiB` (default `100MiB`).
    pub max_request_body: Option<Val<Env>>,
    /// How long a signed identity assertion is valid, at most `10m` (default `1m`).
    pub assertion_lifetime: Option<Val<Env>>,
    /// Bounds of the in-memory cache of upstream responses, for apps that turn on `cache:`.
    pub cache: Option<Val<RawCache>>,
}

/// `proxy.cache:`: one cache shared by every tenant and app; entries are keyed by tenant and app.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "cache"))]
pub(crate) struct RawCache {
    /// All stored responses together, bodies and headers: `64MiB` (default); the least recently used
    /// go first.
    pub max_bytes: Option<Val<Env>>,
    /// A response larger than this is passed on and not stored (default `8MiB`).
    pub max_entry_bytes: Option<Val<Env>>,
}

/// One tenant: an isolated portal with its own hosts, sign-in, roles and apps.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "tenant"))]
pub(crate) struct RawTenant {
    /// `host` or `host:port` values the Host header is matched against; each belongs to one tenant.
    pub hosts: Option<Val<Texts>>,
    /// The origin users type (`https://portal.acme.example`). Required for OIDC: redirect URIs are
    /// built from it, never from the Host header. `https` origins get `Secure`, `__Host-` cookies.
    pub public_origin: Option<Val<Env>>,
    /// Title, logo, favicon and colours of the shell.
    pub branding: Option<Val<RawBranding>>,
    /// How users sign in. Required.
    pub auth: Option<Val<RawAuth>>,
    /// Portal roles by name, each granted by IdP groups. Required (may be empty: `{}`).
    pub roles: Option<Val<Named<Val<RawRole>>>>,
    /// The tenant's apps, in navigation order.
    pub apps: Option<Val<Vec<Entity<RawApp>>>>,
    /// Glob patterns of app files (one app per file, relative to this file), owned by teams: confined
    /// to their own directory and to `apps_env` variables.
    pub apps_from: Option<Val<Texts>>,
    /// Environment variables that app files may read with `${VAR}` (bare names).
    pub apps_env: Option<Val<Texts>>,
    /// Directories whose bundles app files may serve with `static:`, besides their own directory.
    pub apps_static_roots: Option<Val<Texts>>,
    /// A Backstage backend mounted at `/backstage/api/`.
    pub backstage: Option<Val<RawBackstage>>,
    /// Luigi shell settings.
    pub luigi: Option<Val<RawLuigi>>,
    /// Where a refused user asks for access: a link template that the 403 page and the shell's
    /// not-found view fill per group that would let them in, e.g.
    /// `https://tickets.acme.example/new?summary=Access+to+{app}&group={group}`. An `https://` URL,
    /// `http://` on a loopback host, or `mailto:` with a written address. Placeholders, after the
    /// host (or address) only: `{app}` (id), `{app_label}`, `{page}` (empty for a whole app),
    /// `{role}`, `{group}`, `{user}` (verified email, else IdP subject), `{tenant}`, `{path}`; each
    /// value is percent-encoded. Without it, users are told to ask the app's owner.
    pub request_access: Option<Val<Shown>>,
    /// Health-aware navigation: portico probes each app's entry view on an interval, as a user
    /// holding `as.groups`, and marks an app that stops answering as degraded in the navigation and
    /// the launchpad (and in `portico_app_up`). Off unless `interval` says how often.
    pub health: Option<Val<RawHealth>>,
    /// Preview overrides: a signed-in developer may send one app's requests to a preview upstream
    /// that matches `upstreams`, for their own session only, after confirming it on a page portico
    /// shows (a pull request links to `/shell/preview/<app>?upstream=<url>`). Off unless given.
    pub previews: Option<Val<RawPreviews>>,
    /// Bearer tokens of scripts, CI jobs and agents: personal access tokens users mint in the shell,
    /// and the per-token rate limit (README, "Personal access tokens"). Without it: no personal
    /// tokens, and IdP access tokens (`auth.oidc.bearer`) limited to `600/min` each.
    pub tokens: Option<Val<RawTokens>>,
}

/// `tokens:` of a tenant.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "tokens"))]
pub(crate) struct RawTokens {
    /// Personal access tokens: users may mint tokens that live at most this long (`30d`, at most
    /// `366d`), or `off` (default).
    pub personal: Option<Val<Env>>,
    /// Requests one bearer token (the IdP's or a personal one) may make, per instance:
    /// `<count>/<s|min|h>`, e.g. `600/min` (default), or `off`. Beyond it: 429 with `Retry-After`.
    pub rate_limit: Option<Val<Env>>,
}

/// `previews:` of a tenant (README, "Preview an app's pull request").
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "previews"))]
pub(crate) struct RawPreviews {
    /// The origins a preview may live at: `http://*.preview.internal`, `https://pr-7.acme.example`,
    /// `http://127.0.0.1:*`. `*.` stands for one or more labels in front of a suffix of at least two
    /// labels; `:*` for any port. No path, query or credentials. Required, at least one.
    pub upstreams: Option<Val<Texts>>,
    /// How long one override lasts at most (default `8h`); it ends sooner with the session.
    pub lifetime: Option<Val<Env>>,
    /// Who may start a preview, on top of being allowed to open the app (default: everyone who may).
    pub roles: Option<Val<Texts>>,
}

/// `health:` of a tenant: the in-server probe of its apps (README, "Health-aware navigation").
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "health"))]
pub(crate) struct RawHealth {
    /// How often every app's entry view is probed: `30s`, at least `100ms`; `off` probes nothing.
    /// Required.
    pub interval: Option<Val<Env>>,
    /// How long one probe may take before it counts as failed (default `5s`).
    pub timeout: Option<Val<Env>>,
    /// Who the probe is: a synthetic user holding these groups, who sees (and so probes) what such
    /// a user sees. Required unless `interval: off`.
    #[serde(rename = "as")]
    #[cfg_attr(test, schemars(rename = "as"))]
    pub as_user: Option<Val<RawHealthUser>>,
}

/// `health.as:` the synthetic user the probe runs as.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "health_user"))]
pub(crate) struct RawHealthUser {
    /// IdP groups the probe holds; together they must grant at least one role. Required.
    pub groups: Option<Val<Texts>>,
}

/// `branding:` of a tenant. Every value is shown in browsers: written literally, never `${VAR}`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "branding"))]
pub(crate) struct RawBranding {
    /// The portal's title (default `<tenant> portal`).
    pub title: Option<Val<Shown>>,
    /// The logo in the shell bar and on the sign-in page: an image file next to this config
    /// (`acme-logo.svg`; svg, png, webp, jpg, gif, ico), served by portico, or a URL (`/…`, `https://…`).
    pub logo: Option<Val<Shown>>,
    /// The favicon, the same way.
    pub favicon: Option<Val<Shown>>,
    /// The shell's colours.
    pub theme: Option<Val<RawTheme>>,
}

/// `branding.theme:`: CSS hex colours (`#rgb` or `#rrggbb`); quote them, YAML reads `#` as a comment.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "theme"))]
pub(crate) struct RawTheme {
    /// The shell bar's background.
    #[serde(default)]
    pub shell_color: Written<Shown>,
    /// Selection and highlight colour (selected navigation entry, links, focus).
    #[serde(default)]
    pub accent_color: Written<Shown>,
}

/// A key whose empty value (`key:`) is reported instead of being read as absent: `shell_color: #fff`
/// is empty to YAML, and deserves a hint rather than silence.
#[derive(Debug, Default)]
pub(crate) struct Written<T>(pub Option<Val<Option<T>>>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Written<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Val::deserialize(deserializer).map(|value| Written(Some(value)))
    }
}

#[cfg(test)]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Written<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

/// `luigi:` of a tenant.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "luigi"))]
pub(crate) struct RawLuigi {
    /// `semiCollapsible` (default), `simple`, `simpleMobileOnly` or `Fiori3`.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::navigation_modes"))]
    pub responsive_navigation: Option<Val<Shown>>,
    /// Text at the foot of the side navigation (default `portico <version>`).
    pub side_nav_footer: Option<Val<Shown>>,
    /// How long the shell waits for an app that loads Luigi Client to start before it says what is
    /// wrong instead of a spinner (default `10s`).
    pub frame_timeout: Option<Val<Shown>>,
}

/// `auth:` of a tenant: exactly one of `dev_sign_in` and `oidc`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "auth"))]
pub(crate) struct RawAuth {
    /// Pick a demo user from a list; only ever served on a loopback listener.
    pub dev_sign_in: Option<Val<RawDevSignIn>>,
    /// OpenID Connect, authorization code flow with PKCE; portico is a confidential client.
    pub oidc: Option<Val<RawOidc>>,
}

/// `auth.dev_sign_in:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "dev_sign_in"))]
pub(crate) struct RawDevSignIn {
    /// The demo users that can be picked. Required, at least one.
    pub users: Option<Val<Vec<Val<RawDevUser>>>>,
}

/// One demo user. Shown in browsers: written literally.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "dev_user"))]
pub(crate) struct RawDevUser {
    /// A short login name. Required, unique.
    pub id: Option<Val<Shown>>,
    /// Display name (default: the id).
    pub name: Option<Val<Shown>>,
    /// E-mail (default `<id>@example.invalid`).
    pub email: Option<Val<Shown>>,
    /// The groups an IdP would send.
    pub groups: Option<Val<ShownTexts>>,
}

/// `auth.oidc:`
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "oidc"))]
pub(crate) struct RawOidc {
    /// The IdP's issuer URL; https (plain http only on loopback). Required.
    pub issuer: Option<Val<Env>>,
    /// The client id registered at the IdP. Required.
    pub client_id: Option<Val<Env>>,
    /// The client secret, usually `${VAR}`. Required unless `client_secret_file` is given.
    pub client_secret: Option<Val<Env>>,
    /// A file holding the client secret (e.g. a mounted secret).
    pub client_secret_file: Option<Val<Env>>,
    /// Scopes to ask for; `openid` is always added (default `openid profile email`).
    pub scopes: Option<Val<Texts>>,
    /// Dotted path to the groups in the ID token's claims, e.g. `realm_access.roles` (default `groups`).
    pub groups_claim: Option<Val<Env>>,
    /// Accepted ID token signing algorithms: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384,
    /// EdDSA (default: all of them; never `none` or HMAC).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::signing_algs"))]
    pub signing_algs: Option<Val<Texts>>,
    /// How often the IdP's discovery document and keys are fetched to check it is up (default `30s`;
    /// while it is down, retries back off from 1s up to this). An outage or a recovery shows in
    /// `/readyz` and at `/auth/login` within this plus 5s.
    pub probe_interval: Option<Val<Env>>,
    /// Scripts, CI jobs and agents: `Authorization: Bearer <access token>` from this IdP is accepted
    /// on `/apps/<id>/…` when the token is a JWT for this audience (README, "Scripts, CI jobs and
    /// agents: bearer tokens"). Off unless given.
    pub bearer: Option<Val<RawBearer>>,
}

/// `auth.oidc.bearer:` which of the IdP's access tokens portico accepts.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "bearer"))]
pub(crate) struct RawBearer {
    /// The `aud` an access token must carry to be accepted here: the resource the IdP issues tokens
    /// for, e.g. `https://portal.acme.example` or `portico-acme`. Required. Give each tenant its own,
    /// so that a token for one tenant is worthless on another that shares the IdP.
    pub audience: Option<Val<Env>>,
    /// Opaque (non-JWT) access tokens too (default `false`: only JWTs): portico asks the IdP's token
    /// introspection endpoint (RFC 7662, `introspection_endpoint` in its discovery document) about
    /// each, as this client (`client_id`/`client_secret`, HTTP Basic), and takes the same checks from
    /// the answer (`active`, `iss`, `aud` containing `audience`, `exp`, `sub`, the groups). An active
    /// answer is kept for at most 30s (never past the token's `exp`): a token revoked at the IdP may
    /// still pass for that long.
    pub introspect: Option<Val<FlexBool>>,
}

/// `backstage:` of a tenant.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "backstage"))]
pub(crate) struct RawBackstage {
    /// The backend's base URL, `http://host:port` or `https://host:port`. Required.
    pub url: Option<Val<Env>>,
    /// How portico checks an `https` backend and proves itself to it (see `upstream.tls` of an app).
    pub tls: Option<Val<RawUpstreamTls>>,
    /// `user` (default: users are signed in to Backstage) or `service` (a static token).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::backstage_identities"))]
    pub identity: Option<Val<Env>>,
    /// For `identity: service`: `signed` (portico signs a one-minute token that Backstage verifies with
    /// portico's JWKS, see README), or a static external-access token, usually `${VAR}`.
    pub service_token: Option<Val<Env>>,
    /// For `identity: service`: a file holding the static token, read again at every reload (so the
    /// token rotates without a restart); instead of `service_token`.
    pub service_token_file: Option<Val<Env>>,
    /// Plugins reachable under `/backstage/api/<plugin>/` (default `[catalog]`; never `auth`).
    pub plugins: Option<Val<Texts>>,
    /// Catalog namespaces this tenant owns; catalog reads are narrowed to them. Empty: unscoped.
    pub namespaces: Option<Val<Texts>>,
    /// Namespaces this tenant reads but shares; every tenant listing one must mark it shared.
    pub shared_namespaces: Option<Val<Texts>>,
    /// The namespace users are signed in to Backstage in: one of `namespaces` (default: the first).
    pub user_namespace: Option<Val<Env>>,
    /// Catalog endpoints (path globs below `/api/catalog`) let through although they cannot be scoped.
    pub allow_unscoped: Option<Val<Texts>>,
    /// How users are signed in to Backstage: `auto` (default: portico's provider when the backend has
    /// it, else oauth2Proxy), `assertion` or `oauth2_proxy`.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::backstage_sign_ins"))]
    pub sign_in: Option<Val<Env>>,
    /// Who may do what in Backstage, by role; enforced by portico's permission policy in Backstage.
    pub permissions: Option<Val<Vec<Val<RawBackstageGrant>>>>,
    /// The built-in Catalog app for every role of the tenant (default `true`); an app of the tenant
    /// with id `catalog` or `static: embedded:catalog` replaces it.
    pub catalog_app: Option<Val<FlexBool>>,
    /// Backstage's own web UI at `/backstage/`, as an app of the tenant.
    pub ui: Option<Val<RawBackstageUi>>,
}

/// `backstage.ui`: Backstage's web UI, built with `app.baseUrl: <portal>/backstage` and
/// `backend.baseUrl: <portal>/backstage`, mounted at `/backstage/`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "backstage_ui"))]
pub(crate) struct RawBackstageUi {
    /// Where the UI's files are served (default: the backend's `url`, whose app-backend serves them).
    pub url: Option<Val<Env>>,
    /// Who may open it. Required.
    pub access: Option<Val<RawAccess>>,
    /// Navigation label (default `Backstage`).
    pub label: Option<Val<Translated>>,
    /// Navigation category.
    pub category: Option<Val<Translated>>,
}

/// One rule of `backstage.permissions`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "backstage_permission"))]
pub(crate) struct RawBackstageGrant {
    /// Roles the rule is for. Required.
    pub roles: Option<Val<Texts>>,
    /// Backstage permission names (`catalog.entity.delete`), `prefix.*` patterns or `*`. Required.
    pub allow: Option<Val<Texts>>,
    /// Where: some of the tenant's namespaces (default: all of them, shared ones for reads only).
    pub namespaces: Option<Val<Texts>>,
}

/// One role of a tenant.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "role"))]
pub(crate) struct RawRole {
    /// The IdP groups that grant the role; at least one.
    pub groups: Option<Val<Texts>>,
    /// What the role is for (shown in browsers, on "My access"), once or per language.
    pub description: Option<Val<Translated>>,
}

/// Who may use an app, a node or a request rule: default deny.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "access"))]
pub(crate) struct RawAccess {
    /// Roles of the tenant that may; at least one. Required.
    pub roles: Option<Val<Texts>>,
}

/// Declares the app structs from one list of keys: an app (in a tenant or an app file) and a shared app,
/// which adds `tenants` and `overrides`.
macro_rules! app_structs {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        /// One micro-app.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[cfg_attr(test, derive(schemars::JsonSchema))]
        #[cfg_attr(test, schemars(deny_unknown_fields))]
        #[cfg_attr(test, schemars(rename = "app"))]
        pub(crate) struct RawApp {
            $($(#[$doc])* pub $field: $ty,)*
        }

        /// An app defined once and enabled for several tenants.
        #[derive(Debug, Deserialize)]
        #[cfg_attr(test, derive(schemars::JsonSchema))]
        #[cfg_attr(test, schemars(deny_unknown_fields))]
        #[cfg_attr(test, schemars(rename = "shared_app"))]
        pub(crate) struct RawSharedApp {
            $($(#[$doc])* pub $field: $ty,)*
            /// The tenants that enable the app. Required.
            pub tenants: Option<Val<Texts>>,
            /// Per-tenant replacements of `label`, `access` and `upstream`.
            pub overrides: Option<Val<Named<Val<RawOverride>>>>,
        }

        impl RawSharedApp {
            /// The app's own keys, without `tenants` and `overrides`.
            pub(crate) fn app(&self) -> RawApp {
                RawApp { $($field: self.$field.clone(),)* }
            }
        }
    };
}

app_structs! {
    /// Unique within the tenant; the app lives at `/apps/<id>/`. Required.
    id: Option<Val<Shown>>,
    /// Navigation label (default: the id).
    label: Option<Val<Translated>>,
    /// Navigation category.
    category: Option<Val<Translated>>,
    /// Icon name (SAP icons, as Luigi shows them).
    icon: Option<Val<Shown>>,
    /// The owning team, shown in the portal.
    owner: Option<Val<Shown>>,
    /// The app's entity in the tenant's Backstage catalog, `kind:namespace/name` (e.g.
    /// `component:acme/cost-insights`): the shell shows its owner and links.
    catalog_ref: Option<Val<Shown>>,
    /// What the app does, in a sentence (the launchpad shows it).
    description: Option<Val<Translated>>,
    /// Who may use the app. Required: there are no public apps.
    access: Option<Val<RawAccess>>,
    /// `http://host:port[/base]` or `https://…` the app is proxied to, or in full `{ url, tls }`; or
    /// `static`.
    upstream: Option<Val<OrText<RawUpstream>>>,
    /// A directory of files (relative to this file), or `embedded:<bundle>`; or `upstream`.
    #[serde(rename = "static")]
    static_dir: Option<Val<Env>>,
    /// Navigation entries below the app's own.
    nodes: Option<Val<Vec<Val<RawNode>>>>,
    /// Whether the app loads Luigi Client (default false, true for `static: embedded:…`): `true`/`false`, also `yes`/`no`, `on`/`off`.
    luigi_client: Option<Val<FlexBool>>,
    /// What goes upstream about the user: any of `assertion`, `headers`, `access_token`; or `none`
    /// (default `[assertion, headers]`; app files may not ask for `access_token`).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::identity_modes"))]
    identity: Option<Val<Texts>>,
    /// The upstream's cookies: `jar` (default: kept by portico), `scoped` (in the browser below
    /// `/apps/<id>/`) or `drop`.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::cookie_modes"))]
    cookies: Option<Val<Env>>,
    /// Narrowing rules by method and path glob.
    rules: Option<Val<Vec<Val<RawRule>>>>,
    /// `case_insensitive` (default, as Express routes) or `case_sensitive`: how rules compare paths.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::path_modes"))]
    paths: Option<Val<Env>>,
    /// Keep the upstream's shareable `GET` answers in portico's memory (default `false`; upstream apps
    /// only): only responses whose `Cache-Control` says `public` or `s-maxage` (see the README's
    /// caching rule), within `proxy.cache`'s bounds.
    cache: Option<Val<FlexBool>>,
    /// Which of the app's answers portico compresses for browsers that accept gzip or br: `assets`
    /// (default: scripts, stylesheets, SVG, fonts, WebAssembly), `text` (also HTML, JSON, XML and
    /// other text) or `off`. Answers the app compressed itself pass untouched.
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::compress_modes"))]
    compress: Option<Val<Env>>,
}

/// What a tenant's copy of a shared app may change.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "override"))]
pub(crate) struct RawOverride {
    /// Replaces the label.
    pub label: Option<Val<Translated>>,
    /// Replaces the access rule.
    pub access: Option<Val<RawAccess>>,
    /// Replaces `upstream` (and a shared `static`).
    pub upstream: Option<Val<OrText<RawUpstream>>>,
}

/// An app's `upstream:` written in full, for settings beyond the URL.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "upstream"))]
pub(crate) struct RawUpstream {
    /// `http://host:port[/base]` or `https://host:port[/base]`. Required.
    pub url: Option<Val<Env>>,
    /// How portico checks an `https` upstream and proves itself to it; only with `https://`.
    pub tls: Option<Val<RawUpstreamTls>>,
}

/// `tls:` of an `https` upstream or Backstage backend. Without it the system's roots vouch for the
/// upstream. There is no way to skip verification: give the CA that issued the upstream's certificate.
/// Files are PEM, relative to the file that names them; in an app file, `client_cert` and `client_key`
/// must lie below its directory (or an `apps_static_roots` entry).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "upstream_tls"))]
pub(crate) struct RawUpstreamTls {
    /// CA certificates that alone vouch for the upstream, instead of the system's roots: for an
    /// internal CA, so that no public CA can vouch for an internal name.
    pub ca: Option<Val<Env>>,
    /// CA certificates trusted in addition to the system's roots (not with `ca`).
    pub extra_ca: Option<Val<Env>>,
    /// The certificate chain portico shows an upstream that asks for one (mTLS); with `client_key`.
    pub client_cert: Option<Val<Env>>,
    /// The private key of `client_cert` (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<Val<Env>>,
    /// The name the upstream's certificate must carry (and SNI), when not the URL's host.
    pub server_name: Option<Val<Env>>,
}

/// A narrowing rule: requests matching `methods` and `path` also need `roles`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "rule"))]
pub(crate) struct RawRule {
    /// GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (default: every method; GET covers HEAD).
    #[serde(default)]
    #[cfg_attr(test, schemars(schema_with = "words::methods"))]
    pub methods: Option<Val<Texts>>,
    /// A path glob inside the app: `*` within a segment, `**` across segments. Required.
    pub path: Option<Val<Env>>,
    /// Roles that may. Required.
    pub roles: Option<Val<Texts>>,
}

/// A navigation entry of an app. Shown in browsers: written literally.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(deny_unknown_fields))]
#[cfg_attr(test, schemars(rename = "node"))]
pub(crate) struct RawNode {
    /// One path segment; the entry lives at `/<app-id>/<path>` in the shell. Required.
    pub path: Option<Val<Shown>>,
    /// The text in the navigation. Required.
    pub label: Option<Val<Translated>>,
    /// The path inside the app the entry shows, starting with `/`. Required.
    pub view: Option<Val<Shown>>,
    /// Icon name.
    pub icon: Option<Val<Shown>>,
    /// A narrower rule for the entry and everything under its view (default: the app's).
    pub access: Option<Val<RawAccess>>,
    /// Child entries.
    pub nodes: Option<Val<Vec<Val<RawNode>>>>,
}

/// The closed sets of words some keys take, for the JSON Schema; the lists live next to the types
/// they become (`config::model`), so config, schema and server agree.
#[cfg(test)]
mod words {
    use schemars::{Schema, SchemaGenerator, json_schema};

    use crate::config::model::{
        BackstageIdentity, BackstageSignIn, CompressMode, CookieMode, IdentityModes, PATH_MODES,
        REQUEST_METHODS, ResponsiveNavigation, SessionSettings, SigningAlg,
    };

    fn one_of(words: &[&str]) -> Schema {
        json_schema!({ "enum": words })
    }

    fn list_of(words: &[&str]) -> Schema {
        json_schema!({
            "anyOf": [{ "enum": words }, { "type": "array", "items": { "enum": words } }]
        })
    }

    pub(super) fn stores(_: &mut SchemaGenerator) -> Schema {
        one_of(&SessionSettings::STORES)
    }

    pub(super) fn signing_algs(_: &mut SchemaGenerator) -> Schema {
        list_of(&SigningAlg::ALL.map(SigningAlg::as_str))
    }

    pub(super) fn backstage_identities(_: &mut SchemaGenerator) -> Schema {
        one_of(&BackstageIdentity::NAMES)
    }

    pub(super) fn backstage_sign_ins(_: &mut SchemaGenerator) -> Schema {
        one_of(&BackstageSignIn::NAMES)
    }

    pub(super) fn navigation_modes(_: &mut SchemaGenerator) -> Schema {
        one_of(&ResponsiveNavigation::ALL.map(|(name, _)| name))
    }

    pub(super) fn identity_modes(_: &mut SchemaGenerator) -> Schema {
        list_of(&IdentityModes::WORDS)
    }

    pub(super) fn cookie_modes(_: &mut SchemaGenerator) -> Schema {
        one_of(&CookieMode::ALL.map(|(name, _)| name))
    }

    pub(super) fn compress_modes(_: &mut SchemaGenerator) -> Schema {
        one_of(&CompressMode::ALL.map(|(name, _)| name))
    }

    pub(super) fn path_modes(_: &mut SchemaGenerator) -> Schema {
        one_of(&PATH_MODES.map(|(name, _)| name))
    }

    /// Methods compare ignoring case (`post` is POST), which an enum cannot say: a pattern does.
    pub(super) fn methods(_: &mut SchemaGenerator) -> Schema {
        let either = |c: char| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase());
        let names: Vec<String> = REQUEST_METHODS
            .iter()
            .map(|method| method.as_str().chars().map(either).collect())
            .collect();
        let method =
            json_schema!({ "type": "string", "pattern": format!("^({})$", names.join("|")) });
        json_schema!({ "anyOf": [method.clone(), { "type": "array", "items": method }] })
    }
}
