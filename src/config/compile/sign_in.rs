//! Rules for a tenant's `auth`: exactly one sign-in method, dev users that are unique, and an OIDC
//! client that is confidential, has an https issuer (http only on loopback) and accepts only
//! asymmetric ID token algorithms.

use std::path::Path;
use std::time::Duration;

use super::values;
use crate::config::diagnose::Cx;
use crate::config::model::{DevUser, OidcSettings, Secret, SignIn, SigningAlg};
use crate::config::raw::{Env, FlexBool, RawAuth, RawDevSignIn, RawOidc, Shown, Val, field};

pub(super) fn sign_in(val: &Val<RawAuth>, cx: &mut Cx<'_>) -> Option<SignIn> {
    let raw = val.get()?;
    match (&raw.dev_sign_in, &raw.oidc) {
        (Some(_), Some(oidc)) => {
            cx.error_at(
                oidc.mark,
                "oidc",
                "a tenant signs in with either `oidc` or `dev_sign_in`, not both",
                None,
            );
            None
        }
        (None, Some(oidc)) => cx.at("oidc", |cx| self::oidc(oidc, cx)).map(SignIn::Oidc),
        (Some(dev), None) => cx.at("dev_sign_in", |cx| self::dev(dev, cx)),
        (None, None) => {
            cx.error(
                val.mark,
                "no sign-in method configured",
                Some("add `oidc: { issuer: …, client_id: …, client_secret: … }`".into()),
            );
            None
        }
    }
}

fn dev(val: &Val<RawDevSignIn>, cx: &mut Cx<'_>) -> Option<SignIn> {
    let raw = val.get()?;
    let Some(users_val) = &raw.users else {
        cx.missing(val.mark, "users", "list the demo users that can be picked");
        return None;
    };
    let listed = users_val.get()?;
    let mut users: Vec<DevUser> = Vec::new();
    cx.at("users", |cx| {
        for (index, item) in listed.iter().enumerate() {
            let Some(user) = item.get() else { continue };
            cx.at(&format!("[{index}]"), |cx| {
                let Some(id) = &user.id else {
                    cx.missing(item.mark, "id", "a short login name");
                    return;
                };
                let Some(Shown(id)) = id.get() else { return };
                // A broken name, e-mail or group list is reported; the user is still counted.
                let name = field(&user.name).flatten();
                let email = field(&user.email).flatten();
                let groups = field(&user.groups).flatten();
                if users.iter().any(|user| user.id == *id) {
                    cx.error_at(item.mark, "id", format!("duplicate dev user `{id}`"), None);
                    return;
                }
                let groups = groups.map(|list| list.0.as_slice()).unwrap_or_default();
                users.push(DevUser {
                    name: name.map_or_else(|| id.clone(), |Shown(name)| name.clone()),
                    email: email
                        .map_or_else(|| format!("{id}@example.invalid"), |Shown(e)| e.clone()),
                    groups: groups
                        .iter()
                        .filter_map(|g| g.get())
                        .map(|Shown(g)| g.clone())
                        .collect(),
                    id: id.clone(),
                });
            });
        }
        if users.is_empty() {
            cx.error(users_val.mark, "dev sign-in needs at least one user", None);
        }
    });
    (!users.is_empty()).then_some(SignIn::Dev { users })
}

fn oidc(val: &Val<RawOidc>, cx: &mut Cx<'_>) -> Option<OidcSettings> {
    let raw = val.get()?;
    let issuer = required(
        cx,
        val,
        &raw.issuer,
        "issuer",
        "the IdP's issuer URL, e.g. https://idp.acme.example",
    );
    let client_id = required(
        cx,
        val,
        &raw.client_id,
        "client_id",
        "the client id registered at the IdP",
    );
    let client_secret = client_secret(raw, val, cx);
    let scopes = field(&raw.scopes).map(|list| match list {
        None => ["openid", "profile", "email"].map(str::to_owned).to_vec(),
        Some(list) => {
            let mut scopes = vec!["openid".to_owned()];
            for Env(scope) in list.0.iter().filter_map(Val::get) {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
            scopes
        }
    });
    let groups_claim = field(&raw.groups_claim).map(|claim| {
        claim
            .map_or("groups", |Env(claim)| claim.as_str())
            .to_owned()
    });
    let signing_algs = signing_algs(raw, cx);
    let probe_interval = values::optional(
        cx,
        "probe_interval",
        raw.probe_interval.as_ref(),
        OidcSettings::DEFAULT_PROBE_INTERVAL,
        |text| match values::duration(text)? {
            interval if interval < Duration::from_secs(1) => Err(values::Bad::new(
                "the IdP is probed at most once a second",
                "e.g. 30s",
            )),
            interval => Ok(interval),
        },
    );
    let bearer = bearer(raw, cx);
    let issuer = issuer.and_then(|(issuer, mark)| match values::check_issuer(&issuer) {
        Ok(()) => Some(issuer),
        Err(message) => {
            let hint = "e.g. https://idp.acme.example/realms/acme";
            cx.error_at(mark, "issuer", message, Some(hint.into()));
            None
        }
    });
    let (bearer_audience, bearer_introspect) =
        bearer?.map_or((None, false), |(audience, on)| (Some(audience), on));
    Some(OidcSettings {
        issuer: issuer?,
        client_id: client_id?.0,
        client_secret: Secret(client_secret?),
        scopes: scopes?,
        groups_claim: groups_claim?.split('.').map(str::to_owned).collect(),
        signing_algs,
        probe_interval: probe_interval?,
        bearer_audience,
        bearer_introspect,
    })
}

/// `bearer:`: its audience and whether opaque tokens are introspected; `Some(None)` without
/// `bearer:`, `None` when broken (reported).
fn bearer(raw: &RawOidc, cx: &mut Cx<'_>) -> Option<Option<(String, bool)>> {
    let Some(val) = &raw.bearer else {
        return Some(None);
    };
    let bearer = val.get()?;
    cx.at("bearer", |cx| {
        // A value that is not a boolean was reported where it was read; the audience is still checked.
        let introspect = field(&bearer.introspect).map(|flag| flag.is_some_and(|FlexBool(on)| *on));
        let audience = match &bearer.audience {
            None => {
                cx.missing(
                    val.mark,
                    "audience",
                    "the `aud` the IdP puts in access tokens for this portal, e.g. `audience: portico-acme`",
                );
                None
            }
            Some(audience) => {
                let Env(text) = audience.get()?;
                if text.trim().is_empty() {
                    cx.error_at(
                        audience.mark,
                        "audience",
                        "an empty audience would match no token",
                        Some("the `aud` the IdP puts in access tokens for this portal".into()),
                    );
                    return None;
                }
                Some(text.clone())
            }
        };
        Some(Some((audience?, introspect?)))
    })
}

/// A required text key, with where it was written.
fn required<T>(
    cx: &mut Cx<'_>,
    map: &Val<T>,
    field: &Option<Val<Env>>,
    key: &str,
    hint: &str,
) -> Option<(String, crate::config::Mark)> {
    match field {
        None => {
            cx.missing(map.mark, key, hint);
            None
        }
        Some(val) => val.get().map(|Env(text)| (text.clone(), val.mark)),
    }
}

/// `client_secret` or `client_secret_file`: portico is a confidential client.
fn client_secret(raw: &RawOidc, val: &Val<RawOidc>, cx: &mut Cx<'_>) -> Option<String> {
    match (&raw.client_secret, &raw.client_secret_file) {
        (Some(secret), None) => secret.get().map(|Env(secret)| secret.clone()),
        (None, Some(file)) => {
            let Env(name) = file.get()?;
            match cx.source.read(Path::new(name)) {
                Ok(secret) => Some(secret.trim().to_owned()),
                Err(error) => {
                    let message = format!("cannot read `{name}`: {error}");
                    cx.error_at(file.mark, "client_secret_file", message, None);
                    None
                }
            }
        }
        (Some(_), Some(file)) => {
            cx.error_at(
                file.mark,
                "client_secret_file",
                "give `client_secret` or `client_secret_file`, not both",
                None,
            );
            None
        }
        (None, None) => {
            cx.error_at(
                val.mark,
                "client_secret",
                "missing required key `client_secret`",
                Some("portico is a confidential client: `client_secret: ${ACME_OIDC_SECRET}` or `client_secret_file: /run/secrets/acme`".into()),
            );
            None
        }
    }
}

/// `signing_algs`: parsed once here, so a login compares enums, never strings.
fn signing_algs(raw: &RawOidc, cx: &mut Cx<'_>) -> Vec<SigningAlg> {
    let Some(list) = field(&raw.signing_algs).flatten() else {
        return SigningAlg::ALL.to_vec();
    };
    let mut algs = Vec::new();
    for item in &list.0 {
        let Some(Env(name)) = item.get() else {
            continue;
        };
        match SigningAlg::from_name(name) {
            Some(alg) => algs.push(alg),
            None => {
                let names: Vec<&str> = SigningAlg::ALL.iter().map(|alg| alg.as_str()).collect();
                cx.error_at(
                    item.mark,
                    "signing_algs",
                    format!("`{name}` is not an accepted ID token signing algorithm"),
                    Some(format!(
                        "choose from {} (never `none` or HMAC)",
                        names.join(", ")
                    )),
                );
            }
        }
    }
    algs
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::testing::{BASE, table};
    use crate::config::model::SignIn;
    use crate::config::{MemorySource, load_str};

    const DEV: &str = "auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }";

    #[test]
    fn sign_in_rules() {
        let auth = |text: &str| BASE.replace(DEV, text);
        let origin = |text: &str| {
            BASE.replace(DEV, text).replace(
                "    roles:",
                "    public_origin: https://portal.acme.example\n    roles:",
            )
        };
        let cases = [
            (
                "both methods",
                auth("auth: { dev_sign_in: { users: [{ id: a }] }, oidc: { issuer: x } }"),
            ),
            ("no method", auth("auth: {}")),
            ("no users", auth("auth: { dev_sign_in: {} }")),
            (
                "an empty user list",
                auth("auth: { dev_sign_in: { users: [] } }"),
            ),
            (
                "users without id, twice, with a variable",
                auth(
                    "auth: { dev_sign_in: { users: [{ name: X }, { id: a }, { id: a }, { id: b, email: \"${MAIL}\" }] } }",
                ),
            ),
            (
                "an oidc client missing everything",
                origin("auth: { oidc: {} }"),
            ),
            (
                "an http issuer, both secrets, a bad algorithm",
                origin(
                    "auth: { oidc: { issuer: http://idp.example, client_id: c, client_secret: s, client_secret_file: /f, signing_algs: [RS256, HS256] } }",
                ),
            ),
            (
                "a good client",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, scopes: [groups, openid], groups_claim: realm_access.roles } }",
                ),
            ),
            (
                "a probe interval under a second",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, probe_interval: 500ms } }",
                ),
            ),
            (
                "bearer tokens for an audience",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: { audience: \"urn:portico:acme\" } } }",
                ),
            ),
            (
                "bearer without an audience",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: {} } }",
                ),
            ),
            (
                "bearer with an empty audience",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: { audience: \"\" } } }",
                ),
            ),
            (
                "opaque bearer tokens introspected",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: { audience: \"urn:portico:acme\", introspect: true } } }",
                ),
            ),
            (
                "introspect is not a boolean",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: { audience: \"urn:portico:acme\", introspect: sometimes } } }",
                ),
            ),
            (
                "introspect without an audience",
                origin(
                    "auth: { oidc: { issuer: https://idp.example, client_id: c, client_secret: s, bearer: { introspect: [true] } } }",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }

    #[test]
    fn introspection_is_off_unless_asked_for() {
        let introspects = |bearer: &str| {
            let text = BASE.replace(DEV, &format!("auth: {{ oidc: {{ issuer: https://idp.example, client_id: c, client_secret: s, bearer: {bearer} }} }}"))
                .replace("    roles:", "    public_origin: https://portal.acme.example\n    roles:");
            let loaded = load_str(
                &MemorySource::default(),
                "portico.yaml",
                &text,
                Path::new("/etc"),
            )
            .unwrap_or_else(|error| panic!("{error}"));
            match &loaded.config.tenants[0].sign_in {
                SignIn::Oidc(settings) => {
                    (settings.bearer_audience.clone(), settings.bearer_introspect)
                }
                SignIn::Dev { .. } => unreachable!("an OIDC tenant"),
            }
        };
        let audience = Some("urn:portico:acme".to_owned());
        assert_eq!(
            introspects("{ audience: urn:portico:acme }"),
            (audience.clone(), false)
        );
        assert_eq!(
            introspects("{ audience: urn:portico:acme, introspect: yes }"),
            (audience.clone(), true)
        );
        assert_eq!(
            introspects("{ audience: urn:portico:acme, introspect: false }"),
            (audience, false)
        );
    }
}
