//! Rules for where an app or a Backstage backend is reached: its URL (`http://` or `https://`, short form
//! `upstream: <url>` or in full `upstream: { url, tls }`) and, for `https`, its `tls:` settings.
//!
//! The PEM files `tls:` names (`ca`, `extra_ca`, `client_cert`, `client_key`) are read through the
//! [`Source`](crate::config::Source) and parsed here, and a client key is checked against its
//! certificate, so a broken file fails the load rather than the first request. A `tls:` on an `http://`
//! URL is an error (it would be silently unused). There is deliberately no way to turn verification
//! off: an operator with a private CA names it in `ca`. In a team's app file the client certificate and
//! key must lie below the file's own directory (or an `apps_static_roots` entry): a team must not borrow
//! a client identity the platform holds for other upstreams. Building TLS clients is not done here
//! (`proxy::tls` does it from [`UpstreamTls`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};

use super::values;
use super::{TeamScope, TenantScope};
use crate::config::diagnose::Cx;
use crate::config::model::{ClientAuth, TrustRoots, Upstream, UpstreamTls};
use crate::config::raw::{Env, OrText, RawUpstream, RawUpstreamTls, Val};
use crate::config::source::normalise_lexically;
use crate::config::yaml::Mark;

/// Where relative file names start, and what a team's file may reach.
pub(super) struct Files<'a> {
    pub base_dir: &'a Path,
    pub team: Option<&'a TeamScope>,
}

impl<'a> Files<'a> {
    pub(super) fn of(scope: &TenantScope<'a>) -> Self {
        Files {
            base_dir: scope.base_dir,
            team: scope.team,
        }
    }
}

/// An app's `upstream:` (the current key's parent holds it; problems are reported at `upstream…`).
pub(super) fn app_upstream(
    val: &Val<OrText<RawUpstream>>,
    cx: &mut Cx<'_>,
    files: &Files<'_>,
) -> Option<Upstream> {
    const EXAMPLE: &str =
        "e.g. http://127.0.0.1:3000, http://app.internal:8080/base or https://app.internal";
    match val.get()? {
        OrText::Text(Env(url)) => parse_url(cx, "upstream", val.mark, url, EXAMPLE)
            .and_then(|upstream| with_tls(upstream, None, cx, files)),
        OrText::Full(raw) => cx.at("upstream", |cx| {
            let upstream = match &raw.url {
                None => {
                    cx.missing(val.mark, "url", EXAMPLE);
                    None
                }
                Some(url) => {
                    let Env(text) = url.get()?;
                    parse_url(cx, "url", url.mark, text, EXAMPLE)
                }
            };
            // Read `tls` even when the URL is broken, so every mistake is reported at once.
            let tls = raw.tls.as_ref();
            match upstream {
                Some(upstream) => with_tls(upstream, tls, cx, files),
                None => {
                    if let Some(tls) = tls.and_then(|val| val.get()) {
                        cx.at("tls", |cx| settings(tls, cx, files));
                    }
                    None
                }
            }
        }),
    }
}

/// `url` parsed at `key` (below the current key).
fn parse_url(cx: &mut Cx<'_>, key: &str, mark: Mark, url: &str, example: &str) -> Option<Upstream> {
    match values::parse_upstream(url) {
        Ok(upstream) => Some(upstream),
        Err(message) => {
            cx.error_at(mark, key, message, Some(example.to_owned()));
            None
        }
    }
}

/// `upstream` with its TLS settings: `tls` (at the current key) only for `https://`, where it is
/// optional (system roots).
pub(super) fn with_tls(
    mut upstream: Upstream,
    tls: Option<&Val<RawUpstreamTls>>,
    cx: &mut Cx<'_>,
    files: &Files<'_>,
) -> Option<Upstream> {
    let https = upstream.url.starts_with("https://");
    match (https, tls) {
        (false, None) => Some(upstream),
        (false, Some(val)) => {
            cx.error_at(
                val.mark,
                "tls",
                "`tls` is for https upstreams, and this URL is http://",
                Some("write the URL as https://… (TLS to the upstream), or remove `tls`".into()),
            );
            None
        }
        (true, None) => {
            upstream.tls = Some(Arc::new(system_tls()));
            Some(upstream)
        }
        (true, Some(val)) => {
            let raw = val.get()?;
            upstream.tls = Some(Arc::new(cx.at("tls", |cx| settings(raw, cx, files))?));
            Some(upstream)
        }
    }
}

/// The TLS settings of an `https://` upstream that names no `tls:`: the system's roots.
pub(super) fn system_tls() -> UpstreamTls {
    finish(TrustRoots::System, None, None)
}

/// The `tls:` mapping (the current key).
fn settings(raw: &RawUpstreamTls, cx: &mut Cx<'_>, files: &Files<'_>) -> Option<UpstreamTls> {
    let roots = roots(raw, cx, files);
    let client_auth = client_auth(raw, cx, files);
    let server_name = match &raw.server_name {
        None => Some(None),
        Some(val) => values::parsed(cx, "server_name", val, |name| {
            ServerName::try_from(name.trim_matches(['[', ']']).to_owned())
                .map(Some)
                .map_err(|_| {
                    values::Bad::new(
                        format!("`{name}` is not a DNS name or an IP address"),
                        "the name in the upstream's certificate, e.g. app.internal",
                    )
                })
        }),
    };
    Some(finish(roots?, client_auth?, server_name?))
}

/// The settings with their fingerprint: SHA-256 over every certificate, the key and the name, each
/// tagged and length-prefixed, so different settings never share a connection pool.
fn finish(
    roots: TrustRoots,
    client_auth: Option<ClientAuth>,
    server_name: Option<ServerName<'static>>,
) -> UpstreamTls {
    let mut digest = Sha256::new();
    let mut part = |tag: u8, bytes: &[u8]| {
        digest.update([tag]);
        digest.update((bytes.len() as u64).to_be_bytes());
        digest.update(bytes);
    };
    match &roots {
        TrustRoots::System => part(b's', b""),
        TrustRoots::SystemAnd(certs) => certs.iter().for_each(|cert| part(b'a', cert)),
        TrustRoots::Only(certs) => certs.iter().for_each(|cert| part(b'o', cert)),
    }
    if let Some(auth) = &client_auth {
        auth.chain.iter().for_each(|cert| part(b'c', cert));
        part(b'k', auth.key.secret_der());
    }
    if let Some(name) = &server_name {
        part(b'n', name.to_str().as_bytes());
    }
    UpstreamTls {
        roots,
        client_auth,
        server_name,
        fingerprint: digest.finalize().into(),
    }
}

/// `ca` (only these) or `extra_ca` (the system's and these), not both; default the system's.
fn roots(raw: &RawUpstreamTls, cx: &mut Cx<'_>, files: &Files<'_>) -> Option<TrustRoots> {
    match (&raw.ca, &raw.extra_ca) {
        (None, None) => Some(TrustRoots::System),
        (Some(ca), None) => ca_file(cx, "ca", ca, files).map(TrustRoots::Only),
        (None, Some(extra)) => ca_file(cx, "extra_ca", extra, files).map(TrustRoots::SystemAnd),
        (Some(_), Some(extra)) => {
            cx.error_at(
                extra.mark,
                "extra_ca",
                "give `ca` or `extra_ca`, not both",
                Some("`ca` trusts only its certificates (best for an internal CA); `extra_ca` adds them to the system's roots".into()),
            );
            None
        }
    }
}

/// A PEM bundle of CA certificates, each usable as a trust anchor.
fn ca_file(
    cx: &mut Cx<'_>,
    key: &str,
    val: &Val<Env>,
    files: &Files<'_>,
) -> Option<Vec<CertificateDer<'static>>> {
    const HINT: &str = "a PEM file of the CA certificates (`-----BEGIN CERTIFICATE-----`) that issued the upstream's certificate";
    let (path, text) = read(cx, key, val, files, false, HINT)?;
    let certs = certificates(&text).map_err(|message| {
        let message = format!("`{}`: {message}", path.display());
        cx.error_at(val.mark, key, message, Some(HINT.into()));
    });
    let certs = certs.ok()?;
    let mut store = rustls::RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        if let Err(error) = store.add(cert.clone()) {
            let message = format!(
                "`{}`: certificate {} is not a usable CA certificate: {error}",
                path.display(),
                index + 1
            );
            cx.error_at(val.mark, key, message, Some(HINT.into()));
            return None;
        }
    }
    Some(certs)
}

/// `client_cert` and `client_key`, together or not at all, the key belonging to the certificate.
fn client_auth(
    raw: &RawUpstreamTls,
    cx: &mut Cx<'_>,
    files: &Files<'_>,
) -> Option<Option<ClientAuth>> {
    const CERT_HINT: &str =
        "a PEM file with the client certificate first, then any intermediate certificates";
    const KEY_HINT: &str = "a PEM file with the client certificate's private key (`-----BEGIN PRIVATE KEY-----`, RSA or EC)";
    let (cert, key) = match (&raw.client_cert, &raw.client_key) {
        (None, None) => return Some(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(cert), None) => {
            cx.error_at(
                cert.mark,
                "client_key",
                "`client_cert` needs `client_key`",
                Some(KEY_HINT.into()),
            );
            return None;
        }
        (None, Some(key)) => {
            cx.error_at(
                key.mark,
                "client_cert",
                "`client_key` needs `client_cert`",
                Some(CERT_HINT.into()),
            );
            return None;
        }
    };
    let chain = read(cx, "client_cert", cert, files, true, CERT_HINT).and_then(|(path, text)| {
        certificates(&text)
            .map_err(|message| {
                let message = format!("`{}`: {message}", path.display());
                cx.error_at(cert.mark, "client_cert", message, Some(CERT_HINT.into()));
            })
            .ok()
    });
    let private = read(cx, "client_key", key, files, true, KEY_HINT).and_then(|(path, text)| {
        PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|error| {
                let message = format!("`{}` holds no usable private key: {error}", path.display());
                cx.error_at(key.mark, "client_key", message, Some(KEY_HINT.into()));
            })
            .ok()
    });
    let (chain, private) = (chain?, private?);
    let provider = rustls::crypto::ring::default_provider();
    let checked = provider
        .key_provider
        .load_private_key(private.clone_key())
        .and_then(|signer| rustls::sign::CertifiedKey::new(chain.clone(), signer).keys_match());
    if let Err(error) = checked {
        cx.error_at(
            key.mark,
            "client_key",
            format!("the key does not fit `client_cert`: {error}"),
            Some("give the private key of the first certificate in `client_cert`".into()),
        );
        return None;
    }
    cx.at("client_cert", |cx| {
        warn_if_expiring(&chain[0], cert.mark, cx)
    });
    Some(Some(ClientAuth {
        chain,
        key: private,
    }))
}

/// How early a client certificate's end is announced at load.
const EXPIRY_NOTICE_DAYS: u64 = 14;

/// A warning (the config still loads) when the client certificate has expired or ends within
/// [`EXPIRY_NOTICE_DAYS`]: the upstream would refuse it, and the 502s would say only `upstream_tls`.
fn warn_if_expiring(cert: &CertificateDer<'_>, mark: Mark, cx: &mut Cx<'_>) {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert) else {
        return;
    };
    let not_after = parsed.validity().not_after;
    let ends = u64::try_from(not_after.timestamp()).unwrap_or(0);
    let now = crate::clock::unix_now();
    let hint = Some("renew it; the new files are read when the config is next loaded".to_owned());
    if ends <= now {
        cx.warn(
            mark,
            format!("the client certificate expired on {not_after}"),
            hint,
        );
    } else if ends - now < EXPIRY_NOTICE_DAYS * 86_400 {
        cx.warn(
            mark,
            format!("the client certificate expires on {not_after}"),
            hint,
        );
    }
}

/// Every certificate in a PEM text; at least one.
fn certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not readable as PEM certificates: {error}"))?;
    if certs.is_empty() {
        return Err("holds no certificate".into());
    }
    Ok(certs)
}

/// Reads the file `val` names (relative to the file being compiled). `confined`: in a team's file,
/// it must resolve below the team's directory or an allowed root.
fn read(
    cx: &mut Cx<'_>,
    key: &str,
    val: &Val<Env>,
    files: &Files<'_>,
    confined: bool,
    hint: &str,
) -> Option<(PathBuf, String)> {
    let Env(name) = val.get()?;
    let mut path = files.base_dir.join(name);
    if let (true, Some(team)) = (confined, files.team) {
        // Decided on the resolved path, as `static:` is: `..` and links that leave the tree are refused.
        let resolved = cx
            .source
            .canonicalize(&path)
            .unwrap_or_else(|_| normalise_lexically(&path));
        let inside = resolved.starts_with(&team.dir)
            || team
                .static_roots
                .iter()
                .any(|root| resolved.starts_with(root));
        if !inside {
            cx.error_at(
                val.mark,
                key,
                format!("`{name}` resolves to `{}`, outside the app file's directory", resolved.display()),
                Some(format!(
                    "an app file's client certificate and key must lie below its own directory (or an `apps_static_roots` entry of tenant `{}`)",
                    team.env.tenant
                )),
            );
            return None;
        }
        path = resolved;
    }
    match cx.source.read(&path) {
        Ok(text) => Some((path, text)),
        Err(error) => {
            let message = format!("cannot read `{}`: {error}", path.display());
            cx.error_at(val.mark, key, message, Some(hint.to_owned()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::super::testing::{BASE, table};
    use crate::config::{AppTarget, MemorySource, TrustRoots, Upstream, load_str};

    /// A CA, a client certificate it issued with its key, and an unrelated key, as PEM files in
    /// `/etc/portico` (where the test configs live); also a file that is not PEM.
    fn source() -> MemorySource {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["portico".to_owned()])
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        let mut params = CertificateParams::new(vec!["portico".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired = params.signed_by(&client_key, &issuer).unwrap();
        let mut source = MemorySource::default();
        for (name, text) in [
            ("ca.pem", ca_pem),
            ("client.pem", client.pem()),
            ("client.key", client_key.serialize_pem()),
            ("other.key", KeyPair::generate().unwrap().serialize_pem()),
            ("junk.pem", "not a certificate\n".to_owned()),
            ("expired.pem", expired.pem()),
        ] {
            source
                .files
                .insert(Path::new("/etc/portico").join(name), text);
        }
        source
    }

    fn app(upstream: &str) -> String {
        format!(
            "{BASE}    apps:\n      - {{ id: x, access: {{ roles: [developer] }}, upstream: {upstream} }}\n"
        )
    }

    #[test]
    fn upstream_tls_rules() {
        let cases = [
            (
                "tls on an http upstream",
                app("{ url: \"http://a:1\", tls: { ca: ca.pem } }"),
            ),
            ("tls without a url", app("{ tls: { ca: ca.pem } }")),
            (
                "a bad url does not hide a bad tls file",
                app("{ url: \"ftp://a\", tls: { ca: missing.pem } }"),
            ),
            (
                "ca and extra_ca",
                app("{ url: \"https://a\", tls: { ca: ca.pem, extra_ca: ca.pem } }"),
            ),
            (
                "unreadable and non-PEM files",
                app(
                    "{ url: \"https://a\", tls: { ca: missing.pem, client_cert: junk.pem, client_key: junk.pem } }",
                ),
            ),
            (
                "a client certificate without its key",
                app("{ url: \"https://a\", tls: { client_cert: client.pem } }"),
            ),
            (
                "a key that is not the certificate's",
                app(
                    "{ url: \"https://a\", tls: { client_cert: client.pem, client_key: other.key } }",
                ),
            ),
            (
                "a bad server name, an unknown key",
                app(
                    "{ url: \"https://a\", tls: { server_name: \"a b\", insecure_skip_verify: true } }",
                ),
            ),
            (
                "an expired client certificate is a warning",
                app(
                    "{ url: \"https://a\", tls: { client_cert: expired.pem, client_key: client.key } }",
                ),
            ),
            (
                "backstage: tls on http",
                format!(
                    "{BASE}    backstage: {{ url: \"http://b:7007\", tls: {{ ca: ca.pem }} }}\n"
                ),
            ),
            (
                "good: short and full forms, backstage with mTLS",
                format!(
                    "{BASE}    backstage: {{ url: \"https://b\", tls: {{ extra_ca: ca.pem, client_cert: client.pem, client_key: client.key }} }}\n    apps:\n      - {{ id: x, access: {{ roles: [developer] }}, upstream: \"https://a:8443/base\" }}\n      - {{ id: y, access: {{ roles: [developer] }}, upstream: {{ url: \"https://a\", tls: {{ ca: ca.pem, server_name: a.internal }} }} }}\n"
                ),
            ),
        ];
        insta::assert_snapshot!(table(&source(), &cases));
    }

    fn upstreams(text: &str) -> Vec<Upstream> {
        let loaded = load_str(&source(), "portico.yaml", text, Path::new("/etc/portico")).unwrap();
        let tenant = &loaded.config.tenants[0];
        let mut out: Vec<Upstream> = tenant
            .apps
            .iter()
            .filter_map(|app| match &app.target {
                AppTarget::Upstream(upstream) => Some(upstream.clone()),
                _ => None,
            })
            .collect();
        out.extend(tenant.backstage.iter().map(|b| b.backend.clone()));
        out
    }

    #[test]
    fn settings_are_compiled_and_equal_settings_share_a_fingerprint() {
        let text = format!(
            "{BASE}    backstage: {{ url: \"https://b\", tls: {{ ca: ca.pem, client_cert: client.pem, client_key: client.key }} }}\n    apps:\n      - {{ id: plain, access: {{ roles: [developer] }}, upstream: \"http://a\" }}\n      - {{ id: system, access: {{ roles: [developer] }}, upstream: \"https://a/x\" }}\n      - {{ id: own, access: {{ roles: [developer] }}, upstream: {{ url: \"https://c\", tls: {{ ca: ca.pem }} }} }}\n      - {{ id: same, access: {{ roles: [developer] }}, upstream: {{ url: \"https://d\", tls: {{ ca: ca.pem }} }} }}\n      - {{ id: named, access: {{ roles: [developer] }}, upstream: {{ url: \"https://d\", tls: {{ ca: ca.pem, server_name: d.internal }} }} }}\n"
        );
        let [plain, system, own, same, named, backstage] = upstreams(&text).try_into().unwrap();
        assert!(plain.tls.is_none());
        let system = system.tls.unwrap();
        assert!(matches!(system.roots, TrustRoots::System));
        assert_eq!(system.server_name, None);
        let (own, same, named) = (own.tls.unwrap(), same.tls.unwrap(), named.tls.unwrap());
        assert!(matches!(&own.roots, TrustRoots::Only(certs) if certs.len() == 1));
        assert_eq!(own.fingerprint, same.fingerprint);
        assert_ne!(own.fingerprint, named.fingerprint);
        assert_ne!(own.fingerprint, system.fingerprint);
        assert_eq!(
            named.server_name.as_ref().map(|n| n.to_str().into_owned()),
            Some("d.internal".into())
        );
        let backstage = backstage.tls.unwrap();
        assert!(backstage.client_auth.is_some());
        assert_ne!(backstage.fingerprint, own.fingerprint);
        assert_eq!(backstage_authority(&text), "b:443");
    }

    fn backstage_authority(text: &str) -> String {
        upstreams(text).pop().unwrap().authority
    }

    #[test]
    fn a_team_file_keeps_its_client_key_below_its_directory() {
        let mut source = source();
        let main = format!("{BASE}    apps_from: teams/*.yaml\n");
        source.files.insert(
            "/etc/portico/teams/x.yaml".into(),
            "id: x\naccess: { roles: [developer] }\nupstream: { url: \"https://a\", tls: { ca: /etc/portico/ca.pem, client_cert: ../client.pem, client_key: ../client.key } }\n".into(),
        );
        let error = load_str(&source, "portico.yaml", &main, Path::new("/etc/portico"))
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.contains("upstream.tls.client_cert"), "{error}");
        assert!(error.contains("upstream.tls.client_key"), "{error}");
        assert!(
            error.contains("outside the app file's directory"),
            "{error}"
        );
        // The CA is public: a team may name the company's bundle wherever it lies.
        assert!(!error.contains("upstream.tls.ca"), "{error}");
    }
}
