//! The config document for recorded users of the demo config and of a richer one, compared with what
//! was recorded in `fixtures/` (JSON values, so key order does not matter). `PORTICO_BLESS=1` rewrites
//! the recordings; review their diff like code, since it is what the browser receives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::auth::session::{Session, User};
use crate::config::{self, MemorySource};
use crate::i18n::Locale;

/// Three tenants on one OIDC issuer or another: branding with logo and favicon, Luigi settings,
/// nested nodes with icons and narrower access, an app without category, icon, owner or Luigi client.
const RICH: &str = r#"
version: 1
server: { listen: "127.0.0.1:8080" }
tenants:
  acme:
    hosts: [acme.example]
    public_origin: https://acme.example
    branding: { title: Acme Portal, logo: /shell/logo.svg, favicon: /apps/plain/favicon.ico }
    luigi: { responsive_navigation: Fiori3, side_nav_footer: Acme internal }
    auth:
      oidc: { issuer: "https://idp.example", client_id: acme, client_secret: acme-secret }
    roles:
      developer: { groups: [eng] }
      admin: { groups: [admins] }
    apps:
      - id: tools
        label: Tools
        category: Build
        icon: wrench
        owner: team-tools
        access: { roles: [developer, admin] }
        static: embedded:demo
        nodes:
          - path: builds
            label: Builds
            view: /builds
            icon: build
            nodes:
              - { path: logs, label: Logs, view: /builds/logs }
              - { path: secrets, label: Secrets, view: /builds/secrets, access: { roles: [admin] } }
          - { path: admin, label: Admin, view: /admin, access: { roles: [admin] } }
      - id: plain
        label: Plain
        access: { roles: [developer] }
        luigi_client: false
        static: embedded:demo
      - id: vault
        label: Vault
        access: { roles: [admin] }
        static: embedded:demo
  globex:
    hosts: [globex.example]
    public_origin: https://globex.example
    branding: { title: Globex Portal }
    auth:
      oidc: { issuer: "https://idp.example", client_id: globex, client_secret: globex-secret }
    roles:
      staff: { groups: [eng] }
    apps:
      - { id: ledger, label: Ledger, access: { roles: [staff] }, static: embedded:demo }
  initech:
    hosts: [initech.example]
    public_origin: https://initech.example
    branding: { title: Initech Portal }
    auth:
      oidc: { issuer: "https://other-idp.example", client_id: initech, client_secret: initech-secret }
    roles:
      staff: { groups: [eng] }
    apps:
      - { id: tps, label: TPS Reports, access: { roles: [staff] }, static: embedded:demo }
"#;

fn signed_in(tenant: &Arc<Tenant>, subject: &str, name: &str, groups: &[&str]) -> SignedIn {
    let groups: Vec<String> = groups.iter().map(|group| (*group).to_owned()).collect();
    let mut session = Session::new(
        &tenant.id,
        User {
            subject: subject.to_owned(),
            name: name.to_owned(),
            email: format!("{subject}@example.com"),
            groups: groups.clone(),
        },
    );
    session.csrf_token = "recorded-csrf-token".into();
    let session = Arc::new(session);
    let principal = session.principal(tenant);
    SignedIn {
        session,
        principal,
        bearer: None,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/shell/fixtures")
        .join(format!("{name}.json"))
}

/// Compares the document with its recording (or records it with `PORTICO_BLESS=1`).
fn assert_recorded(name: &str, config: &Config, tenant: &str, user: (&str, &str, &[&str])) {
    assert_recorded_in(Locale::En, name, config, tenant, user);
}

/// [`assert_recorded`] for a browser that asks for `locale`.
fn assert_recorded_in(
    locale: Locale,
    name: &str,
    config: &Config,
    tenant: &str,
    user: (&str, &str, &[&str]),
) {
    let tenant = config.tenant(tenant).expect("tenant");
    let signed_in = signed_in(tenant, user.0, user.1, user.2);
    let document = serde_json::to_value(shell_config(config, tenant, &signed_in, locale)).unwrap();
    let path = fixture(name);
    if std::env::var_os("PORTICO_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&document).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        return;
    }
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        document,
        recorded,
        "{name}: the shell config differs from {}",
        path.display()
    );
}

#[test]
fn the_demo_configs_documents_are_unchanged() {
    let config = config::load_embedded().unwrap().config;
    let alice: &[&str] = &["demo-platform-admins", "demo-eng"];
    assert_recorded(
        "demo-alice",
        &config,
        "demo",
        ("alice", "Alice Admin", alice),
    );
    assert_recorded(
        "demo-dave",
        &config,
        "demo",
        ("dave", "Dave Developer", &["demo-eng"]),
    );
    assert_recorded("demo-nora", &config, "demo", ("nora", "Nora Nogroups", &[]));
    // A German browser: the demo's labels, categories and descriptions in German, and the shell's own
    // entries (Home, My access, Sign out, the portals, the language switch) too.
    assert_recorded_in(
        Locale::De,
        "demo-alice-de",
        &config,
        "demo",
        ("alice", "Alice Admin", alice),
    );
    assert_recorded(
        "globex-alice",
        &config,
        "globex",
        ("alice", "Alice Admin", &["globex-staff"]),
    );
    let gina: &[&str] = &["globex-staff", "globex-finance"];
    assert_recorded(
        "globex-gina",
        &config,
        "globex",
        ("gina", "Gina Globex", gina),
    );
}

#[test]
fn a_richer_configs_documents_are_unchanged() {
    let loaded = config::load_str(&MemorySource::default(), "rich.yaml", RICH, Path::new("."));
    let config = match loaded {
        Ok(loaded) => loaded.config,
        Err(error) => panic!("{error}"),
    };
    assert_recorded(
        "rich-admin",
        &config,
        "acme",
        ("ann", "Ann Admin", &["eng", "admins"]),
    );
    assert_recorded("rich-developer", &config, "acme", ("bob", "bob", &["eng"]));
    assert_recorded("rich-nobody", &config, "acme", ("cy", "", &[]));
}
