//! Rules for the process-wide sections: `server`, `sessions` and `proxy`. Each key is read on its own
//! (a broken `listen` does not hide a broken `admin_listen`); absent keys take the model's defaults.

use std::path::Path;
use std::time::Duration;

use super::values::{self, Bad};
use crate::config::diagnose::Cx;
use crate::config::model::{
    CacheSettings, CertificateFiles, Cidr, ProxySettings, RedisSettings, Secret, ServerSettings,
    SessionSettings, SigningKeyFile, StoreSettings, TelemetrySettings, TlsSettings,
};
use crate::config::raw::{
    Env, FlexBool, RawCache, RawHsts, RawProxy, RawRedis, RawServer, RawSessions, RawTelemetry,
    RawTls, Val,
};

pub(super) fn server(
    raw: Option<&Val<RawServer>>,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<ServerSettings> {
    let defaults = ServerSettings::default();
    let Some(raw) = raw else {
        return Some(defaults);
    };
    let raw = raw.get()?;
    let listen = values::optional(
        cx,
        "listen",
        raw.listen.as_ref(),
        defaults.listen,
        values::socket_addr,
    );
    let admin_listen = match &raw.admin_listen {
        Some(val) => values::parsed(cx, "admin_listen", val, values::socket_addr).map(Some),
        None => Some(None),
    };
    let header_read_timeout = values::optional(
        cx,
        "header_read_timeout",
        raw.header_read_timeout.as_ref(),
        defaults.header_read_timeout,
        values::duration,
    );
    let max_connections = values::optional(
        cx,
        "max_connections",
        raw.max_connections.as_ref(),
        defaults.max_connections,
        values::count,
    );
    let workers = values::optional(
        cx,
        "workers",
        raw.workers.as_ref(),
        defaults.workers,
        values::workers,
    );
    let max_connections_per_client = values::optional(
        cx,
        "max_connections_per_client",
        raw.max_connections_per_client.as_ref(),
        defaults.max_connections_per_client,
        values::count,
    );
    let signing_keys = signing_keys(raw, cx, base_dir);
    let edge = edge(raw, cx, base_dir, &defaults);
    let trusted_proxies = trusted_proxies(raw, cx);
    Some(ServerSettings {
        listen: listen?,
        admin_listen: admin_listen?,
        signing_keys,
        header_read_timeout: header_read_timeout?,
        max_connections: max_connections?,
        workers: workers?,
        max_connections_per_client: max_connections_per_client?,
        trusted_proxies: trusted_proxies?,
        ..edge?
    })
}

/// The keys of the edge: client timeouts, shutdown, TLS, the redirect listener and HSTS. Returned as
/// settings whose other fields are the defaults (the caller fills them in).
fn edge(
    raw: &RawServer,
    cx: &mut Cx<'_>,
    base_dir: &Path,
    defaults: &ServerSettings,
) -> Option<ServerSettings> {
    let timeout = |cx: &mut Cx<'_>, key: &str, field: &Option<Val<Env>>, default: Duration| {
        values::optional(cx, key, field.as_ref(), default, values::duration)
    };
    let keepalive_timeout = timeout(
        cx,
        "keepalive_timeout",
        &raw.keepalive_timeout,
        defaults.keepalive_timeout,
    );
    let body_read_timeout = timeout(
        cx,
        "body_read_timeout",
        &raw.body_read_timeout,
        defaults.body_read_timeout,
    );
    let shutdown_timeout = timeout(
        cx,
        "shutdown_timeout",
        &raw.shutdown_timeout,
        defaults.shutdown_timeout,
    );
    let redirect_listen = match &raw.redirect_listen {
        Some(val) => values::parsed(cx, "redirect_listen", val, values::socket_addr).map(Some),
        None => Some(None),
    };
    let tls = match &raw.tls {
        Some(val) => cx.at("tls", |cx| tls(val, cx, base_dir)).map(Some),
        None => Some(None),
    };
    if let (Some(val), Some(None)) = (&raw.redirect_listen, &tls) {
        cx.error_at(
            val.mark,
            "redirect_listen",
            "redirect_listen needs `tls`: it sends clients to https on this server",
            Some("configure `server.tls`, or leave out redirect_listen".into()),
        );
    }
    let hsts = match &raw.hsts {
        Some(val) => cx.at("hsts", |cx| hsts(val, cx)),
        None => Some(defaults.hsts.clone()),
    };
    Some(ServerSettings {
        keepalive_timeout: keepalive_timeout?,
        body_read_timeout: body_read_timeout?,
        shutdown_timeout: shutdown_timeout?,
        tls: tls?,
        redirect_listen: redirect_listen?,
        hsts: hsts?,
        ..ServerSettings::default()
    })
}

/// `server.tls`: `cert`/`key` (the first certificate) and `certificates`, each pair readable and
/// matching now, so a typo or a key of another certificate stops `portico check`, not the first client.
fn tls(val: &Val<RawTls>, cx: &mut Cx<'_>, base_dir: &Path) -> Option<TlsSettings> {
    let raw = val.get()?;
    let mut certificates = Vec::new();
    let mut broken = false;
    match (&raw.cert, &raw.key) {
        (None, None) => {}
        (Some(cert), Some(key)) => match pair(cx, "", cert, key, base_dir) {
            Some(files) => certificates.push(files),
            None => broken = true,
        },
        (Some(_), None) | (None, Some(_)) => {
            cx.error(
                val.mark,
                "`cert` and `key` go together",
                Some("give both files, or list pairs under `certificates`".into()),
            );
            broken = true;
        }
    }
    if let Some(list) = raw.certificates.as_ref().and_then(Val::get) {
        for (index, item) in list.iter().enumerate() {
            let Some(entry) = item.get() else {
                broken = true;
                continue;
            };
            let key_path = format!("certificates[{index}]");
            match (&entry.cert, &entry.key) {
                (Some(cert), Some(key)) => match pair(cx, &key_path, cert, key, base_dir) {
                    Some(files) => certificates.push(files),
                    None => broken = true,
                },
                _ => {
                    cx.error_at(
                        item.mark,
                        &key_path,
                        "a certificate needs `cert` and `key`",
                        Some("e.g. `{ cert: fullchain.pem, key: privkey.pem }`".into()),
                    );
                    broken = true;
                }
            }
        }
    }
    if certificates.is_empty() && !broken {
        cx.error(
            val.mark,
            "`tls` names no certificate",
            Some("give `cert` and `key` (PEM files), or list them under `certificates`".into()),
        );
        return None;
    }
    let reload_interval = values::optional(
        cx,
        "reload_interval",
        raw.reload_interval.as_ref(),
        Duration::from_secs(5),
        values::duration,
    );
    if broken {
        return None;
    }
    Some(TlsSettings {
        certificates,
        reload_interval: reload_interval?,
    })
}

/// One certificate pair, read through the config's source and checked by `tls::parse_pair`.
fn pair(
    cx: &mut Cx<'_>,
    at: &str,
    cert: &Val<Env>,
    key: &Val<Env>,
    base_dir: &Path,
) -> Option<CertificateFiles> {
    let (Env(cert_file), Env(key_file)) = (cert.get()?, key.get()?);
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    let files = CertificateFiles {
        cert: base_dir.join(cert_file),
        key: base_dir.join(key_file),
    };
    let mut texts = Vec::with_capacity(2);
    for (name, val, path) in [("cert", cert, &files.cert), ("key", key, &files.key)] {
        match cx.source.read(path) {
            Ok(text) => texts.push(text),
            Err(error) => cx.error_at(
                val.mark,
                &join(name),
                format!("cannot read `{}`: {error}", path.display()),
                Some("a PEM file, relative to the config file; the user portico runs as must be able to read it".into()),
            ),
        }
    }
    let [cert_pem, key_pem] = <[String; 2]>::try_from(texts).ok()?;
    match crate::tls::parse_pair(cert_pem.as_bytes(), key_pem.as_bytes()) {
        Ok(_) => Some(files),
        Err(error) => {
            let (name, val, path) = if error.in_certificate() {
                ("cert", cert, &files.cert)
            } else {
                ("key", key, &files.key)
            };
            cx.error_at(
                val.mark,
                &join(name),
                format!("`{}`: {error}", path.display()),
                Some(error.hint().into()),
            );
            None
        }
    }
}

/// `server.hsts`: the header value, or `None` for `max_age: off`.
fn hsts(val: &Val<RawHsts>, cx: &mut Cx<'_>) -> Option<Option<http::HeaderValue>> {
    let raw = val.get()?;
    let max_age = values::optional(
        cx,
        "max_age",
        raw.max_age.as_ref(),
        Some(Duration::from_secs(31_536_000)),
        |text| match text {
            "off" => Ok(None),
            text => values::duration(text).map(Some),
        },
    );
    let subdomains = match &raw.include_subdomains {
        Some(flag) => flag.get().map(|FlexBool(on)| *on),
        None => Some(false),
    };
    let Some(max_age) = max_age? else {
        return Some(None);
    };
    let mut value = format!("max-age={}", max_age.as_secs());
    if subdomains? {
        value.push_str("; includeSubDomains");
    }
    http::HeaderValue::from_str(&value).ok().map(Some)
}

/// `trusted_proxies`: each entry a CIDR or an address; every broken entry is reported.
fn trusted_proxies(raw: &RawServer, cx: &mut Cx<'_>) -> Option<Vec<Cidr>> {
    let Some(list) = raw.trusted_proxies.as_ref() else {
        return Some(Vec::new());
    };
    let list = list.get()?;
    let mut networks = Vec::new();
    let mut broken = false;
    for (index, item) in list.0.iter().enumerate() {
        let network = values::parsed(cx, &format!("trusted_proxies[{index}]"), item, |text| {
            text.parse::<Cidr>().map_err(|why| {
                Bad::new(
                    format!("`{text}` is not a network: {why}"),
                    "a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or one address",
                )
            })
        });
        match network {
            Some(network) => networks.push(network),
            None => broken = true,
        }
    }
    (!broken).then_some(networks)
}

/// `signing_keys`: files relative to the config file, each a P-256 private key in PEM, read now.
fn signing_keys(raw: &RawServer, cx: &mut Cx<'_>, base_dir: &Path) -> Vec<SigningKeyFile> {
    let mut keys = Vec::new();
    let Some(list) = raw.signing_keys.as_ref().and_then(Val::get) else {
        return keys;
    };
    let hint = "a P-256 private key in PEM, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`";
    for (index, item) in list.0.iter().enumerate() {
        let Some(Env(file)) = item.get() else {
            continue;
        };
        let path = base_dir.join(file);
        let key = format!("signing_keys[{index}]");
        let problem = match cx.source.read(&path) {
            Err(_) => format!("cannot read signing key `{}`", path.display()),
            Ok(pem) => match crate::assertion::check_pem(&pem) {
                Ok(()) => {
                    keys.push(SigningKeyFile {
                        path,
                        pem: Secret(pem),
                    });
                    continue;
                }
                Err(reason) => format!("`{}` is not a P-256 private key: {reason}", path.display()),
            },
        };
        cx.error_at(item.mark, &key, problem, Some(hint.into()));
    }
    keys
}

pub(super) fn sessions(
    raw: Option<&Val<RawSessions>>,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<SessionSettings> {
    let defaults = SessionSettings::default();
    let Some(val) = raw else {
        return Some(defaults);
    };
    let raw = val.get()?;
    let store = session_store(raw, val, cx, base_dir);
    let idle_timeout = values::optional(
        cx,
        "idle_timeout",
        raw.idle_timeout.as_ref(),
        defaults.idle_timeout,
        values::duration,
    );
    let absolute_timeout = values::optional(
        cx,
        "absolute_timeout",
        raw.absolute_timeout.as_ref(),
        defaults.absolute_timeout,
        values::duration,
    );
    let per_client = values::optional(
        cx,
        "pending_sign_ins_per_client",
        raw.pending_sign_ins_per_client.as_ref(),
        defaults.pending_sign_ins_per_client,
        values::count,
    );
    let per_tenant = values::optional(
        cx,
        "pending_sign_ins_per_tenant",
        raw.pending_sign_ins_per_tenant.as_ref(),
        defaults.pending_sign_ins_per_tenant,
        values::count,
    );
    let refresh_grace = values::optional(
        cx,
        "refresh_grace",
        raw.refresh_grace.as_ref(),
        defaults.refresh_grace,
        |text| match text.trim() {
            // Zero is meaningful here: no grace, a session ends with its access token.
            "0" | "0s" => Ok(Duration::ZERO),
            other => values::duration(other),
        },
    );
    let max_sessions = values::optional(
        cx,
        "max_sessions",
        raw.max_sessions.as_ref(),
        defaults.max_sessions,
        values::count,
    );
    let max_sessions_per_user = values::optional(
        cx,
        "max_sessions_per_user",
        raw.max_sessions_per_user.as_ref(),
        defaults.max_sessions_per_user,
        values::count,
    );
    if let (Some(idle), Some(absolute)) = (idle_timeout, absolute_timeout) {
        if idle > absolute {
            cx.error_at(
                val.mark,
                "idle_timeout",
                "idle_timeout is longer than absolute_timeout",
                Some("the idle timeout can never fire; shorten it".into()),
            );
        }
    }
    Some(SessionSettings {
        store: store?,
        idle_timeout: idle_timeout?,
        absolute_timeout: absolute_timeout?,
        pending_sign_ins_per_client: per_client?,
        pending_sign_ins_per_tenant: per_tenant?,
        refresh_grace: refresh_grace?,
        max_sessions: max_sessions?,
        max_sessions_per_user: max_sessions_per_user?,
    })
}

/// `sessions.store` and, for Redis, `sessions.redis`.
fn session_store(
    raw: &RawSessions,
    val: &Val<RawSessions>,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<StoreSettings> {
    #[derive(PartialEq)]
    enum Kind {
        Memory,
        Redis,
    }
    let kind = values::optional(
        cx,
        "store",
        raw.store.as_ref(),
        Kind::Memory,
        |text| match text {
            "memory" => Ok(Kind::Memory),
            "redis" => Ok(Kind::Redis),
            other => Err(Bad::new(
                format!("unknown session store `{other}`"),
                "use `memory` (one instance) or `redis` (several instances; configure `redis:`)",
            )),
        },
    );
    match (kind, &raw.redis) {
        (None, _) => None,
        (Some(Kind::Memory), None) => Some(StoreSettings::Memory),
        (Some(Kind::Memory), Some(redis)) => {
            cx.at("redis", |cx| {
                cx.warn(
                    redis.mark,
                    "`redis:` is ignored: sessions are kept in memory",
                    Some("add `store: redis` to keep them in Redis".into()),
                );
            });
            Some(StoreSettings::Memory)
        }
        (Some(Kind::Redis), None) => {
            cx.missing(
                val.mark,
                "redis",
                "`store: redis` needs `redis: { url: redis://127.0.0.1:6379/0, key_file: session.key }`",
            );
            None
        }
        (Some(Kind::Redis), Some(redis)) => cx
            .at("redis", |cx| redis_settings(redis, cx, base_dir))
            .map(StoreSettings::Redis),
    }
}

/// `sessions.redis`: the URL parsed and the key file read now, so a typo fails `portico check`, not
/// the first sign-in.
fn redis_settings(val: &Val<RawRedis>, cx: &mut Cx<'_>, base_dir: &Path) -> Option<RedisSettings> {
    let raw = val.get()?;
    let url = redis_url(raw, val, cx);
    let username = raw
        .username
        .as_ref()
        .and_then(Val::get)
        .map(|Env(u)| u.clone());
    let password = redis_password(raw, cx, base_dir);
    let key = redis_key(raw, val, cx, base_dir);
    let prefix = values::optional(
        cx,
        "prefix",
        raw.prefix.as_ref(),
        "portico:".to_owned(),
        |text| {
            let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic());
            if printable {
                Ok(text.to_owned())
            } else {
                Err(Bad::new(
                    "the prefix must be printable ASCII without spaces",
                    "e.g. `portico:` or `portico-staging:`",
                ))
            }
        },
    );
    let ca = match &raw.ca {
        None => Some(None),
        Some(file) => {
            let Env(name) = file.get()?;
            let path = base_dir.join(name);
            if cx.source.read(&path).is_ok() {
                Some(Some(path))
            } else {
                cx.error_at(
                    file.mark,
                    "ca",
                    format!("cannot read the CA file `{}`", path.display()),
                    Some(
                        "the PEM certificate of the CA that signed the Redis server's certificate"
                            .into(),
                    ),
                );
                None
            }
        }
    };
    let outage_grace = values::optional(
        cx,
        "outage_grace",
        raw.outage_grace.as_ref(),
        Duration::from_secs(60),
        |text| match text.trim() {
            "0" | "0s" => Ok(Duration::ZERO),
            other => values::duration(other),
        },
    );
    Some(RedisSettings {
        url: url?,
        username,
        password: password?,
        key: key?,
        prefix: prefix?,
        ca: ca?,
        outage_grace: outage_grace?,
    })
}

/// `sessions.redis.url`: `redis://` or `rediss://`, parsed as the client will.
fn redis_url(raw: &RawRedis, val: &Val<RawRedis>, cx: &mut Cx<'_>) -> Option<String> {
    match &raw.url {
        None => {
            cx.missing(
                val.mark,
                "url",
                "e.g. `url: redis://127.0.0.1:6379/0` (`rediss://` for TLS)",
            );
            None
        }
        Some(url) => values::parsed(cx, "url", url, |text| {
            let scheme_ok = text.starts_with("redis://") || text.starts_with("rediss://");
            if !scheme_ok {
                return Err(Bad::new(
                    format!("`{text}` is not a Redis URL"),
                    "e.g. redis://127.0.0.1:6379/0, or rediss:// for TLS",
                ));
            }
            match redis::Client::open(text) {
                Ok(_) => Ok(text.to_owned()),
                Err(error) => Err(Bad::new(
                    format!(
                        "not a valid Redis URL: {}",
                        error.detail().unwrap_or("unreadable")
                    ),
                    "e.g. redis://127.0.0.1:6379/0, or rediss:// for TLS",
                )),
            }
        }),
    }
}

/// `password` or `password_file` (or neither); `Some(None)`: none given.
#[allow(clippy::option_option)]
fn redis_password(raw: &RawRedis, cx: &mut Cx<'_>, base_dir: &Path) -> Option<Option<String>> {
    match (&raw.password, &raw.password_file) {
        (Some(password), None) => password.get().map(|Env(p)| Some(p.clone())),
        (None, Some(file)) => {
            let Env(name) = file.get()?;
            let path = base_dir.join(name);
            match cx.source.read(&path) {
                Ok(password) => Some(Some(password.trim().to_owned())),
                Err(error) => {
                    let message = format!("cannot read `{}`: {error}", path.display());
                    cx.error_at(file.mark, "password_file", message, None);
                    None
                }
            }
        }
        (Some(_), Some(file)) => {
            cx.error_at(
                file.mark,
                "password_file",
                "give `password` or `password_file`, not both",
                None,
            );
            None
        }
        (None, None) => Some(None),
    }
}

/// `key_file`: required, 32 bytes in base64.
fn redis_key(
    raw: &RawRedis,
    val: &Val<RawRedis>,
    cx: &mut Cx<'_>,
    base_dir: &Path,
) -> Option<[u8; 32]> {
    match &raw.key_file {
        None => {
            cx.missing(
                val.mark,
                "key_file",
                "sessions are encrypted in Redis: `key_file: /run/secrets/portico-session.key`, made with `openssl rand -base64 32`",
            );
            None
        }
        Some(file) => {
            let Env(name) = file.get()?;
            let path = base_dir.join(name);
            let hint = "32 random bytes in base64: `openssl rand -base64 32 > session.key`; every instance needs the same file";
            match cx.source.read(&path) {
                Ok(text) => match decode_key(&text) {
                    Some(key) => Some(key),
                    None => {
                        cx.error_at(
                            file.mark,
                            "key_file",
                            format!("`{}` does not hold 32 bytes in base64", path.display()),
                            Some(hint.into()),
                        );
                        None
                    }
                },
                Err(error) => {
                    cx.error_at(
                        file.mark,
                        "key_file",
                        format!("cannot read `{}`: {error}", path.display()),
                        Some(hint.into()),
                    );
                    None
                }
            }
        }
    }
}

/// A session key file: base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
fn decode_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()?;
    bytes.try_into().ok()
}

/// The longest an identity assertion may live: it is a bearer credential for the upstream.
const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

pub(super) fn proxy(raw: Option<&Val<RawProxy>>, cx: &mut Cx<'_>) -> Option<ProxySettings> {
    let defaults = ProxySettings::default();
    let Some(val) = raw else {
        return Some(defaults);
    };
    let raw = val.get()?;
    let timeout = |cx: &mut Cx<'_>, key: &str, field: &Option<Val<Env>>, default: Duration| {
        values::optional(cx, key, field.as_ref(), default, values::duration)
    };
    let connect_timeout = timeout(
        cx,
        "connect_timeout",
        &raw.connect_timeout,
        defaults.connect_timeout,
    );
    let response_timeout = timeout(
        cx,
        "response_timeout",
        &raw.response_timeout,
        defaults.response_timeout,
    );
    let idle_timeout = timeout(cx, "idle_timeout", &raw.idle_timeout, defaults.idle_timeout);
    let max_request_body = values::optional(
        cx,
        "max_request_body",
        raw.max_request_body.as_ref(),
        defaults.max_request_body,
        values::size,
    );
    let assertion_lifetime = values::optional(
        cx,
        "assertion_lifetime",
        raw.assertion_lifetime.as_ref(),
        defaults.assertion_lifetime,
        |text| match values::duration(text)? {
            lifetime if lifetime > MAX_ASSERTION_LIFETIME => Err(Bad::new(
                "an assertion may live at most 10m",
                "keep it short: about a minute",
            )),
            lifetime => Ok(lifetime),
        },
    );
    let cache = match &raw.cache {
        Some(val) => cx.at("cache", |cx| cache(val, cx)),
        None => Some(defaults.cache),
    };
    Some(ProxySettings {
        connect_timeout: connect_timeout?,
        response_timeout: response_timeout?,
        idle_timeout: idle_timeout?,
        max_request_body: max_request_body?,
        assertion_lifetime: assertion_lifetime?,
        cache: cache?,
    })
}

/// `proxy.cache` (the current key): two sizes, one entry no larger than the whole cache.
fn cache(val: &Val<RawCache>, cx: &mut Cx<'_>) -> Option<CacheSettings> {
    let defaults = CacheSettings::default();
    let raw = val.get()?;
    let max_bytes = values::optional(
        cx,
        "max_bytes",
        raw.max_bytes.as_ref(),
        defaults.max_bytes,
        values::size,
    )?;
    let max_entry_bytes = values::optional(
        cx,
        "max_entry_bytes",
        raw.max_entry_bytes.as_ref(),
        defaults.max_entry_bytes.min(max_bytes),
        values::size,
    )?;
    if max_entry_bytes > max_bytes {
        let mark = raw.max_entry_bytes.as_ref().map_or(val.mark, |v| v.mark);
        cx.error_at(
            mark,
            "max_entry_bytes",
            format!("one entry ({max_entry_bytes} bytes) may not be larger than the whole cache ({max_bytes} bytes)"),
            Some("raise `max_bytes` or lower `max_entry_bytes`".into()),
        );
        return None;
    }
    Some(CacheSettings {
        max_bytes,
        max_entry_bytes,
    })
}

/// `telemetry:`: an `otlp` block needs an `http://` endpoint with a host.
pub(super) fn telemetry(
    raw: Option<&Val<RawTelemetry>>,
    cx: &mut Cx<'_>,
) -> Option<TelemetrySettings> {
    let Some(raw) = raw else {
        return Some(TelemetrySettings::default());
    };
    let Some(otlp) = raw.get()?.otlp.as_ref() else {
        return Some(TelemetrySettings::default());
    };
    let mark = otlp.mark;
    let otlp = otlp.get()?;
    cx.at("otlp", |cx| {
        let Some(endpoint) = otlp.endpoint.as_ref() else {
            cx.error(
                mark,
                "`endpoint` is required",
                Some("e.g. `otlp: { endpoint: http://127.0.0.1:4318/v1/traces }`".into()),
            );
            return None;
        };
        let endpoint = values::parsed(cx, "endpoint", endpoint, |text| {
            let bad = || {
                Bad::new(
                    format!("`{text}` is not an http:// URL"),
                    "the full traces URL, e.g. http://127.0.0.1:4318/v1/traces (plain HTTP: a collector beside portico)",
                )
            };
            let uri: http::Uri = text.parse().map_err(|_| bad())?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(bad());
            }
            Ok(uri)
        })?;
        Some(TelemetrySettings {
            otlp_endpoint: Some(endpoint),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn server_sessions_and_proxy_rules() {
        let with = |section: &str| format!("{section}\n{BASE}");
        let cases = [
            ("defaults", with("")),
            (
                "every broken server key at once",
                with(
                    "server: { listen: nope, admin_listen: \"[::1]\", header_read_timeout: 0s, max_connections: 0, max_connections_per_client: lots, signing_keys: [k.pem] }",
                ),
            ),
            ("server is not a mapping", with("server: [127.0.0.1:1]")),
            ("unknown server key", with("server: { lisen: 127.0.0.1:1 }")),
            (
                "sessions",
                with(
                    "sessions: { store: redis, idle_timeout: 2d, absolute_timeout: 1d, pending_sign_ins_per_tenant: 0 }",
                ),
            ),
            (
                "session limits and refresh grace",
                with(
                    "sessions: { refresh_grace: soon, max_sessions: 0, max_sessions_per_user: many }",
                ),
            ),
            ("no refresh grace", with("sessions: { refresh_grace: 0s }")),
            ("bad durations", with("sessions: { idle_timeout: soon }")),
            (
                "proxy",
                with(
                    "proxy: { max_request_body: 10 parsecs, assertion_lifetime: 1h, connect_timeout: 0s }",
                ),
            ),
            (
                "cache bounds: a bad size, an unknown key",
                with("proxy: { cache: { max_bytes: lots, max_entry_byte: 1MiB } }"),
            ),
            (
                "cache bounds: an entry larger than the cache",
                with("proxy: { cache: { max_bytes: 1MiB, max_entry_bytes: 2MiB } }"),
            ),
            (
                "a variable that is not set",
                with("server: { listen: \"${PORT}\" }"),
            ),
            ("version", with("version: 2")),
            (
                "telemetry",
                with("telemetry: { otlp: { endpoint: \"https://collector:4318/v1/traces\" } }"),
            ),
            (
                "telemetry without endpoint",
                with("telemetry: { otlp: {} }"),
            ),
            (
                "trusted proxies",
                with(
                    "server: { trusted_proxies: [10.0.0.0/8, \"::1\", 10.0.0.0/33, proxy.local] }",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }

    #[test]
    fn a_signing_key_that_is_no_key_is_refused_with_its_place() {
        let mut source = MemorySource::default();
        source
            .files
            .insert("/etc/portico/k.pem".into(), "not a key".into());
        let text = format!("server: {{ signing_keys: [k.pem] }}\n{BASE}");
        let report = super::super::testing::report(&source, &text);
        assert!(report.contains("server.signing_keys[0]"), "{report}");
        assert!(report.contains("no PEM block in the file"), "{report}");
    }

    #[test]
    fn redis_store_rules() {
        let mut source = MemorySource::default();
        source.files.insert(
            "/etc/portico/session.key".into(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n".into(),
        );
        source
            .files
            .insert("/etc/portico/short.key".into(), "c2hvcnQ=".into());
        source
            .files
            .insert("/etc/portico/redis.pass".into(), "hunter2\n".into());
        source
            .files
            .insert("/etc/portico/k.pem".into(), crate::assertion::tests::pem());
        let with = |section: &str| format!("{section}\n{BASE}");
        let cases = [
            (
                "redis with shared signing keys",
                with(
                    "server: { signing_keys: [k.pem] }\nsessions: { store: redis, redis: { url: \"rediss://cache:6380/1\", key_file: session.key, password_file: redis.pass, prefix: \"p1:\" } }",
                ),
            ),
            (
                "redis without signing keys warns",
                with(
                    "sessions: { store: redis, redis: { url: \"redis://127.0.0.1:6379\", key_file: session.key } }",
                ),
            ),
            (
                "redis without its settings",
                with("sessions: { store: redis }"),
            ),
            (
                "every broken redis key at once",
                with(
                    "sessions: { store: redis, redis: { url: \"http://cache:6379\", key_file: short.key, password: a, password_file: redis.pass, prefix: \"a b\", ca: nope.pem, outage_grace: soon } }",
                ),
            ),
            (
                "redis without url and key",
                with("sessions: { store: redis, redis: { prefix: \"x:\" } }"),
            ),
            ("an unknown store", with("sessions: { store: memcached }")),
            (
                "redis settings under the memory store",
                with("sessions: { redis: { url: \"redis://cache\" } }"),
            ),
        ];
        insta::assert_snapshot!(table(&source, &cases));
    }

    /// A certificate and its key, generated (rcgen) for `name`.
    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn tls_rules() {
        let (cert, key) = pair("portal.acme.example");
        let (_, other_key) = pair("portal.globex.example");
        let mut source = MemorySource::default();
        for (file, text) in [
            ("cert.pem", cert),
            ("key.pem", key),
            ("other-key.pem", other_key),
            ("empty.pem", String::new()),
        ] {
            source
                .files
                .insert(std::path::Path::new("/etc/portico").join(file), text);
        }
        let with = |section: &str| format!("{section}\n{BASE}");
        let cases = [
            (
                "a good pair, timeouts, hsts and the redirect listener",
                with(
                    "server: { tls: { cert: cert.pem, key: key.pem, reload_interval: 10s }, redirect_listen: 127.0.0.1:80, keepalive_timeout: 75s, body_read_timeout: 1m, shutdown_timeout: 10s, hsts: { max_age: off } }",
                ),
            ),
            (
                "missing, empty and mismatched files",
                with(
                    "server: { tls: { cert: cert.pem, key: other-key.pem, certificates: [{ cert: nope.pem, key: key.pem }, { cert: empty.pem, key: key.pem }, { cert: cert.pem, key: empty.pem }, { cert: cert.pem }] } }",
                ),
            ),
            (
                "cert without key",
                with("server: { tls: { cert: cert.pem } }"),
            ),
            ("no certificate", with("server: { tls: {} }")),
            (
                "a redirect listener without tls, bad timeouts and hsts",
                with(
                    "server: { redirect_listen: 127.0.0.1:80, keepalive_timeout: 0s, body_read_timeout: soon, shutdown_timeout: 0s, hsts: { max_age: forever, include_subdomains: maybe } }",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&source, &cases));
    }
}
