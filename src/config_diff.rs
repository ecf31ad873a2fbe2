//! `portico check NEW --diff-against OLD`: what a config change does to who may reach what, in words
//! a reviewer reads in a pull request. Per tenant: tenants added or removed; roles added or removed and
//! the groups that grant them; apps added or removed, their upstream, owner and identity changed; and
//! for each group of either role map (a user holding just that group), the apps, pages and method
//! rules it gains or loses.
//!
//! Every verdict is the proxy's own: each side is asked through `explain::explain` (apps and pages,
//! as the navigation shows them) and `rbac::decide` (method rules, as the proxy enforces them) on its
//! compiled config. This module compares answers; it must never decide access itself. What it reads
//! of the config's structure (which rules exist, which groups grant a rule's roles) only chooses whom
//! and where to ask.
//!
//! **Combinations of groups.** Access needs every rule on the way (the app's, then each page's above
//! the path, then each matching method rule), each passed by any of its roles, so a page may open only
//! to a user holding two groups together (`developer` from `acme-eng` for the app, `platform-admin`
//! from `acme-admins` for the page), and asking per single group would miss a change to it. Access is
//! monotone (more groups never reach less), so besides every single group this module also asks every
//! combination that holds one granting group per rule of some page's or method rule's chain, in either
//! config (at most `MAX_COMBINATIONS` per tenant; a note says when more were left out). A change is
//! reported for the smallest group sets it happens to: a combination only when none of its parts
//! already shows the same change.
//!
//! **Method rules** are asked with a path that the rule's glob covers (`*` and `**` as one and two
//! segments named `x`), for each method it names (every standard method for an any-method rule), only
//! for users who see the app on both sides (a gained or lost app says it all); a change already said
//! by a page above that path is not repeated.
//!
//! Positions (`file`, `line`) come from the new config's own YAML, read again here (the compiled model
//! keeps none): the app's `id`, a page's `path`, a rule's `path`, a role's key, in the file that
//! defines it; what the new config no longer has points at the nearest thing it still has.
//!
//! The JSON shape (`--format json`) is stable; fields that do not apply are left out:
//! `{ "old", "new", "access_changed", "tenants": [ { "id", "added", "removed", "changes": [ { "kind",
//! "level", "groups", "role", "app", "app_label", "page", "page_label", "pages", "methods", "path",
//! "before", "after", "needs", "file", "line", "text" } ] } ] }`. `kind` is one of `tenant_added`,
//! `tenant_removed`, `role_added`, `role_removed`, `role_groups_changed`, `app_added`, `app_removed`,
//! `upstream_changed`, `owner_changed`, `identity_changed`, `gains`, `loses`, `note`; `level` is
//! `notice` or `warning` (losses, and gains of what existed before: widening).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use http::Method;
use serde::Serialize;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::config::{
    self, App, AppTarget, Config, ConfigError, Diagnostic, Loaded, NavNode, Source, Tenant,
};
use crate::rbac::{self, AccessRule, Decision};

/// How many combinations of groups are asked per tenant, beyond the single groups: each is one
/// `explain` per side, and a role map with many groups per role multiplies them.
pub const MAX_COMBINATIONS: usize = 512;

/// What `--diff-against` cannot do; a config that does not load is a [`ConfigError`] instead.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// `--diff-against` names a directory (a checkout of the old revision), where the new config's
    /// path is looked up; an absolute path cannot be.
    #[error(
        "`{dir}` is a directory, and `{new}` is no relative path to look up in it; give the old config file itself"
    )]
    AbsoluteInDirectory { new: PathBuf, dir: PathBuf },
    /// The GitHub step summary could not be written.
    #[error("cannot write the step summary to {path}: {source}")]
    Summary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The report could not be written as JSON.
    #[error("cannot write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The old config's file: `old` itself, or when it is a directory (a checkout of the old revision,
/// `git worktree add old origin/main`), the new config's relative path inside it.
pub fn old_config_path(new: &Path, old: &Path) -> Result<PathBuf, DiffError> {
    if !old.is_dir() {
        return Ok(old.to_path_buf());
    }
    if new.is_absolute() {
        return Err(DiffError::AbsoluteInDirectory {
            new: new.to_path_buf(),
            dir: old.to_path_buf(),
        });
    }
    Ok(old.join(new))
}

/// One loaded config with what the report needs of its text.
pub struct Side {
    config: Config,
    warnings: Vec<Diagnostic>,
    name: String,
    positions: Positions,
}

impl Side {
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The warnings of the load, as `portico check` prints them.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

/// Loads a config from disk as `portico check` does, `apps_from` files included.
pub fn load(path: &Path) -> Result<Side, ConfigError> {
    load_with(&config::OsSource, path)
}

/// [`load`] through `source`.
pub fn load_with(source: &dyn Source, path: &Path) -> Result<Side, ConfigError> {
    let capturing = Capturing {
        inner: source,
        main: path.to_path_buf(),
        globbed: RefCell::default(),
        texts: RefCell::default(),
    };
    let Loaded { config, warnings } = config::load_with(&capturing, path)?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let positions = Positions::new(
        path,
        base_dir,
        capturing.texts.into_inner(),
        capturing.globbed.into_inner(),
        source,
    );
    Ok(Side {
        config,
        warnings,
        name: display(path),
        positions,
    })
}

fn display(path: &Path) -> String {
    let text = path.display().to_string();
    match text.strip_prefix("./") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// A [`Source`] that keeps the text of the config files it passes on (the main file and the files
/// `apps_from` globs found; never keys or secrets) and what each glob found, for positions.
struct Capturing<'s> {
    inner: &'s dyn Source,
    main: PathBuf,
    globbed: RefCell<Vec<(String, Vec<PathBuf>)>>,
    texts: RefCell<Vec<(PathBuf, String)>>,
}

impl Source for Capturing<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.inner.env(name)
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        let text = self.inner.read(path)?;
        let config_text = path == self.main
            || self
                .globbed
                .borrow()
                .iter()
                .any(|(_, found)| found.iter().any(|p| p == path));
        if config_text {
            self.texts
                .borrow_mut()
                .push((path.to_path_buf(), text.clone()));
        }
        Ok(text)
    }
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read_bytes(path)
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let found = self.inner.glob(pattern)?;
        self.globbed
            .borrow_mut()
            .push((pattern.to_owned(), found.clone()));
        Ok(found)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        self.inner.canonicalize(path)
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// What a config change does, per tenant (sorted by id).
#[derive(Debug, Serialize)]
pub struct Review {
    /// The old config's file, as given.
    pub old: String,
    /// The new config's file, as given.
    pub new: String,
    /// Whether anyone gains or loses anything (or a tenant comes or goes).
    pub access_changed: bool,
    pub tenants: Vec<TenantReview>,
}

/// The changes of one tenant. Tenants without a change are left out.
#[derive(Debug, Serialize)]
pub struct TenantReview {
    pub id: String,
    pub added: bool,
    pub removed: bool,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    TenantAdded,
    TenantRemoved,
    RoleAdded,
    RoleRemoved,
    RoleGroupsChanged,
    AppAdded,
    AppRemoved,
    UpstreamChanged,
    OwnerChanged,
    IdentityChanged,
    Gains,
    Loses,
    Note,
}

impl Kind {
    /// Whether this change alters who can reach what.
    fn is_access(self) -> bool {
        matches!(
            self,
            Kind::Gains | Kind::Loses | Kind::TenantAdded | Kind::TenantRemoved
        )
    }

    /// The annotation's title.
    fn title(self) -> &'static str {
        match self {
            Kind::TenantAdded => "tenant added",
            Kind::TenantRemoved => "tenant removed",
            Kind::RoleAdded => "role added",
            Kind::RoleRemoved => "role removed",
            Kind::RoleGroupsChanged => "role groups changed",
            Kind::AppAdded => "app added",
            Kind::AppRemoved => "app removed",
            Kind::UpstreamChanged => "upstream changed",
            Kind::OwnerChanged => "owner changed",
            Kind::IdentityChanged => "identity changed",
            Kind::Gains => "access gained",
            Kind::Loses => "access lost",
            Kind::Note => "note",
        }
    }
}

/// How loudly CI says it: losses and widening are warnings, the rest notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Notice,
    Warning,
}

/// A page by its shell path and label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageRef {
    pub path: String,
    pub label: String,
}

/// A role that is needed, and the groups that grant it (in the new config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeedOut {
    pub role: String,
    pub groups: Vec<String>,
}

/// One change, in words (`text`) and as data.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub kind: Kind,
    pub level: Level,
    /// Gains and losses: the groups a user holds (one, or a combination held together).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_label: Option<String>,
    /// A page's shell path (`/home/<app>/<path>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_label: Option<String>,
    /// The pages that come or go with the app or page changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pages: Vec<PageRef>,
    /// A method rule's change: the methods, and the path (`/apps/<id><glob>`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// A loss: what is needed now (empty when the thing is gone).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<NeedOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The change in words, `<tenant>: …`.
    pub text: String,
    /// `text` without the tenant.
    #[serde(skip)]
    what: String,
}

impl Change {
    fn new(kind: Kind, level: Level, what: String) -> Change {
        Change {
            kind,
            level,
            groups: Vec::new(),
            role: None,
            app: None,
            app_label: None,
            page: None,
            page_label: None,
            pages: Vec::new(),
            methods: Vec::new(),
            path: None,
            before: None,
            after: None,
            needs: Vec::new(),
            file: None,
            line: None,
            text: String::new(),
            what,
        }
    }

    fn at(mut self, spot: Option<Spot>) -> Change {
        if let Some(spot) = spot {
            self.file = Some(spot.file);
            self.line = Some(spot.line);
        }
        self
    }

    fn app(mut self, app: &AppInfo) -> Change {
        self.app = Some(app.id.clone());
        self.app_label = Some(app.label.clone());
        self
    }
}

/// Compares two loaded configs.
pub fn diff(old: &Side, new: &Side) -> Review {
    let ids: BTreeSet<&str> = old
        .config
        .tenants
        .iter()
        .chain(&new.config.tenants)
        .map(|tenant| tenant.id.as_str())
        .collect();
    let tenants: Vec<TenantReview> = ids
        .into_iter()
        .map(|id| {
            let sides = Sides {
                id,
                old: old.config.tenant(id).map(AsRef::as_ref),
                new: new.config.tenant(id).map(AsRef::as_ref),
                old_side: old,
                new_side: new,
            };
            sides.review()
        })
        .filter(|tenant| !tenant.changes.is_empty())
        .collect();
    let access_changed = tenants
        .iter()
        .flat_map(|tenant| &tenant.changes)
        .any(|change| change.kind.is_access());
    Review {
        old: old.name.clone(),
        new: new.name.clone(),
        access_changed,
        tenants,
    }
}

/// One tenant in both configs (either may lack it).
struct Sides<'a> {
    id: &'a str,
    old: Option<&'a Tenant>,
    new: Option<&'a Tenant>,
    old_side: &'a Side,
    new_side: &'a Side,
}

impl Sides<'_> {
    fn review(&self) -> TenantReview {
        let mut changes = Vec::new();
        match (self.old, self.new) {
            (Some(old), None) => {
                let what = format!(
                    "tenant removed: its users lose all {} of its apps",
                    old.apps.len()
                );
                let spot = self.new_side.positions.tenants_key();
                changes.push(Change::new(Kind::TenantRemoved, Level::Warning, what).at(spot));
            }
            (None, Some(new)) => {
                let what = format!(
                    "tenant added (hosts {}; {} app(s))",
                    join_or(&new.hosts, "none"),
                    new.apps.len()
                );
                let spot = self.new_side.positions.tenant(self.id);
                changes.push(Change::new(Kind::TenantAdded, Level::Notice, what).at(spot));
            }
            _ => {}
        }
        if self.new.is_some() {
            self.roles(&mut changes);
            let apps = self.apps();
            self.app_changes(&apps, &mut changes);
            self.access_changes(&apps, &mut changes);
        }
        for change in &mut changes {
            change.text = format!("{}: {}", self.id, change.what);
        }
        TenantReview {
            id: self.id.to_owned(),
            added: self.old.is_none(),
            removed: self.new.is_none(),
            changes,
        }
    }

    fn role_groups(tenant: Option<&Tenant>) -> BTreeMap<&str, &[String]> {
        tenant
            .map(|tenant| {
                tenant
                    .roles
                    .roles
                    .iter()
                    .map(|(role, groups)| (role.0.as_str(), groups.as_slice()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn roles(&self, out: &mut Vec<Change>) {
        let old = Self::role_groups(self.old);
        let new = Self::role_groups(self.new);
        let names: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
        for role in names {
            let spot = self
                .new_side
                .positions
                .role(self.id, role)
                .or_else(|| self.new_side.positions.tenant(self.id));
            let change = match (old.get(role), new.get(role)) {
                (None, Some(groups)) => Change::new(
                    Kind::RoleAdded,
                    Level::Notice,
                    format!("role {role} added, granted by {}", groups_words(groups)),
                ),
                (Some(groups), None) => Change::new(
                    Kind::RoleRemoved,
                    Level::Warning,
                    format!(
                        "role {role} removed (was granted by {})",
                        groups_words(groups)
                    ),
                ),
                (Some(before), Some(after)) if sorted(before) != sorted(after) => {
                    let mut change = Change::new(
                        Kind::RoleGroupsChanged,
                        Level::Warning,
                        format!(
                            "role {role} is now granted by {} (was {})",
                            groups_words(after),
                            groups_words(before)
                        ),
                    );
                    change.before = Some(before.join(", "));
                    change.after = Some(after.join(", "));
                    change
                }
                _ => continue,
            };
            let mut change = change.at(spot);
            change.role = Some(role.to_owned());
            out.push(change);
        }
    }

    /// Every app of either side: the new config's order, then the old one's for apps it dropped.
    fn apps(&self) -> Vec<AppInfo> {
        let mut apps: Vec<AppInfo> = Vec::new();
        for (tenant, is_new) in [(self.new, true), (self.old, false)] {
            for app in tenant.map(|t| t.apps.as_slice()).unwrap_or_default() {
                if let Some(known) = apps.iter_mut().find(|known| known.id == app.id.as_str()) {
                    known.old = Some(app.clone());
                    continue;
                }
                apps.push(AppInfo {
                    id: app.id.as_str().to_owned(),
                    label: app.label.fallback().to_owned(),
                    old: (!is_new).then(|| app.clone()),
                    new: is_new.then(|| app.clone()),
                    pages: Vec::new(),
                    probes: Vec::new(),
                });
            }
        }
        for app in &mut apps {
            app.pages = all_pages(app.new.as_deref(), app.old.as_deref());
            app.probes = probes(app.old.as_deref(), app.new.as_deref());
        }
        apps
    }

    fn app_changes(&self, apps: &[AppInfo], out: &mut Vec<Change>) {
        let positions = &self.new_side.positions;
        for app in apps {
            let spot = positions
                .app(self.id, &app.id)
                .or_else(|| positions.tenant(self.id));
            let base = |kind, level, what: String| {
                Change::new(
                    kind,
                    level,
                    format!("app \"{}\" ({}){what}", app.label, app.id),
                )
                .app(app)
                .at(spot.clone())
            };
            let (old, new) = match (&app.old, &app.new) {
                (None, Some(new)) => {
                    let owner = new.owner.as_deref().unwrap_or("nobody");
                    let target = target_text(new, &self.new_side.positions.base_dir);
                    let mut change = base(
                        Kind::AppAdded,
                        Level::Notice,
                        format!(" added: {target}, owned by {owner}"),
                    );
                    change.after = Some(target);
                    out.push(change);
                    continue;
                }
                (Some(_), None) => {
                    out.push(base(
                        Kind::AppRemoved,
                        Level::Warning,
                        " removed".to_owned(),
                    ));
                    continue;
                }
                (Some(old), Some(new)) => (old, new),
                (None, None) => continue,
            };
            let before = target_text(old, &self.old_side.positions.base_dir);
            let after = target_text(new, &self.new_side.positions.base_dir);
            if before != after {
                let what = format!(": upstream changes from {before} to {after}");
                out.push(with(
                    base(Kind::UpstreamChanged, Level::Warning, what),
                    before,
                    after,
                ));
            }
            let (before, after) = (owner(old), owner(new));
            if before != after {
                let what = format!(": owner changes from {before} to {after}");
                out.push(with(
                    base(Kind::OwnerChanged, Level::Notice, what),
                    before,
                    after,
                ));
            }
            if old.identity != new.identity {
                let (before, after) = (identity(old), identity(new));
                let widened = (new.identity.access_token && !old.identity.access_token)
                    || (new.identity.headers && !old.identity.headers)
                    || (new.identity.assertion && !old.identity.assertion);
                let level = if widened {
                    Level::Warning
                } else {
                    Level::Notice
                };
                let what = format!(": what goes upstream changes from {before} to {after}");
                out.push(with(
                    base(Kind::IdentityChanged, level, what),
                    before,
                    after,
                ));
            }
        }
    }
}

fn with(mut change: Change, before: String, after: String) -> Change {
    change.before = Some(before);
    change.after = Some(after);
    change
}

fn owner(app: &App) -> String {
    app.owner.clone().unwrap_or_else(|| "nobody".to_owned())
}

fn identity(app: &App) -> String {
    let modes: Vec<&str> = [
        (app.identity.assertion, "assertion"),
        (app.identity.headers, "headers"),
        (app.identity.access_token, "access_token"),
    ]
    .into_iter()
    .filter_map(|(on, word)| on.then_some(word))
    .collect();
    join_or(&modes, "none")
}

/// Where the app's content comes from, comparable across two checkouts: a static directory relative
/// to its config's directory.
fn target_text(app: &App, base_dir: &[PathBuf]) -> String {
    match &app.target {
        AppTarget::Upstream(upstream) => upstream.url.clone(),
        AppTarget::Embedded(name) => format!("static embedded:{name}"),
        AppTarget::StaticDir(dir) => {
            let relative = base_dir
                .iter()
                .find_map(|base| dir.strip_prefix(base).ok())
                .unwrap_or(dir);
            format!("static {}", relative.display())
        }
    }
}

fn sorted(groups: &[String]) -> Vec<&String> {
    let mut sorted: Vec<&String> = groups.iter().collect();
    sorted.sort();
    sorted
}

fn join_or<S: AsRef<str>>(items: &[S], none: &str) -> String {
    if items.is_empty() {
        return none.to_owned();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<&str>>()
        .join(", ")
}

fn groups_words(groups: &[String]) -> String {
    match groups {
        [] => "no group".to_owned(),
        [one] => format!("group {one}"),
        more => format!("groups {}", more.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Who reaches what

/// One app of either side, with every page and method-rule probe of either side.
struct AppInfo {
    id: String,
    /// The new config's label, else the old one's.
    label: String,
    old: Option<std::sync::Arc<App>>,
    new: Option<std::sync::Arc<App>>,
    pages: Vec<PageRef>,
    probes: Vec<Probe>,
}

/// Where a method rule is asked: a path its glob covers, with each method it names.
struct Probe {
    glob: String,
    path: String,
    methods: Vec<Method>,
}

/// Every page of either side's app (shell paths, the new app's first), parameter pages left out:
/// they carry no rule of their own, so they change with their parent.
fn all_pages(new: Option<&App>, old: Option<&App>) -> Vec<PageRef> {
    fn walk(nodes: &[NavNode], base: &str, out: &mut Vec<PageRef>) {
        for node in nodes.iter().filter(|node| !node.is_parameter()) {
            let path = format!("{base}/{}", node.path);
            if !out.iter().any(|page| page.path == path) {
                out.push(PageRef {
                    path: path.clone(),
                    label: node.label.fallback().to_owned(),
                });
            }
            walk(&node.children, &path, out);
        }
    }
    let mut pages = Vec::new();
    for app in [new, old].into_iter().flatten() {
        walk(&app.nodes, &format!("/home/{}", app.id), &mut pages);
    }
    pages
}

/// The method rules of either side's app, one probe per glob (methods merged).
fn probes(old: Option<&App>, new: Option<&App>) -> Vec<Probe> {
    let mut probes: Vec<Probe> = Vec::new();
    for app in [new, old].into_iter().flatten() {
        for rule in &app.policy.requests {
            let glob = rule.path.as_str();
            let methods: Vec<Method> = if rule.methods.is_empty() {
                config::REQUEST_METHODS.to_vec()
            } else {
                rule.methods.clone()
            };
            match probes.iter_mut().find(|probe| probe.glob == glob) {
                Some(probe) => {
                    for method in methods {
                        if !probe.methods.contains(&method) {
                            probe.methods.push(method);
                        }
                    }
                }
                None => probes.push(Probe {
                    glob: glob.to_owned(),
                    path: probe_path(glob),
                    methods,
                }),
            }
        }
    }
    for probe in &mut probes {
        probe
            .methods
            .sort_by_key(|m| config::REQUEST_METHODS.iter().position(|known| known == m));
    }
    probes
}

/// A path the glob covers: `**` as two segments, `*` within a segment as `x`.
fn probe_path(glob: &str) -> String {
    let segments: Vec<String> = glob
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| match segment {
            "**" => "x/x".to_owned(),
            other => other.replace('*', "x"),
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// What one set of groups meets on one side: per app id, its verdict.
#[derive(Default)]
struct Reach {
    apps: BTreeMap<String, AppReach>,
}

struct AppReach {
    visible: bool,
    needs: Vec<NeedOut>,
    /// Pages the navigation lists for the app (all of them, visible or not, under visible parents).
    pages: BTreeMap<String, (bool, Vec<NeedOut>)>,
    /// `(probe index, method)` → allowed, needs; asked only when the app is visible.
    probes: BTreeMap<(usize, usize), (bool, Vec<NeedOut>)>,
}

fn needs_out(needs: &[rbac::Need<'_>]) -> Vec<NeedOut> {
    needs
        .iter()
        .map(|need| NeedOut {
            role: need.role.to_owned(),
            groups: need.groups.to_vec(),
        })
        .collect()
}

/// Asks `explain` (apps and pages) and `rbac::decide` (method rules) what `groups` reach.
fn reach(tenant: Option<&Tenant>, groups: &[String], apps: &[AppInfo]) -> Reach {
    let Some(tenant) = tenant else {
        return Reach::default();
    };
    let explanation = crate::explain::explain(tenant, None, groups, None);
    let roles = tenant.roles.roles_for(groups);
    let mut reach = Reach::default();
    for verdict in &explanation.apps {
        let mut app_reach = AppReach {
            visible: verdict.visible,
            needs: needs_out(&verdict.needs),
            pages: verdict
                .pages
                .iter()
                .map(|page| (page.path.clone(), (page.visible, needs_out(&page.needs))))
                .collect(),
            probes: BTreeMap::new(),
        };
        let app = tenant.apps.iter().find(|app| app.id == verdict.id);
        let info = apps.iter().find(|info| info.id == verdict.id);
        if let (true, Some(app), Some(info)) = (verdict.visible, app, info) {
            for (index, probe) in info.probes.iter().enumerate() {
                for method in &probe.methods {
                    let m = config::REQUEST_METHODS
                        .iter()
                        .position(|known| known == method)
                        .unwrap_or(0);
                    let answer = match rbac::decide(&roles, &app.policy, method, &probe.path) {
                        Decision::Allow => (true, Vec::new()),
                        Decision::Deny { needed } => {
                            (false, needs_out(&tenant.roles.needs(&needed)))
                        }
                    };
                    app_reach.probes.insert((index, m), answer);
                }
            }
        }
        reach.apps.insert(verdict.id.to_owned(), app_reach);
    }
    reach
}

/// Who is asked: every single group of either role map, then combinations (see the module doc).
fn subjects(old: Option<&Tenant>, new: Option<&Tenant>) -> (Vec<Vec<String>>, bool) {
    let mut singles: BTreeSet<String> = BTreeSet::new();
    for tenant in [old, new].into_iter().flatten() {
        for (_, groups) in &tenant.roles.roles {
            singles.extend(groups.iter().cloned());
        }
    }
    let mut combinations: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut truncated = false;
    for tenant in [old, new].into_iter().flatten() {
        for app in &tenant.apps {
            for chain in chains(app) {
                truncated |= !combine(tenant, &chain, &mut combinations);
            }
        }
    }
    let mut all: Vec<Vec<String>> = singles.into_iter().map(|group| vec![group]).collect();
    let mut combinations: Vec<Vec<String>> = combinations.into_iter().collect();
    combinations.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    all.extend(combinations);
    (all, truncated)
}

/// The chains of rules a path of the app needs all of: each page's (with the app's and those of the
/// pages above it), and each method rule's with the app's.
fn chains(app: &App) -> Vec<Vec<&AccessRule>> {
    fn walk<'a>(
        nodes: &'a [NavNode],
        above: &[&'a AccessRule],
        out: &mut Vec<Vec<&'a AccessRule>>,
    ) {
        for node in nodes {
            let mut chain = above.to_vec();
            if let Some(rule) = &node.access {
                chain.push(rule);
                out.push(chain.clone());
            }
            walk(&node.children, &chain, out);
        }
    }
    let mut chains = Vec::new();
    walk(&app.nodes, &[&app.access], &mut chains);
    for rule in &app.policy.requests {
        chains.push(vec![&app.access, &rule.rule]);
    }
    chains
}

/// Adds each set of groups holding one granting group per rule of `chain` (sets of two or more);
/// false when [`MAX_COMBINATIONS`] stopped it.
fn combine(tenant: &Tenant, chain: &[&AccessRule], out: &mut BTreeSet<Vec<String>>) -> bool {
    let mut sets: Vec<BTreeSet<String>> = vec![BTreeSet::new()];
    for rule in chain {
        let granting: BTreeSet<&String> = tenant
            .roles
            .roles
            .iter()
            .filter(|(role, _)| rule.roles.contains(role))
            .flat_map(|(_, groups)| groups)
            .collect();
        let mut next = Vec::new();
        for set in &sets {
            for group in &granting {
                let mut grown = set.clone();
                grown.insert((*group).clone());
                if !next.contains(&grown) {
                    next.push(grown);
                }
                if next.len() > MAX_COMBINATIONS {
                    return false;
                }
            }
        }
        sets = next;
    }
    for set in sets.into_iter().filter(|set| set.len() > 1) {
        if out.len() >= MAX_COMBINATIONS && !out.contains(&set.iter().cloned().collect::<Vec<_>>())
        {
            return false;
        }
        out.insert(set.into_iter().collect());
    }
    true
}

/// One thing a subject gains or loses, before the wording.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    App(usize),
    Page(usize, usize),
    Probe(usize, usize, usize),
}

struct Finding {
    subject: usize,
    target: Target,
    gain: bool,
    needs: Vec<NeedOut>,
}

impl Sides<'_> {
    fn access_changes(&self, apps: &[AppInfo], out: &mut Vec<Change>) {
        let (subjects, truncated) = subjects(self.old, self.new);
        let mut findings = Vec::new();
        for (index, groups) in subjects.iter().enumerate() {
            let before = reach(self.old, groups, apps);
            let after = reach(self.new, groups, apps);
            compare(index, &before, &after, apps, &mut findings);
        }
        // Smallest sets only: a combination whose part shows the same change says nothing more.
        let is_subset = |small: &[String], big: &[String]| {
            small.len() < big.len() && small.iter().all(|group| big.contains(group))
        };
        let kept: Vec<&Finding> = findings
            .iter()
            .filter(|finding| {
                !findings.iter().any(|other| {
                    other.target == finding.target
                        && other.gain == finding.gain
                        && is_subset(&subjects[other.subject], &subjects[finding.subject])
                })
            })
            .collect();
        for (index, groups) in subjects.iter().enumerate() {
            let mine: Vec<&Finding> = kept
                .iter()
                .copied()
                .filter(|finding| finding.subject == index)
                .collect();
            self.word(groups, &mine, apps, out);
        }
        if truncated {
            let what = format!(
                "more than {MAX_COMBINATIONS} combinations of groups guard pages and rules here; only single groups and the first {MAX_COMBINATIONS} combinations were compared"
            );
            out.push(Change::new(Kind::Note, Level::Notice, what));
        }
    }
}

/// What changes for one subject between `before` and `after`: every app, page and method rule
/// whose verdict differs, also those inside an app that comes or goes as a whole (the wording folds
/// them in), so that a combination is compared with its parts thing by thing.
fn compare(
    subject: usize,
    before: &Reach,
    after: &Reach,
    apps: &[AppInfo],
    out: &mut Vec<Finding>,
) {
    fn visible(reach: Option<&AppReach>) -> Option<&AppReach> {
        reach.filter(|reach| reach.visible)
    }
    for (a, app) in apps.iter().enumerate() {
        let old = visible(before.apps.get(&app.id));
        let new = visible(after.apps.get(&app.id));
        let mut found = |target, was: bool, is: bool, needs: Vec<NeedOut>| {
            if was != is {
                let needs = if is { Vec::new() } else { needs };
                out.push(Finding {
                    subject,
                    target,
                    gain: is,
                    needs,
                });
            }
        };
        let app_needs = after
            .apps
            .get(&app.id)
            .map(|reach| reach.needs.clone())
            .unwrap_or_default();
        found(Target::App(a), old.is_some(), new.is_some(), app_needs);
        for (p, page) in app.pages.iter().enumerate() {
            let was = old.is_some_and(|old| old.pages.get(&page.path).is_some_and(|(v, _)| *v));
            let (is, needs) = new
                .and_then(|new| new.pages.get(&page.path))
                .map_or((false, Vec::new()), |(v, needs)| (*v, needs.clone()));
            found(Target::Page(a, p), was, is, needs);
        }
        let keys: BTreeSet<&(usize, usize)> = old
            .iter()
            .chain(new.iter())
            .flat_map(|reach| reach.probes.keys())
            .collect();
        for key in keys {
            let was = old.is_some_and(|old| old.probes.get(key).is_some_and(|(v, _)| *v));
            let (is, needs) = new
                .and_then(|new| new.probes.get(key))
                .map_or((false, Vec::new()), |(v, needs)| (*v, needs.clone()));
            found(Target::Probe(a, key.0, key.1), was, is, needs);
        }
    }
}

/// How a subject is named in a line: `group a gains`, `groups a and b together gain`.
struct Voice<'s> {
    groups: &'s [String],
    who: String,
}

impl Voice<'_> {
    fn says(&self, gain: bool) -> String {
        let verb = match (self.groups.len() == 1, gain) {
            (true, true) => "gains",
            (true, false) => "loses",
            (false, true) => "gain",
            (false, false) => "lose",
        };
        format!("{} {verb}", self.who)
    }
}

fn kind_and_level(gain: bool) -> (Kind, Level) {
    if gain {
        (Kind::Gains, Level::Notice)
    } else {
        (Kind::Loses, Level::Warning)
    }
}

impl Sides<'_> {
    /// Words for one subject's findings: an app with the pages it brings, a page (its sub-pages
    /// folded in), method rules grouped by path.
    fn word(
        &self,
        groups: &[String],
        findings: &[&Finding],
        apps: &[AppInfo],
        out: &mut Vec<Change>,
    ) {
        let voice = Voice {
            groups,
            who: match groups {
                [one] => format!("group {one}"),
                more => format!("groups {} together", and_list(more)),
            },
        };
        let mut sorted: Vec<&Finding> = findings.to_vec();
        sorted.sort_by(|a, b| a.target.cmp(&b.target).then(b.gain.cmp(&a.gain)));
        let mut said_probes: BTreeSet<(usize, usize, bool)> = BTreeSet::new();
        for finding in &sorted {
            let gain = finding.gain;
            // Pages and rules of an app that comes or goes as a whole go with it.
            let whole_app = |a: usize| {
                sorted
                    .iter()
                    .any(|other| other.target == Target::App(a) && other.gain == gain)
            };
            if let Target::Page(a, _) | Target::Probe(a, ..) = finding.target {
                if whole_app(a) {
                    continue;
                }
            }
            let change = match finding.target {
                Target::App(a) => Some(self.app_change(&voice, finding, &apps[a])),
                Target::Page(a, p) => self.page_change(&voice, &sorted, finding, &apps[a], (a, p)),
                Target::Probe(a, probe, _) => {
                    if !said_probes.insert((a, probe, gain)) {
                        continue;
                    }
                    self.probe_change(&voice, &sorted, finding, &apps[a], probe)
                }
            };
            if let Some(mut change) = change {
                change.groups = groups.to_vec();
                out.push(change);
            }
        }
    }

    /// An app gained (with the pages it shows) or lost (with what it now needs).
    fn app_change(&self, voice: &Voice<'_>, finding: &Finding, app: &AppInfo) -> Change {
        let gain = finding.gain;
        let (kind, level) = kind_and_level(gain);
        let side = if gain { self.new } else { self.old };
        let (pages, closed) = self.pages_of(voice.groups, app, side);
        let mut what = format!("{} app \"{}\" ({})", voice.says(gain), app.label, app.id);
        let listed = |pages: &[PageRef]| {
            let labels: Vec<String> = pages
                .iter()
                .map(|page| format!("\"{}\"", page.label))
                .collect();
            let word = if pages.len() == 1 { "page" } else { "pages" };
            format!("{word} {}", labels.join(", "))
        };
        if gain && !pages.is_empty() {
            let _ = write!(what, ", {}", listed(&pages));
        }
        // What the app keeps from them, so that a reviewer does not read "gains the app" as "all of it".
        if gain && !closed.is_empty() {
            let stays = if closed.len() == 1 { "stays" } else { "stay" };
            let _ = write!(what, "; {} {stays} closed", listed(&closed));
        }
        if !gain {
            what.push_str(&reason(&finding.needs, app.new.is_none(), "app"));
        }
        // An app that existed, now open to more groups: widening.
        let level = if gain && app.old.is_some() {
            Level::Warning
        } else {
            level
        };
        let positions = &self.new_side.positions;
        let spot = positions
            .app(self.id, &app.id)
            .or_else(|| positions.tenant(self.id));
        let mut change = Change::new(kind, level, what).app(app).at(spot);
        change.pages = pages;
        change.needs = finding.needs.clone();
        change
    }

    /// A page gained or lost inside an app seen on both sides; `None` when a page above it changed
    /// the same way (it is listed there).
    fn page_change(
        &self,
        voice: &Voice<'_>,
        sorted: &[&Finding],
        finding: &Finding,
        app: &AppInfo,
        (a, p): (usize, usize),
    ) -> Option<Change> {
        let gain = finding.gain;
        let page = &app.pages[p];
        let same_way_below = |upper: &str, lower: &str| lower.starts_with(&format!("{upper}/"));
        let related = |other: &&&Finding| match other.target {
            Target::Page(oa, op) if oa == a && other.gain == gain => Some(&app.pages[op]),
            _ => None,
        };
        let others: Vec<&PageRef> = sorted.iter().filter_map(|o| related(&o)).collect();
        if others
            .iter()
            .any(|other| same_way_below(&other.path, &page.path))
        {
            return None;
        }
        let below: Vec<PageRef> = others
            .iter()
            .filter(|other| same_way_below(&page.path, &other.path))
            .map(|other| (*other).clone())
            .collect();
        let mut what = format!(
            "{} page \"{}\" ({})",
            voice.says(gain),
            page.label,
            page.path
        );
        if !gain {
            let gone = !self.page_exists(app.new.as_deref(), &page.path);
            what.push_str(&reason(&finding.needs, gone, "page"));
        }
        let (kind, level) = kind_and_level(gain);
        // A page that existed, now open to more groups: widening.
        let existed = self.page_exists(app.old.as_deref(), &page.path);
        let level = if gain && existed {
            Level::Warning
        } else {
            level
        };
        let positions = &self.new_side.positions;
        let spot = positions
            .page(self.id, &app.id, &page.path)
            .or_else(|| positions.app(self.id, &app.id));
        let mut change = Change::new(kind, level, what).app(app).at(spot);
        change.page = Some(page.path.clone());
        change.page_label = Some(page.label.clone());
        change.pages = below;
        change.needs = finding.needs.clone();
        Some(change)
    }

    /// One line for a method rule's path: the methods that changed the same way for the subject.
    fn probe_change(
        &self,
        voice: &Voice<'_>,
        sorted: &[&Finding],
        finding: &Finding,
        app: &AppInfo,
        probe: usize,
    ) -> Option<Change> {
        let Target::Probe(a, _, _) = finding.target else {
            return None;
        };
        let gain = finding.gain;
        let info = &app.probes[probe];
        // A page above the probed path that changed the same way says it already.
        let under_page = sorted.iter().any(|other| match other.target {
            Target::Page(oa, op) if oa == a && other.gain == gain => {
                let view = app.pages[op]
                    .path
                    .trim_start_matches(&format!("/home/{}", app.id));
                info.path == view || info.path.starts_with(&format!("{view}/"))
            }
            _ => false,
        });
        if under_page {
            return None;
        }
        let methods: Vec<String> = sorted
            .iter()
            .filter_map(|other| match other.target {
                Target::Probe(oa, op, m) if oa == a && op == probe && other.gain == gain => {
                    config::REQUEST_METHODS.get(m).map(|m| m.to_string())
                }
                _ => None,
            })
            .collect();
        let every = methods.len() == config::REQUEST_METHODS.len();
        let method_words = if every {
            "any method".to_owned()
        } else {
            methods.join(", ")
        };
        let path = format!("/apps/{}{}", app.id, info.glob);
        let mut what = format!("{} {method_words} on {path}", voice.says(gain));
        if !gain {
            what.push_str(&reason(&finding.needs, false, "rule"));
        }
        let spot = self
            .new_side
            .positions
            .rule(self.id, &app.id, &info.glob)
            .or_else(|| self.new_side.positions.app(self.id, &app.id));
        let kind = if gain { Kind::Gains } else { Kind::Loses };
        // Any change to what an existing app lets through is for a careful look.
        let mut change = Change::new(kind, Level::Warning, what).app(app).at(spot);
        change.methods = methods;
        change.path = Some(path);
        change.needs = finding.needs.clone();
        Some(change)
    }

    /// The pages of `app` that `groups` see on one side, as the navigation lists them.
    /// The app's pages these groups see, and those that stay closed to them, by `explain`'s verdicts.
    fn pages_of(
        &self,
        groups: &[String],
        app: &AppInfo,
        tenant: Option<&Tenant>,
    ) -> (Vec<PageRef>, Vec<PageRef>) {
        let Some(tenant) = tenant else {
            return (Vec::new(), Vec::new());
        };
        let explanation = crate::explain::explain(tenant, None, groups, None);
        explanation
            .apps
            .iter()
            .filter(|verdict| verdict.id == app.id)
            .flat_map(|verdict| &verdict.pages)
            .filter(|page| app.pages.iter().any(|known| known.path == page.path))
            .map(|page| {
                let seen = PageRef {
                    path: page.path.clone(),
                    label: page.label.to_owned(),
                };
                (page.visible, seen)
            })
            .fold(
                (Vec::new(), Vec::new()),
                |(mut open, mut closed), (visible, page)| {
                    if visible {
                        open.push(page)
                    } else {
                        closed.push(page)
                    }
                    (open, closed)
                },
            )
    }

    fn page_exists(&self, app: Option<&App>, path: &str) -> bool {
        all_pages(app, None).iter().any(|page| page.path == path)
    }
}

/// ` (now needs role a or b: groups x, y)`, or ` (app removed)`.
fn reason(needs: &[NeedOut], gone: bool, thing: &str) -> String {
    if gone {
        return format!(" ({thing} removed)");
    }
    if needs.is_empty() {
        return String::new();
    }
    let roles: Vec<&str> = needs.iter().map(|need| need.role.as_str()).collect();
    let mut groups: Vec<&str> = Vec::new();
    for group in needs.iter().flat_map(|need| &need.groups) {
        if !groups.contains(&group.as_str()) {
            groups.push(group);
        }
    }
    let roles = roles.join(" or ");
    match groups.as_slice() {
        [] => format!(" (now needs role {roles}, which no group grants)"),
        [one] => format!(" (now needs role {roles}: group {one})"),
        more => format!(" (now needs role {roles}: groups {})", more.join(", ")),
    }
}

fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Output

impl Review {
    /// Every change, tenant by tenant (a blank line between), then "No change in who can reach what."
    /// when nobody gains or loses anything.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} compared with {}:\n", self.new, self.old);
        for tenant in &self.tenants {
            out.push('\n');
            for change in &tenant.changes {
                out.push_str(&change.text);
                out.push('\n');
            }
        }
        if !self.access_changed {
            if !self.tenants.is_empty() {
                out.push('\n');
            }
            out.push_str("No change in who can reach what.\n");
        }
        out
    }

    /// GitHub Actions workflow commands: one `::notice` or `::warning` per change, with the file and
    /// line of what changed in the new config where known.
    pub fn to_github_annotations(&self) -> String {
        let mut out = String::new();
        for tenant in &self.tenants {
            for change in &tenant.changes {
                let level = match change.level {
                    Level::Notice => "notice",
                    Level::Warning => "warning",
                };
                let mut properties = Vec::new();
                if let (Some(file), Some(line)) = (&change.file, change.line) {
                    properties.push(format!("file={}", escape_property(file)));
                    properties.push(format!("line={line}"));
                }
                let title = format!("portico: {} ({})", change.kind.title(), tenant.id);
                properties.push(format!("title={}", escape_property(&title)));
                let _ = writeln!(
                    out,
                    "::{level} {}::{}",
                    properties.join(","),
                    escape_data(&change.text)
                );
            }
        }
        if !self.access_changed {
            out.push_str("::notice title=portico::No change in who can reach what.\n");
        }
        out
    }

    /// The step summary: a Markdown section per tenant.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "## Config change: who gains and who loses what\n\n`{}` compared with `{}`.\n",
            markdown_code(&self.new),
            markdown_code(&self.old)
        );
        for tenant in &self.tenants {
            let _ = write!(out, "\n### Tenant `{}`\n\n", markdown_code(&tenant.id));
            for change in &tenant.changes {
                let mark = match change.level {
                    Level::Warning => "⚠️ ",
                    Level::Notice => "",
                };
                let place = match (&change.file, change.line) {
                    (Some(file), Some(line)) => format!(" (`{}:{line}`)", markdown_code(file)),
                    _ => String::new(),
                };
                let _ = writeln!(out, "- {mark}{}{place}", escape_markdown(&change.what));
            }
        }
        if !self.access_changed {
            out.push_str("\nNo change in who can reach what.\n");
        }
        out
    }

    /// The report as JSON (the shape in the module doc).
    pub fn to_json(&self) -> Result<String, DiffError> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// Appends the Markdown summary to `path` (`$GITHUB_STEP_SUMMARY`; a step's summary file is
    /// written to by each command in turn, so it is appended to, never replaced).
    pub fn append_summary(&self, path: &Path) -> Result<(), DiffError> {
        use std::io::Write;
        let summary = |source| DiffError::Summary {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(summary)?;
        file.write_all(self.to_markdown().as_bytes())
            .map_err(summary)
    }
}

/// A workflow command's message: `%`, CR and LF escaped, as GitHub's toolkit does.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as data, and also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text that Markdown shows as written: its punctuation backslash-escaped, `<` and `&` as entities.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Text inside a code span: a backtick cannot be escaped there, so it is replaced.
fn markdown_code(text: &str) -> String {
    text.replace('`', "'").replace(['\r', '\n'], " ")
}

// ---------------------------------------------------------------------------------------------
// Positions

/// A place in a config file, for annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spot {
    file: String,
    line: usize,
}

/// The new config's files as YAML trees with lines, to find where an app, page, rule or role is
/// written. Config has accepted these files already; one that does not parse here has no positions.
struct Positions {
    /// The main file's directory, as given and resolved (static paths are compared relative to it).
    base_dir: Vec<PathBuf>,
    base: PathBuf,
    main: Option<Doc>,
    app_files: Vec<Doc>,
    globbed: Vec<(String, Vec<PathBuf>)>,
}

struct Doc {
    path: PathBuf,
    file: String,
    root: YNode,
}

impl Positions {
    fn new(
        main: &Path,
        base: &Path,
        texts: Vec<(PathBuf, String)>,
        globbed: Vec<(String, Vec<PathBuf>)>,
        source: &dyn Source,
    ) -> Positions {
        let mut base_dir = vec![base.to_path_buf()];
        if let Ok(resolved) = source.canonicalize(base) {
            base_dir.push(resolved);
        }
        let mut docs: Vec<Doc> = texts
            .into_iter()
            .filter_map(|(path, text)| {
                let root = parse_yaml(&text)?;
                Some(Doc {
                    file: display(&path),
                    path,
                    root,
                })
            })
            .collect();
        let main = docs
            .iter()
            .position(|doc| doc.path == main)
            .map(|index| docs.remove(index));
        Positions {
            base_dir,
            base: base.to_path_buf(),
            main,
            app_files: docs,
            globbed,
        }
    }

    fn spot(doc: &Doc, node: &YNode) -> Spot {
        Spot {
            file: doc.file.clone(),
            line: node.line,
        }
    }

    fn tenants_key(&self) -> Option<Spot> {
        let main = self.main.as_ref()?;
        let (key, _) = main.root.entry("tenants")?;
        Some(Self::spot(main, key))
    }

    fn tenant(&self, tenant: &str) -> Option<Spot> {
        let main = self.main.as_ref()?;
        let (key, _) = main.root.get("tenants")?.entry(tenant)?;
        Some(Self::spot(main, key))
    }

    fn role(&self, tenant: &str, role: &str) -> Option<Spot> {
        let main = self.main.as_ref()?;
        let roles = main.root.get("tenants")?.get(tenant)?.get("roles")?;
        let (key, _) = roles.entry(role)?;
        Some(Self::spot(main, key))
    }

    /// The app's mapping: in the tenant's `apps`, an app file its `apps_from` found, any app file,
    /// then `shared_apps`.
    fn app_node(&self, tenant: &str, id: &str) -> Option<(&Doc, &YNode)> {
        let main = self.main.as_ref();
        let tenant_node = main.and_then(|main| main.root.get("tenants")?.get(tenant));
        let with_id = |node: &&YNode| node.get("id").and_then(YNode::text) == Some(id);
        if let (Some(main), Some(tenant_node)) = (main, tenant_node) {
            if let Some(app) = tenant_node
                .get("apps")
                .and_then(|apps| apps.items().iter().find(with_id))
            {
                return Some((main, app));
            }
            let patterns: Vec<String> = match tenant_node.get("apps_from") {
                Some(node) if node.text().is_some() => {
                    node.text().map(str::to_owned).into_iter().collect()
                }
                Some(node) => node
                    .items()
                    .iter()
                    .filter_map(YNode::text)
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            };
            for pattern in patterns {
                let full = self.base.join(&pattern).to_string_lossy().into_owned();
                let found = self
                    .globbed
                    .iter()
                    .filter(|(searched, _)| *searched == full);
                for path in found.flat_map(|(_, paths)| paths) {
                    let doc = self.app_files.iter().find(|doc| doc.path == *path);
                    if let Some(doc) = doc.filter(|doc| with_id(&&doc.root)) {
                        return Some((doc, &doc.root));
                    }
                }
            }
        }
        if let Some(doc) = self.app_files.iter().find(|doc| with_id(&&doc.root)) {
            return Some((doc, &doc.root));
        }
        let main = main?;
        let shared = main.root.get("shared_apps")?.items().iter().find(with_id)?;
        Some((main, shared))
    }

    fn app(&self, tenant: &str, id: &str) -> Option<Spot> {
        let (doc, app) = self.app_node(tenant, id)?;
        let id_node = app.get("id")?;
        Some(Self::spot(doc, id_node))
    }

    /// A page by its shell path (`/home/<app>/a/b`): the `path` of each node on the way.
    fn page(&self, tenant: &str, id: &str, shell_path: &str) -> Option<Spot> {
        let (doc, app) = self.app_node(tenant, id)?;
        let rest = shell_path.strip_prefix(&format!("/home/{id}/"))?;
        let mut level = app;
        let mut found = None;
        for segment in rest.split('/') {
            let node = level
                .get("nodes")?
                .items()
                .iter()
                .find(|node| node.get("path").and_then(YNode::text) == Some(segment))?;
            found = node.get("path");
            level = node;
        }
        Some(Self::spot(doc, found?))
    }

    fn rule(&self, tenant: &str, id: &str, glob: &str) -> Option<Spot> {
        let (doc, app) = self.app_node(tenant, id)?;
        let rule = app
            .get("rules")?
            .items()
            .iter()
            .find(|rule| rule.get("path").and_then(YNode::text) == Some(glob))?;
        Some(Self::spot(doc, rule.get("path")?))
    }
}

/// A YAML node with the line it starts on; what positions need of YAML, no more.
#[derive(Debug)]
struct YNode {
    value: YValue,
    line: usize,
}

#[derive(Debug)]
enum YValue {
    /// Aliases and what else positions never look into.
    Other,
    Scalar(String),
    Seq(Vec<YNode>),
    Map(Vec<(YNode, YNode)>),
}

impl YNode {
    fn entry(&self, key: &str) -> Option<(&YNode, &YNode)> {
        match &self.value {
            YValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.text() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&YNode> {
        self.entry(key).map(|(_, value)| value)
    }

    fn text(&self) -> Option<&str> {
        match &self.value {
            YValue::Scalar(text) => Some(text),
            _ => None,
        }
    }

    fn items(&self) -> &[YNode] {
        match &self.value {
            YValue::Seq(items) => items,
            _ => &[],
        }
    }
}

/// Parses a document the config loader has accepted (so its size, depth and aliases are bounded).
fn parse_yaml(text: &str) -> Option<YNode> {
    let mut builder = YBuilder::default();
    Parser::new_from_str(text).load(&mut builder, false).ok()?;
    builder.root
}

#[derive(Default)]
struct YBuilder {
    /// Open collections, each with a map's key waiting for its value.
    stack: Vec<(YNode, Option<YNode>)>,
    root: Option<YNode>,
}

impl YBuilder {
    fn push(&mut self, node: YNode) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some((parent, pending)) => match &mut parent.value {
                YValue::Seq(items) => items.push(node),
                YValue::Map(entries) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
                YValue::Other | YValue::Scalar(_) => {}
            },
        }
    }
}

impl MarkedEventReceiver for YBuilder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        let line = marker.line();
        match event {
            Event::Scalar(text, ..) => self.push(YNode {
                value: YValue::Scalar(text),
                line,
            }),
            Event::Alias(_) => self.push(YNode {
                value: YValue::Other,
                line,
            }),
            Event::SequenceStart(..) => self.stack.push((
                YNode {
                    value: YValue::Seq(Vec::new()),
                    line,
                },
                None,
            )),
            Event::MappingStart(..) => self.stack.push((
                YNode {
                    value: YValue::Map(Vec::new()),
                    line,
                },
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _)) = self.stack.pop() {
                    self.push(node);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemorySource;

    const MAIN: &str = "/etc/portico/portico.yaml";

    /// The old config of most tests: one tenant, three roles, an app with a guarded page and a
    /// method rule.
    const OLD: &str = "\
tenants:
  acme:
    hosts: [portal.acme.example]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [acme-eng] }] } }
    roles:
      developer: { groups: [acme-eng] }
      finops: { groups: [acme-finops] }
      platform-admin: { groups: [acme-platform] }
    apps:
      - id: cost-insights
        label: Cost Insights
        owner: team-finops
        access: { roles: [developer, finops] }
        upstream: http://127.0.0.1:9000
        rules:
          - { methods: [POST], path: /admin/*, roles: [finops] }
        nodes:
          - { path: overview, label: Overview, view: /overview }
          - { path: reports, label: Reports, view: /reports, access: { roles: [finops] } }
";

    fn side(text: &str) -> Side {
        let mut source = MemorySource::default();
        source.files.insert(PathBuf::from(MAIN), text.to_owned());
        match load_with(&source, Path::new(MAIN)) {
            Ok(side) => side,
            Err(error) => panic!("the test config does not load:\n{error}"),
        }
    }

    /// The report's lines for OLD changed by `edit` (each `(from, to)` replaced once).
    fn changes(edits: &[(&str, &str)]) -> Vec<String> {
        let mut new = OLD.to_owned();
        for (from, to) in edits {
            assert!(new.contains(from), "{from:?} is not in the config");
            new = new.replacen(from, to, 1);
        }
        lines(&diff(&side(OLD), &side(&new)))
    }

    fn lines(review: &Review) -> Vec<String> {
        review
            .tenants
            .iter()
            .flat_map(|tenant| tenant.changes.iter().map(|change| change.text.clone()))
            .collect()
    }

    #[test]
    fn a_group_added_to_an_apps_access_gains_it_with_the_pages_it_may_see() {
        let review = diff(
            &side(OLD),
            &side(&OLD.replace(
                "[developer, finops] }",
                "[developer, finops, platform-admin] }",
            )),
        );
        // Reports still needs finops, and so does POST on /admin/*: the new group gets neither.
        assert_eq!(
            lines(&review),
            [
                "acme: group acme-platform gains app \"Cost Insights\" (cost-insights), page \"Overview\"; page \"Reports\" stays closed"
            ],
            "{review:#?}"
        );
        let change = &review.tenants[0].changes[0];
        assert_eq!(change.kind, Kind::Gains);
        assert_eq!(change.level, Level::Warning, "an existing app widened");
        assert_eq!(
            (change.file.as_deref(), change.line),
            (Some(MAIN), Some(10)),
            "the app's id"
        );
        assert!(review.access_changed);
    }

    #[test]
    fn a_group_dropped_from_an_apps_access_loses_it_and_is_told_what_it_now_needs() {
        assert_eq!(
            changes(&[("[developer, finops] }", "[developer] }")]),
            [
                "acme: group acme-finops loses app \"Cost Insights\" (cost-insights) (now needs role developer: group acme-eng)"
            ]
        );
    }

    #[test]
    fn a_narrowed_page_rule_is_lost_by_one_group_and_gained_by_a_combination() {
        // Reports needs the app's role and platform-admin now: no single group has both, so the
        // gain is said for the pair that does.
        assert_eq!(
            changes(&[(
                "view: /reports, access: { roles: [finops] }",
                "view: /reports, access: { roles: [platform-admin] }"
            )]),
            [
                "acme: group acme-finops loses page \"Reports\" (/home/cost-insights/reports) (now needs role platform-admin: group acme-platform)",
                "acme: groups acme-eng and acme-platform together gain page \"Reports\" (/home/cost-insights/reports)",
            ]
        );
    }

    #[test]
    fn a_method_rule_change_says_who_may_now_send_what_where() {
        let found = changes(&[(
            "path: /admin/*, roles: [finops]",
            "path: /admin/*, roles: [platform-admin]",
        )]);
        assert_eq!(
            found,
            [
                "acme: group acme-finops loses POST on /apps/cost-insights/admin/* (now needs role platform-admin: group acme-platform)",
                "acme: groups acme-eng and acme-platform together gain POST on /apps/cost-insights/admin/*",
            ]
        );
        let review = diff(
            &side(OLD),
            &side(&OLD.replace(
                "roles: [finops] }\n        nodes",
                "roles: [platform-admin] }\n        nodes",
            )),
        );
        let lost = &review.tenants[0].changes[0];
        assert_eq!(lost.methods, ["POST"]);
        assert_eq!(lost.path.as_deref(), Some("/apps/cost-insights/admin/*"));
        assert_eq!(lost.line, Some(16), "the rule's line");
        assert_eq!(lost.needs[0].role, "platform-admin");
    }

    #[test]
    fn a_role_map_change_is_named_and_so_are_its_consequences() {
        assert_eq!(
            changes(&[(
                "finops: { groups: [acme-finops] }",
                "finops: { groups: [acme-finops, acme-controllers] }"
            )]),
            [
                "acme: role finops is now granted by groups acme-finops, acme-controllers (was group acme-finops)",
                "acme: group acme-controllers gains app \"Cost Insights\" (cost-insights), pages \"Overview\", \"Reports\"",
            ]
        );
        assert_eq!(
            changes(&[("      platform-admin: { groups: [acme-platform] }\n", "")]),
            ["acme: role platform-admin removed (was granted by group acme-platform)"],
            "a role nothing uses goes without a loss"
        );
    }

    #[test]
    fn a_removed_app_is_named_once_and_lost_by_everyone_who_had_it() {
        let without = OLD
            .split("    apps:\n")
            .next()
            .unwrap_or_default()
            .to_owned()
            + "    apps:\n      - { id: other, label: Other, access: { roles: [developer] }, upstream: http://127.0.0.1:9001 }\n";
        let review = diff(&side(OLD), &side(&without));
        assert_eq!(
            lines(&review),
            [
                "acme: app \"Other\" (other) added: http://127.0.0.1:9001, owned by nobody",
                "acme: app \"Cost Insights\" (cost-insights) removed",
                "acme: group acme-eng gains app \"Other\" (other)",
                "acme: group acme-eng loses app \"Cost Insights\" (cost-insights) (app removed)",
                "acme: group acme-finops loses app \"Cost Insights\" (cost-insights) (app removed)",
            ]
        );
        let removed = &review.tenants[0].changes[1];
        assert_eq!(removed.level, Level::Warning);
        assert_eq!(removed.line, Some(2), "what is gone points at its tenant");
    }

    #[test]
    fn upstream_and_owner_changes_are_named() {
        assert_eq!(
            changes(&[
                ("owner: team-finops", "owner: team-costs"),
                ("http://127.0.0.1:9000", "http://127.0.0.1:9100")
            ]),
            [
                "acme: app \"Cost Insights\" (cost-insights): upstream changes from http://127.0.0.1:9000 to http://127.0.0.1:9100",
                "acme: app \"Cost Insights\" (cost-insights): owner changes from team-finops to team-costs",
            ]
        );
    }

    #[test]
    fn an_added_tenant_lists_its_roles_apps_and_who_gains_them() {
        let new = format!(
            "{OLD}  globex:\n    hosts: [globex.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: gina, groups: [gx-staff] }}] }} }}\n    roles:\n      employee: {{ groups: [gx-staff] }}\n    apps:\n      - {{ id: ledger, label: Ledger, access: {{ roles: [employee] }}, static: embedded:demo }}\n"
        );
        let review = diff(&side(OLD), &side(&new));
        assert_eq!(
            lines(&review),
            [
                "globex: tenant added (hosts globex.example; 1 app(s))",
                "globex: role employee added, granted by group gx-staff",
                "globex: app \"Ledger\" (ledger) added: static embedded:demo, owned by nobody",
                "globex: group gx-staff gains app \"Ledger\" (ledger)",
            ]
        );
        assert!(review.tenants[0].added);
        assert_eq!(review.tenants[0].changes[0].line, Some(20));
        let back = diff(&side(&new), &side(OLD));
        assert_eq!(
            lines(&back),
            ["globex: tenant removed: its users lose all 1 of its apps"]
        );
    }

    #[test]
    fn no_change_says_so() {
        let review = diff(
            &side(OLD),
            &side(&OLD.replace("label: Overview", "label: Summary")),
        );
        assert!(review.tenants.is_empty(), "{review:#?}");
        assert!(!review.access_changed);
        assert!(
            review
                .to_text()
                .ends_with("No change in who can reach what.\n")
        );
        assert!(
            review
                .to_github_annotations()
                .contains("No change in who can reach what.")
        );
    }

    #[test]
    fn annotations_escape_what_github_reads_as_syntax() {
        assert_eq!(escape_data("50% a\r\nb: c,d"), "50%25 a%0D%0Ab: c,d");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            escape_markdown("/admin/** <x> |"),
            "/admin/\\*\\* &lt;x&gt; \\|"
        );
    }

    #[test]
    fn probes_lie_under_their_globs() {
        assert_eq!(probe_path("/admin/**"), "/admin/x/x");
        assert_eq!(probe_path("/reports/*.csv"), "/reports/x.csv");
        assert_eq!(probe_path("/**"), "/x/x");
    }
}
