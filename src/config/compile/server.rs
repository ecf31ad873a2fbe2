//! Rules for the process-wide sections: `server`, `sessions` and `proxy`. Each key is read on its own
//! (a broken `listen` does not hide a broken `admin_listen`); absent keys take the model's defaults.

use std::path::Path;
use std::time::Duration;

use super::values::{self, Bad};
use crate::config::diagnose::Cx;
use crate::config::model::{
    Cidr, ProxySettings, ServerSettings, SessionSettings, TelemetrySettings,
};
use crate::config::raw::{Env, RawProxy, RawServer, RawSessions, RawTelemetry, Val};

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
    let max_connections_per_client = values::optional(
        cx,
        "max_connections_per_client",
        raw.max_connections_per_client.as_ref(),
        defaults.max_connections_per_client,
        values::count,
    );
    let signing_keys = signing_keys(raw, cx, base_dir);
    let trusted_proxies = trusted_proxies(raw, cx);
    Some(ServerSettings {
        listen: listen?,
        admin_listen: admin_listen?,
        signing_keys,
        header_read_timeout: header_read_timeout?,
        max_connections: max_connections?,
        max_connections_per_client: max_connections_per_client?,
        trusted_proxies: trusted_proxies?,
    })
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

/// `signing_keys`: files relative to the config file, each readable now.
fn signing_keys(raw: &RawServer, cx: &mut Cx<'_>, base_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut keys = Vec::new();
    let Some(list) = raw.signing_keys.as_ref().and_then(Val::get) else {
        return keys;
    };
    for (index, item) in list.0.iter().enumerate() {
        let Some(Env(file)) = item.get() else {
            continue;
        };
        let path = base_dir.join(file);
        if cx.source.read(&path).is_err() {
            cx.error_at(
                item.mark,
                &format!("signing_keys[{index}]"),
                format!("cannot read signing key `{}`", path.display()),
                Some("a P-256 private key in PEM, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`".into()),
            );
            continue;
        }
        keys.push(path);
    }
    keys
}

pub(super) fn sessions(raw: Option<&Val<RawSessions>>, cx: &mut Cx<'_>) -> Option<SessionSettings> {
    let defaults = SessionSettings::default();
    let Some(val) = raw else {
        return Some(defaults);
    };
    let raw = val.get()?;
    let store = values::optional(cx, "store", raw.store.as_ref(), (), |text| match text {
        "memory" => Ok(()),
        other => Err(Bad::new(
            format!("session store `{other}` is not supported yet"),
            "use `memory`; a Redis store for scale-out is planned",
        )),
    });
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
    store?;
    Some(SessionSettings {
        idle_timeout: idle_timeout?,
        absolute_timeout: absolute_timeout?,
        pending_sign_ins_per_client: per_client?,
        pending_sign_ins_per_tenant: per_tenant?,
    })
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
    Some(ProxySettings {
        connect_timeout: connect_timeout?,
        response_timeout: response_timeout?,
        idle_timeout: idle_timeout?,
        max_request_body: max_request_body?,
        assertion_lifetime: assertion_lifetime?,
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
            ("bad durations", with("sessions: { idle_timeout: soon }")),
            (
                "proxy",
                with(
                    "proxy: { max_request_body: 10 parsecs, assertion_lifetime: 1h, connect_timeout: 0s }",
                ),
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
}
