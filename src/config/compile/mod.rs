//! The meaning stage: turns the shaped document (`config::raw`) into a validated `Config`.
//!
//! One file per section, each a set of rules that read raw values and report through [`Cx`]: what a
//! value means (a URL, a role that exists, a duration), which keys are required, and what holds across
//! keys and tenants. A rule reports and returns `None`; its caller carries on with the rest and
//! assembles its result only at the end, so a broken key never hides a later one. The only IO is what
//! the config asks for (`apps_from` files, static directories, key and secret files), through
//! [`Source`](super::Source).
//!
//! - `server`: `server`, `sessions`, `proxy`.
//! - `tenant`: a tenant, its `branding` and `luigi`; `claims` holds what tenants may not share (hosts,
//!   Backstage namespaces).
//! - `sign_in`, `backstage`, `access` (roles and access rules), `apps` (one app and its nodes),
//!   `app_sources` (a tenant's apps, `apps_from` files), `shared_apps`, `upstream` (an app's or
//!   Backstage's URL and TLS settings, PEM files read and checked); `values` parses single values.
//!
//! [`compile`] is what `serve` and a reload run. [`check`] is `portico check`'s: the same rules, but
//! an unset `${VAR}` reads as a placeholder (a warning), and an app file under check is compiled as
//! its tenant's (`app_sources`). It returns what it found and never the `Config`, so a placeholder
//! can never be served.

mod access;
mod app_sources;
mod apps;
mod backstage;
mod claims;
mod health;
mod previews;
mod server;
mod shared_apps;
mod sign_in;
mod tenant;
mod tokens;
mod upstream;
pub(crate) mod values;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use super::Diagnostic;
use super::de;
use super::diagnose::Cx;
use super::env::{EnvRules, TeamEnv, Unset};
use super::model::{Config, StoreSettings, TenantId};
use super::raw::{Env, RawConfig, Val};
use super::source::Source;
use super::yaml::{self, Mark};
use crate::rbac::RoleMap;

pub use values::parse_upstream;

/// Path prefixes that portico itself answers on every tenant origin. An app id or node path with one of
/// these names would be shadowed in the shell's path routing, so config refuses them.
pub const RESERVED_SEGMENTS: &[&str] =
    &["auth", "shell", "apps", "backstage", ".well-known", "home"];

/// What the rules for one tenant's parts need to know about it.
pub(crate) struct TenantScope<'t> {
    pub id: &'t str,
    pub roles: &'t RoleMap,
    /// The directory of the file being read: relative paths in it start here.
    pub base_dir: &'t Path,
    /// Set while a team's app file is read: what it may reach.
    pub team: Option<&'t TeamScope>,
    /// The tenant's Backstage, for apps' `catalog_ref` and the catalog bundle: `Some(None)` when it
    /// has none, `None` while it is not known or broken (reported already: nothing more to say).
    pub backstage: Option<Option<&'t crate::config::BackstageSettings>>,
}

/// What a team's app file (`apps_from`) may reach: files below its own directory or a directory the
/// tenant allows (`apps_static_roots`), and only the environment variables the tenant allows
/// (`apps_env`). The main config and `shared_apps` are the platform's and are not confined.
#[derive(Debug, Clone, Default)]
pub(crate) struct TeamScope {
    pub env: TeamEnv,
    /// The app file's directory, symlinks resolved.
    pub dir: PathBuf,
    /// `apps_static_roots`, symlinks resolved.
    pub static_roots: Vec<PathBuf>,
}

/// What `portico check` asks of a compile ([`check`]); only `config::check` makes one.
#[derive(Debug, Default)]
pub(crate) struct Checking {
    /// The app file under check; `None` when a main config is checked.
    pub app: Option<CheckedApp>,
    /// Each tenant that reached its apps, with its `apps_from` patterns as searched (for the
    /// error that names the candidates).
    pub tenants: RefCell<Vec<(String, Vec<String>)>>,
    /// Tenants with an `apps_from` pattern that matches the app file.
    pub matched_by: RefCell<Vec<String>>,
    /// Tenants that compiled the app file: those it matched, or the one named.
    pub compiled_by: RefCell<Vec<String>>,
}

/// One team's app file under `portico check`, compiled last among its tenant's apps (so a clash is
/// reported on it, naming the other definition) with the confinement of an `apps_from` file.
#[derive(Debug)]
pub(crate) struct CheckedApp {
    /// Where it is, as given (`<stdin>` for standard input without a name): its directory anchors
    /// its relative paths and is what it is confined to, as for a file a pattern found.
    pub file: PathBuf,
    /// `file` made absolute ([`Source::absolute`]), compared with `apps_from` patterns and what
    /// they found. It need not exist (`check -` with `--stdin-name`).
    pub absolute: PathBuf,
    /// How diagnostics name it: the path as given, or `<stdin>`.
    pub name: String,
    pub text: String,
    /// `--tenant`: compiled as this tenant's whether or not its patterns match.
    pub tenant: Option<String>,
    /// Whether `path` is where the file lives (not so for `check -` without `--stdin-name`): only
    /// then can a tenant whose patterns miss it be said not to read it.
    pub located: bool,
}

impl Checking {
    /// What each rule reads as an unset `${VAR}` in this compile.
    pub(crate) fn unset(checking: Option<&Checking>) -> Unset {
        match checking {
            Some(_) => Unset::Placeholder,
            None => Unset::Refuse,
        }
    }
}

/// What a [`check`] compile found besides its diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Checked {
    /// Tenants and apps of the config, when it compiled.
    pub tenants: usize,
    pub apps: usize,
}

/// Compiles the main config document. `file` names it in diagnostics; `base_dir` anchors relative paths.
pub(crate) fn compile(
    source: &dyn Source,
    file: &str,
    text: &str,
    base_dir: &Path,
) -> (Option<Config>, Vec<Diagnostic>) {
    compile_with(source, file, text, base_dir, None)
}

/// Compiles the main config document for `portico check`, under `checking`. The `Config` stays in
/// here: it may hold placeholders for unset variables, and nothing may serve it.
pub(crate) fn check(
    source: &dyn Source,
    file: &str,
    text: &str,
    base_dir: &Path,
    checking: &Checking,
) -> (Option<Checked>, Vec<Diagnostic>) {
    let (config, diagnostics) = compile_with(source, file, text, base_dir, Some(checking));
    let checked = config.map(|config| Checked {
        tenants: config.tenants.len(),
        apps: config.tenants.iter().map(|tenant| tenant.apps.len()).sum(),
    });
    (checked, diagnostics)
}

fn compile_with(
    source: &dyn Source,
    file: &str,
    text: &str,
    base_dir: &Path,
    checking: Option<&Checking>,
) -> (Option<Config>, Vec<Diagnostic>) {
    let mut cx = Cx::new(source, file);
    cx.checking = checking;
    let Some(root) = parse(&mut cx, text) else {
        return (None, cx.into_diagnostics());
    };
    let rules = EnvRules {
        source,
        team: None,
        unset: Checking::unset(checking),
    };
    let (raw, issues) = de::shape::<RawConfig>(&root, &rules);
    cx.issues(issues);
    let config = raw.and_then(|raw| config(&raw, root.mark, &mut cx, base_dir, file));
    (config, cx.into_diagnostics())
}

/// The syntax stage: the positioned tree, or its syntax errors reported.
fn parse(cx: &mut Cx<'_>, text: &str) -> Option<yaml::Node> {
    match yaml::parse(text) {
        Ok(root) => Some(root),
        Err(errors) => {
            for error in errors {
                let hint = error.hint.unwrap_or("fix the YAML syntax");
                cx.error(error.mark, error.message, Some(hint.into()));
            }
            None
        }
    }
}

fn config(
    raw: &RawConfig,
    mark: Mark,
    cx: &mut Cx<'_>,
    base_dir: &Path,
    source_name: &str,
) -> Option<Config> {
    if let Some(version) = &raw.version {
        values::parsed(cx, "version", version, |text| match text {
            "1" => Ok(()),
            other => Err(values::Bad::new(
                format!("unsupported config version `{other}`"),
                "this portico reads version 1",
            )),
        });
    }
    let server = cx.at("server", |cx| {
        server::server(raw.server.as_ref(), cx, base_dir)
    });
    let sessions = cx.at("sessions", |cx| {
        server::sessions(raw.sessions.as_ref(), cx, base_dir)
    });
    let proxy = cx.at("proxy", |cx| server::proxy(raw.proxy.as_ref(), cx));
    let telemetry = cx.at("telemetry", |cx| {
        server::telemetry(raw.telemetry.as_ref(), cx)
    });
    if let (Some(server), Some(sessions), Some(raw_sessions)) =
        (&server, &sessions, raw.sessions.as_ref())
    {
        if matches!(sessions.store, StoreSettings::Redis(_)) && server.signing_keys.is_empty() {
            cx.at("sessions", |cx| {
                cx.at("store", |cx| {
                    cx.warn(
                        raw_sessions.mark,
                        "every instance signs identity assertions with a key of its own",
                        Some("with several instances, give them all the same `server.signing_keys` (P-256 PEM files), or an upstream verifies only the assertions of the instance whose keys it fetched".into()),
                    );
                });
            });
        }
    }
    let mut claims = claims::Claims::default();
    let tenants = tenant::tenants(raw, mark, cx, base_dir, &mut claims);
    let default_tenant = default_tenant(raw, cx);
    claims.check(cx);
    Some(Config {
        server: server?,
        sessions: sessions?,
        proxy: proxy?,
        tenants,
        default_tenant,
        source: source_name.to_owned(),
        telemetry: telemetry?,
    })
}

/// `default_tenant`: one of the tenants written (a tenant that is broken is reported on its own).
fn default_tenant(raw: &RawConfig, cx: &mut Cx<'_>) -> Option<TenantId> {
    let val = raw.default_tenant.as_ref()?;
    let Env(id) = val.get()?;
    let named = raw.tenants.as_ref().and_then(Val::get);
    let known: Vec<&str> = named
        .map(|named| {
            named
                .0
                .iter()
                .filter_map(|(id, _)| id.get())
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    if known.contains(&id.as_str()) {
        return Some(TenantId::new(id));
    }
    cx.error_at(
        val.mark,
        "default_tenant",
        format!("unknown tenant `{id}`"),
        Some(format!("tenants defined: {}", known.join(", "))),
    );
    None
}

/// Helpers for the per-section table tests: compile a fragment, render what it reports.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::config::{MemorySource, load_str};

    /// A tenant with dev sign-in and one role; fragments are appended below it (at 4 spaces, inside
    /// the tenant) or replace parts of it.
    pub(crate) const BASE: &str = "\
tenants:
  acme:
    hosts: [portal.acme.example]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
";

    /// Compiles `text` from memory and renders every diagnostic as `portico check` prints it, or `ok`.
    pub(crate) fn report(source: &MemorySource, text: &str) -> String {
        match load_str(source, "portico.yaml", text, Path::new("/etc/portico")) {
            Ok(loaded) if loaded.warnings.is_empty() => "ok".to_owned(),
            Ok(loaded) => loaded
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            Err(error) => error.to_string(),
        }
    }

    /// Renders a table of cases (a name and a config text each) as one snapshot.
    pub(crate) fn table(source: &MemorySource, cases: &[(&str, String)]) -> String {
        cases
            .iter()
            .map(|(name, text)| format!("## {name}\n{}\n", report(source, text)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
