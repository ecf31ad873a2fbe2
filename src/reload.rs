//! Reloading the config without a restart: SIGHUP, a watch on the config files, and the admin
//! listener's `POST /reload` all end in `Reloader::reload`.
//!
//! A reload compiles the main file (and every `apps_from` match) again. A config with any error is
//! refused whole and the running one stays (last-known-good); the refusal is logged with its
//! diagnostics and kept for `/config/status`. A good one is swapped into the `ArcSwap` every request
//! loads its snapshot from, so requests in flight finish on the config they started with; sessions,
//! the upstream pool and the listeners are not part of the snapshot and stay. Settings only read at
//! start (listeners, connection caps, signing keys, the upstream client's timeouts) keep their running
//! values in the new snapshot, and a reload that changes them says which need a restart. The OIDC
//! registry follows the tenants (`OidcRegistry::apply`). Reloads never run concurrently: one asked
//! for while another runs waits for it and then runs once for everyone who waited.
//!
//! A service: it never imports handlers or `AppState`, and never sees a request. The admin listener
//! calls it; `app` starts its signal and file-watch tasks.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use notify::{EventKind, RecursiveMode, Watcher};
use parking_lot::Mutex;
use serde::Serialize;

use crate::audit::{self, AuditEvent, ConfigChanges};
use crate::auth::oidc::OidcRegistry;
use crate::config::{self, Config, Diagnostic, Severity, SignIn, SourceFiles, Tenant};
use crate::telemetry::Metrics;

/// Events closer together than this are one change: editors write a file in several steps (truncate,
/// write, rename), and a deployment tool may replace several files at once.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The config the process started with.
    Start,
    /// SIGHUP.
    Signal,
    /// A config file changed on disk.
    File,
    /// `POST /reload` on the admin listener.
    Admin,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Signal => "signal",
            Trigger::File => "file",
            Trigger::Admin => "admin",
        }
    }
}

/// Where the running config came from, for a server started from a file (not the embedded demo).
#[derive(Debug, Clone)]
pub struct ConfigOrigin {
    /// The main config file, absolute (the watcher compares it with the paths events name).
    pub path: PathBuf,
    /// What the start read.
    pub files: SourceFiles,
    /// `--listen` and `--admin-listen`: they win over the file at every reload too.
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
}

/// Runs after every applied reload with the new snapshot. The TLS listener's certificate reload is
/// meant to be one (see `app::App::run`, "reload hooks").
pub type ReloadHook = Box<dyn Fn(&Config) + Send + Sync>;

/// One diagnostic as JSON: `file:line:column`, key path, message, hint.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticView {
    pub severity: &'static str,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl From<&Diagnostic> for DiagnosticView {
    fn from(d: &Diagnostic) -> Self {
        DiagnosticView {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            file: d.file.clone(),
            line: d.mark.line,
            column: d.mark.column,
            key: d.key_path.clone(),
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

/// What a reload changed. Apps are named `tenant/app`; the apps of an added or removed tenant are
/// listed as added or removed. "Changed" means the compiled value differs (see `diff`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    pub tenants_added: Vec<String>,
    pub tenants_removed: Vec<String>,
    pub tenants_changed: Vec<String>,
    pub apps_added: Vec<String>,
    pub apps_removed: Vec<String>,
    pub apps_changed: Vec<String>,
    /// Top-level sections whose reloadable values changed (`sessions`, `proxy`, `default_tenant`, ...).
    pub settings_changed: Vec<String>,
}

/// The result of one reload, as the admin listener answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new config serves from now on.
    Applied {
        generation: u64,
        changes: Changes,
        /// Start-only keys whose new value waits for a restart (the running value stays).
        restart_needed: Vec<&'static str>,
        warnings: Vec<DiagnosticView>,
    },
    /// A file event, but no config file's content changed: nothing was swapped.
    Unchanged { generation: u64 },
    /// The config has errors; the running one stays.
    Refused {
        generation: u64,
        diagnostics: Vec<DiagnosticView>,
    },
    /// Running the embedded demo config: there is no file to read again.
    NoSource,
}

/// The last reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub at: String,
    pub trigger: Trigger,
    /// `applied`, `unchanged` or `refused`.
    pub outcome: &'static str,
}

/// The last refused reload.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub at: String,
    pub trigger: Trigger,
    pub diagnostics: Vec<DiagnosticView>,
}

/// One config file of the running config.
#[derive(Debug, Clone, Serialize)]
pub struct FileView {
    pub path: String,
    pub sha256: String,
}

/// What `GET /config/status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// 1 at start, one more per applied reload.
    pub generation: u64,
    /// When the running config was loaded (RFC 3339, UTC).
    pub loaded_at: String,
    pub loaded_by: Trigger,
    /// The main file, or `<embedded default>`.
    pub source: String,
    /// Whether there is a file to reload from (not the embedded demo).
    pub reloadable: bool,
    /// The config files the running config was compiled from, with their SHA-256.
    pub files: Vec<FileView>,
    /// The directories watched for changes.
    pub watching: Vec<String>,
    /// Start-only keys whose value in the files differs from the running one.
    pub restart_needed: Vec<&'static str>,
    pub last_attempt: Option<Attempt>,
    /// The last refused reload, kept after later successes (compare with `last_attempt`).
    pub last_error: Option<LastError>,
    pub reloads_applied: u64,
    pub reloads_refused: u64,
}

/// Counters for metrics: read them at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct ReloadCounts {
    pub generation: u64,
    pub applied: u64,
    pub refused: u64,
}

/// The reload service: one per server.
pub struct Reloader {
    config: Arc<ArcSwap<Config>>,
    oidc: Arc<OidcRegistry>,
    /// The tenant listener's address: dev sign-in is refused off loopback, at a reload as at start.
    bound: SocketAddr,
    origin: Option<ConfigOrigin>,
    status: Mutex<Status>,
    /// Held while a reload runs; holds the number of requests the last run covered, and its outcome.
    gate: tokio::sync::Mutex<(u64, Option<Arc<ReloadOutcome>>)>,
    /// Reloads asked for so far.
    requested: AtomicU64,
    /// A signal or admin reload is waiting: the next run applies even if no file changed (a secret
    /// file or an environment variable may have).
    forced: AtomicBool,
    hooks: Mutex<Vec<ReloadHook>>,
    /// Where the audit events of reloads started by a signal or the file watch are counted (an admin
    /// reload runs inside the admin router's metrics scope already).
    metrics: std::sync::OnceLock<Arc<Metrics>>,
}

/// The mutable part of [`ConfigStatus`].
struct Status {
    generation: u64,
    loaded_at: SystemTime,
    loaded_by: Trigger,
    files: SourceFiles,
    watching: Vec<PathBuf>,
    restart_needed: Vec<&'static str>,
    last_attempt: Option<Attempt>,
    last_error: Option<LastError>,
    applied: u64,
    refused: u64,
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

impl Reloader {
    /// The service for the config in `config`; `origin` is `None` for the embedded demo.
    pub fn new(
        config: Arc<ArcSwap<Config>>,
        oidc: Arc<OidcRegistry>,
        bound: SocketAddr,
        origin: Option<ConfigOrigin>,
    ) -> Self {
        let files = origin
            .as_ref()
            .map(|origin| origin.files.clone())
            .unwrap_or_default();
        Reloader {
            config,
            oidc,
            bound,
            origin,
            status: Mutex::new(Status {
                generation: 1,
                loaded_at: SystemTime::now(),
                loaded_by: Trigger::Start,
                files,
                watching: Vec::new(),
                restart_needed: Vec::new(),
                last_attempt: None,
                last_error: None,
                applied: 0,
                refused: 0,
            }),
            gate: tokio::sync::Mutex::new((0, None)),
            requested: AtomicU64::new(0),
            forced: AtomicBool::new(false),
            hooks: Mutex::default(),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// Adds a hook that runs after every applied reload.
    pub fn add_hook(&self, hook: ReloadHook) {
        self.hooks.lock().push(hook);
    }

    /// What `/config/status` shows.
    pub fn status(&self) -> ConfigStatus {
        let status = self.status.lock();
        ConfigStatus {
            generation: status.generation,
            loaded_at: rfc3339(status.loaded_at),
            loaded_by: status.loaded_by,
            source: self.config.load().source.clone(),
            reloadable: self.origin.is_some(),
            files: status
                .files
                .files
                .iter()
                .map(|file| FileView {
                    path: file.path.display().to_string(),
                    sha256: file.sha256.clone(),
                })
                .collect(),
            watching: status
                .watching
                .iter()
                .map(|dir| dir.display().to_string())
                .collect(),
            restart_needed: status.restart_needed.clone(),
            last_attempt: status.last_attempt.clone(),
            last_error: status.last_error.clone(),
            reloads_applied: status.applied,
            reloads_refused: status.refused,
        }
    }

    /// The counters a metrics endpoint exports (`portico_config_generation`, reloads by outcome).
    pub fn counts(&self) -> ReloadCounts {
        let status = self.status.lock();
        ReloadCounts {
            generation: status.generation,
            applied: status.applied,
            refused: status.refused,
        }
    }

    /// Reads the config files again and swaps the result in, or refuses it. Never concurrent: a call
    /// made while a reload runs waits for it, then either shares the outcome of a reload that started
    /// after the call was made, or runs one (for itself and everyone else waiting).
    pub async fn reload(&self, trigger: Trigger) -> Arc<ReloadOutcome> {
        if trigger != Trigger::File {
            self.forced.store(true, Ordering::SeqCst);
        }
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut gate = self.gate.lock().await;
        if gate.0 >= ticket {
            if let Some(outcome) = &gate.1 {
                return outcome.clone();
            }
        }
        // Every request counted so far was made before this run reads a file: it covers them.
        let covers = self.requested.load(Ordering::SeqCst);
        let forced = self.forced.swap(false, Ordering::SeqCst);
        let outcome = Arc::new(self.run(trigger, forced).await);
        *gate = (covers, Some(outcome.clone()));
        outcome
    }

    /// One reload. Only a file event that no signal or admin request joined (`forced`) may end as
    /// `Unchanged` when no config file's content changed.
    async fn run(&self, trigger: Trigger, forced: bool) -> ReloadOutcome {
        let Some(origin) = &self.origin else {
            tracing::warn!(
                trigger = trigger.as_str(),
                "reload asked for, but portico runs the embedded demo config: there is no file to read again"
            );
            return ReloadOutcome::NoSource;
        };
        let path = origin.path.clone();
        // Compiling reads files and can take a few milliseconds: not on the async workers.
        let (result, files) =
            match tokio::task::spawn_blocking(move || config::load_file_traced(&path)).await {
                Ok(loaded) => loaded,
                Err(error) => {
                    let diagnostic = Diagnostic {
                        severity: Severity::Error,
                        file: origin.path.display().to_string(),
                        mark: config::Mark { line: 1, column: 1 },
                        key_path: String::new(),
                        message: format!("the config could not be compiled: {error}"),
                        hint: None,
                    };
                    return self.refuse(trigger, vec![diagnostic]);
                }
            };
        let loaded = match result {
            Ok(loaded) => loaded,
            Err(error) => return self.refuse(trigger, error.diagnostics),
        };
        if trigger == Trigger::File && !forced && files == self.status.lock().files {
            return self.unchanged(trigger);
        }
        let mut next = loaded.config;
        if let Some(listen) = origin.listen {
            next.server.listen = listen;
        }
        if let Some(admin_listen) = origin.admin_listen {
            next.server.admin_listen = Some(admin_listen);
        }
        if let Some(diagnostic) = self.dev_sign_in_refused(&next) {
            return self.refuse(trigger, vec![diagnostic]);
        }
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        let warnings = loaded.warnings.iter().map(DiagnosticView::from).collect();
        self.apply(trigger, next, files, warnings)
    }

    /// Swaps a good config in and reports what changed.
    fn apply(
        &self,
        trigger: Trigger,
        mut next: Config,
        files: SourceFiles,
        warnings: Vec<DiagnosticView>,
    ) -> ReloadOutcome {
        let running = self.config.load_full();
        let restart_needed = keep_start_only(&running, &mut next);
        let changes = diff(&running, &next);
        let next = Arc::new(next);
        self.config.store(next.clone());
        let rediscovering = self.oidc.apply(&next.tenants);
        for hook in self.hooks.lock().iter() {
            hook(&next);
        }
        let now = SystemTime::now();
        let generation = {
            let mut status = self.status.lock();
            status.generation += 1;
            status.applied += 1;
            status.loaded_at = now;
            status.loaded_by = trigger;
            status.files = files;
            status.restart_needed = restart_needed.clone();
            status.last_attempt = Some(Attempt {
                at: rfc3339(now),
                trigger,
                outcome: "applied",
            });
            status.generation
        };
        let joined = Joined::of(&changes, &restart_needed);
        audit::emit(AuditEvent::ConfigReloaded {
            trigger: trigger.as_str(),
            generation,
            changes: joined.as_changes(),
        });
        tracing::info!(
            trigger = trigger.as_str(),
            generation,
            rediscovering = rediscovering.len(),
            "config reloaded"
        );
        if !restart_needed.is_empty() {
            tracing::warn!(
                keys = %restart_needed.join(", "),
                "the reloaded config changes settings that only take effect at a restart; \
                 the running values stay until then"
            );
        }
        ReloadOutcome::Applied {
            generation,
            changes,
            restart_needed,
            warnings,
        }
    }

    fn refuse(&self, trigger: Trigger, diagnostics: Vec<Diagnostic>) -> ReloadOutcome {
        let now = SystemTime::now();
        let errors: Vec<&Diagnostic> = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        let report = diagnostics
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        tracing::error!(
            trigger = trigger.as_str(),
            errors = errors.len(),
            "config reload refused; the running config stays:\n{report}"
        );
        let views: Vec<DiagnosticView> = diagnostics.iter().map(DiagnosticView::from).collect();
        let generation = {
            let mut status = self.status.lock();
            status.refused += 1;
            status.last_attempt = Some(Attempt {
                at: rfc3339(now),
                trigger,
                outcome: "refused",
            });
            status.last_error = Some(LastError {
                at: rfc3339(now),
                trigger,
                diagnostics: views.clone(),
            });
            status.generation
        };
        let first = errors.first().map(ToString::to_string).unwrap_or_default();
        audit::emit(AuditEvent::ConfigReloadRefused {
            trigger: trigger.as_str(),
            generation,
            errors: errors.len(),
            reason: &first,
        });
        ReloadOutcome::Refused {
            generation,
            diagnostics: views,
        }
    }

    fn unchanged(&self, trigger: Trigger) -> ReloadOutcome {
        let mut status = self.status.lock();
        status.last_attempt = Some(Attempt {
            at: rfc3339(SystemTime::now()),
            trigger,
            outcome: "unchanged",
        });
        tracing::debug!("config files touched but not changed; nothing reloaded");
        ReloadOutcome::Unchanged {
            generation: status.generation,
        }
    }

    /// Dev sign-in is refused off loopback at a reload as at start (`app::App::build`).
    fn dev_sign_in_refused(&self, next: &Config) -> Option<Diagnostic> {
        if self.bound.ip().is_loopback() {
            return None;
        }
        let tenant = next
            .tenants
            .iter()
            .find(|tenant| matches!(tenant.sign_in, SignIn::Dev { .. }))?;
        Some(Diagnostic {
            severity: Severity::Error,
            file: next.source.clone(),
            mark: config::Mark { line: 1, column: 1 },
            key_path: format!("tenants.{}.auth.dev_sign_in", tenant.id),
            message: format!(
                "tenant `{}` uses dev sign-in, which lets anyone act as any user, but portico listens on {}, \
                 which is not a loopback address",
                tenant.id, self.bound
            ),
            hint: Some("configure a real sign-in method".into()),
        })
    }

    /// Counts the reloads this reloader starts itself (signal, file watch) into `metrics`.
    pub fn count_into(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Spawns one of the reloader's own tasks, inside the metrics scope when there is one.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        match self.metrics.get() {
            Some(metrics) => tokio::spawn(crate::telemetry::metrics::scope(metrics.clone(), task)),
            None => tokio::spawn(task),
        };
    }

    /// Reloads on every SIGHUP from now on (the signal's default would end the process). The handler
    /// is installed before this returns, so a SIGHUP right after start already reloads.
    pub fn reload_on_hangup(self: &Arc<Self>) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = signal(SignalKind::hangup())?;
            let reloader = self.clone();
            self.spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    reloader.reload(Trigger::Signal).await;
                }
            });
        }
        Ok(())
    }

    /// Watches the config files (their directories, so a file replaced by rename or newly created to
    /// match an `apps_from` glob is seen) and reloads after a burst of changes has settled. Nothing to
    /// watch for the embedded demo.
    pub fn watch_files(self: &Arc<Self>) {
        let Some(origin) = &self.origin else { return };
        let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let _ = sender.send(event);
        });
        let mut watcher = match watcher {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "cannot watch the config files; reload with SIGHUP or POST /reload");
                return;
            }
        };
        let main = origin.path.clone();
        let reloader = self.clone();
        self.spawn(async move {
            let mut watched = BTreeMap::new();
            reloader.rewatch(&mut watcher, &mut watched, &main);
            while let Some(event) = events.recv().await {
                if !reloader.concerns_config(&event, &main) {
                    continue;
                }
                // Wait for the burst to end: the reload then reads the files once, complete.
                loop {
                    match tokio::time::timeout(DEBOUNCE, events.recv()).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                reloader.reload(Trigger::File).await;
                // A reload may have added or removed `apps_from` patterns.
                reloader.rewatch(&mut watcher, &mut watched, &main);
            }
        });
    }

    /// Whether a file event is about a config file: the main file, a file the running config read,
    /// or a file an `apps_from` glob matches (also one just created). Kubernetes replaces mounted
    /// ConfigMaps by swapping a `..data` link, so `..`-prefixed names count too. Reads are not
    /// changes (and the reload's own reads would loop).
    fn concerns_config(&self, event: &notify::Result<notify::Event>, main: &Path) -> bool {
        let Ok(event) = event else {
            return true; // the watcher lost track (e.g. an overflow): read everything again
        };
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        let status = self.status.lock();
        let patterns: Vec<glob::Pattern> = status
            .files
            .patterns
            .iter()
            .filter_map(|pattern| glob::Pattern::new(pattern).ok())
            .collect();
        event.paths.iter().any(|path| {
            path == main
                || status.files.files.iter().any(|file| file.path == *path)
                || patterns.iter().any(|pattern| pattern.matches_path(path))
                || path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with(".."))
        })
    }

    /// Watches the directories the current config's files live in (adding and dropping as patterns
    /// change).
    fn rewatch(
        &self,
        watcher: &mut notify::RecommendedWatcher,
        watched: &mut BTreeMap<PathBuf, RecursiveMode>,
        main: &Path,
    ) {
        let wanted = {
            let status = self.status.lock();
            watch_dirs(main, &status.files)
        };
        for (dir, mode) in watched.clone() {
            if wanted.get(&dir) != Some(&mode) {
                let _ = watcher.unwatch(&dir);
                watched.remove(&dir);
            }
        }
        for (dir, mode) in wanted {
            if watched.contains_key(&dir) {
                continue;
            }
            match watcher.watch(&dir, mode) {
                Ok(()) => {
                    watched.insert(dir, mode);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot watch a config directory");
                }
            }
        }
        self.status.lock().watching = watched.keys().cloned().collect();
    }
}

/// The directories to watch: the main file's, and for each `apps_from` pattern the deepest directory
/// without a wildcard (recursively when the wildcard is in a directory name, e.g. `teams/*/app.yaml`).
fn watch_dirs(main: &Path, files: &SourceFiles) -> BTreeMap<PathBuf, RecursiveMode> {
    let mut dirs = BTreeMap::new();
    if let Some(dir) = main.parent() {
        dirs.insert(dir.to_path_buf(), RecursiveMode::NonRecursive);
    }
    for pattern in &files.patterns {
        let path = Path::new(pattern);
        let mut fixed = PathBuf::new();
        let mut rest = 0;
        for component in path.components() {
            let text = component.as_os_str().to_string_lossy();
            if rest > 0 || text.contains(['*', '?', '[']) {
                rest += 1;
            } else {
                fixed.push(component);
            }
        }
        let (dir, mode) = if rest == 0 {
            // No wildcard: one file; watch its directory.
            (
                fixed.parent().map(Path::to_path_buf).unwrap_or_default(),
                RecursiveMode::NonRecursive,
            )
        } else if rest == 1 {
            (fixed, RecursiveMode::NonRecursive)
        } else {
            (fixed, RecursiveMode::Recursive)
        };
        if dir.as_os_str().is_empty() || !dir.is_dir() {
            continue;
        }
        let entry = dirs.entry(dir).or_insert(mode);
        if mode == RecursiveMode::Recursive {
            *entry = RecursiveMode::Recursive;
        }
    }
    dirs
}

/// Start-only settings: what is read once when the server starts (listeners and their caps, signing
/// keys, the upstream client's timeouts). A reload keeps the running values in the new snapshot, so
/// nothing reads a value that is not in effect, and returns the names of those that differ.
/// A new start-only setting (e.g. the TLS listener's) is one more line here.
fn keep_start_only(running: &Config, next: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($name:literal, $section:ident . $field:ident) => {
            if next.$section.$field != running.$section.$field {
                changed.push($name);
                next.$section.$field = running.$section.$field.clone();
            }
        };
    }
    keep!("server.listen", server.listen);
    keep!("server.admin_listen", server.admin_listen);
    keep!("server.header_read_timeout", server.header_read_timeout);
    keep!("server.max_connections", server.max_connections);
    keep!("server.workers", server.workers);
    keep!(
        "server.max_connections_per_client",
        server.max_connections_per_client
    );
    // The listeners read these once, when they start (app/listener.rs `Limits`, app/mod.rs); the
    // certificate files themselves are re-read on every reload, only the list of them is fixed.
    keep!("server.keepalive_timeout", server.keepalive_timeout);
    keep!("server.body_read_timeout", server.body_read_timeout);
    keep!("server.shutdown_timeout", server.shutdown_timeout);
    keep!("server.redirect_listen", server.redirect_listen);
    keep!("server.tls", server.tls);
    keep!("proxy.connect_timeout", proxy.connect_timeout);
    keep!("proxy.idle_timeout", proxy.idle_timeout);
    // The session store is opened once (app/mod.rs): sessions cannot move between stores live.
    keep!("sessions.store", sessions.store);
    changed
}

/// What differs between two configs, compared on the compiled model. An app "changed" when its
/// compiled value (label, target, access policy, nodes, identity, cookies, ...) differs: the `Debug`
/// rendering is a canonical serialization of it (the model has no hash maps, and apps hold no
/// secrets). A tenant "changed" when anything but its apps differs, secrets compared by value.
pub(crate) fn diff(old: &Config, new: &Config) -> Changes {
    let mut changes = Changes::default();
    for tenant in &new.tenants {
        match old.tenant(tenant.id.as_str()) {
            None => {
                changes.tenants_added.push(tenant.id.to_string());
                for app in &tenant.apps {
                    changes.apps_added.push(format!("{}/{}", tenant.id, app.id));
                }
            }
            Some(before) => {
                if !same_tenant_settings(before, tenant) {
                    changes.tenants_changed.push(tenant.id.to_string());
                }
                diff_apps(before, tenant, &mut changes);
            }
        }
    }
    for tenant in &old.tenants {
        if new.tenant(tenant.id.as_str()).is_none() {
            changes.tenants_removed.push(tenant.id.to_string());
            for app in &tenant.apps {
                changes
                    .apps_removed
                    .push(format!("{}/{}", tenant.id, app.id));
            }
        }
    }
    let sections = [
        (
            "server",
            format!("{:?}", old.server),
            format!("{:?}", new.server),
        ),
        (
            "sessions",
            format!("{:?}", old.sessions),
            format!("{:?}", new.sessions),
        ),
        (
            "proxy",
            format!("{:?}", old.proxy),
            format!("{:?}", new.proxy),
        ),
        (
            "default_tenant",
            format!("{:?}", old.default_tenant),
            format!("{:?}", new.default_tenant),
        ),
    ];
    for (name, before, after) in sections {
        if before != after {
            changes.settings_changed.push(name.to_owned());
        }
    }
    changes
}

fn diff_apps(before: &Tenant, after: &Tenant, changes: &mut Changes) {
    let old: BTreeMap<&str, String> = before
        .apps
        .iter()
        .map(|app| (app.id.as_str(), format!("{app:?}")))
        .collect();
    let mut seen = BTreeSet::new();
    for app in &after.apps {
        let name = format!("{}/{}", after.id, app.id);
        seen.insert(app.id.as_str());
        match old.get(app.id.as_str()) {
            None => changes.apps_added.push(name),
            Some(rendered) if *rendered != format!("{app:?}") => changes.apps_changed.push(name),
            Some(_) => {}
        }
    }
    for app in &before.apps {
        if !seen.contains(app.id.as_str()) {
            changes
                .apps_removed
                .push(format!("{}/{}", before.id, app.id));
        }
    }
}

/// A tenant's settings other than its apps. Destructured, so a field added to `Tenant` must be
/// considered here. Secrets print redacted, so they are compared by value on their own.
fn same_tenant_settings(a: &Tenant, b: &Tenant) -> bool {
    fn rendered(tenant: &Tenant) -> (String, Vec<&config::Secret>) {
        let Tenant {
            id,
            hosts,
            public_origin,
            origin,
            assertion_issuer,
            branding,
            luigi,
            sign_in,
            roles,
            apps: _,
            backstage,
            request_access,
            health,
            previews,
            tokens,
        } = tenant;
        let mut secrets = Vec::new();
        if let SignIn::Oidc(settings) = sign_in {
            secrets.push(&settings.client_secret);
        }
        if let Some(config::BackstageSettings {
            identity: config::BackstageIdentity::Service(secret),
            ..
        }) = backstage
        {
            secrets.push(secret);
        }
        let text = format!(
            "{id:?}{hosts:?}{public_origin:?}{origin:?}{assertion_issuer:?}{branding:?}{luigi:?}{sign_in:?}{roles:?}{backstage:?}{request_access:?}{health:?}{previews:?}{tokens:?}"
        );
        (text, secrets)
    }
    rendered(a) == rendered(b)
}

/// The change lists joined for an audit line.
struct Joined {
    lists: [String; 8],
}

impl Joined {
    fn of(changes: &Changes, restart_needed: &[&'static str]) -> Joined {
        Joined {
            lists: [
                changes.tenants_added.join(","),
                changes.tenants_removed.join(","),
                changes.tenants_changed.join(","),
                changes.apps_added.join(","),
                changes.apps_removed.join(","),
                changes.apps_changed.join(","),
                changes.settings_changed.join(","),
                restart_needed.join(","),
            ],
        }
    }

    fn as_changes(&self) -> ConfigChanges<'_> {
        let [
            tenants_added,
            tenants_removed,
            tenants_changed,
            apps_added,
            apps_removed,
            apps_changed,
            settings_changed,
            restart_needed,
        ] = &self.lists;
        ConfigChanges {
            tenants_added,
            tenants_removed,
            tenants_changed,
            apps_added,
            apps_removed,
            apps_changed,
            settings_changed,
            restart_needed,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::config::MemorySource;

    const MAIN: &str = "\
tenants:
  acme:
    hosts: [portal.acme.example]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: a, label: A, upstream: http://127.0.0.1:9, access: { roles: [developer] } }
      - { id: b, label: B, upstream: http://127.0.0.1:9, access: { roles: [developer] } }
";

    fn compile(text: &str) -> Config {
        config::load_str(
            &MemorySource::default(),
            "portico.yaml",
            text,
            Path::new("/etc/portico"),
        )
        .unwrap()
        .config
    }

    #[test]
    fn diff_names_added_removed_and_changed_apps_and_tenants() {
        let old = compile(MAIN);
        assert_eq!(diff(&old, &compile(MAIN)), Changes::default());
        let text = MAIN
            .replace("label: B", "label: Bee")
            .replace("      - { id: a, label: A, upstream: http://127.0.0.1:9, access: { roles: [developer] } }\n", "")
            + "      - { id: c, upstream: http://127.0.0.1:9, access: { roles: [developer] } }\n"
            + "  globex:\n    hosts: [globex.example]\n    auth: { dev_sign_in: { users: [{ id: g }] } }\n    roles: {}\n";
        let changes = diff(&old, &compile(&text));
        assert_eq!(changes.tenants_added, ["globex"]);
        assert_eq!(changes.apps_added, ["acme/c"]);
        assert_eq!(changes.apps_removed, ["acme/a"]);
        assert_eq!(changes.apps_changed, ["acme/b"]);
        assert!(changes.tenants_changed.is_empty(), "{changes:?}");
        // A role granted by another group changes the tenant (not its apps).
        let changes = diff(
            &old,
            &compile(&MAIN.replace("groups: [eng] }\n", "groups: [eng, ops] }\n")),
        );
        assert_eq!(changes.tenants_changed, ["acme"]);
        assert!(changes.apps_changed.is_empty(), "{changes:?}");
        // An access rule is part of the app.
        let changes = diff(
            &old,
            &compile(&MAIN.replace(
                "label: A, upstream: http://127.0.0.1:9,",
                "label: A, upstream: http://127.0.0.1:9, rules: [{ path: /admin/**, roles: [developer] }],",
            )),
        );
        assert_eq!(changes.apps_changed, ["acme/a"]);
        let changes = diff(
            &old,
            &compile(&format!("sessions: {{ idle_timeout: 5m }}\n{MAIN}")),
        );
        assert_eq!(changes.settings_changed, ["sessions"]);
    }

    #[test]
    fn start_only_settings_keep_their_running_values_and_are_named() {
        let running = compile(MAIN);
        let mut next = compile(&format!(
            "server: {{ listen: 127.0.0.1:9999, max_connections: 7 }}\nproxy: {{ idle_timeout: 5s, response_timeout: 9s }}\n{MAIN}"
        ));
        let changed = keep_start_only(&running, &mut next);
        assert_eq!(
            changed,
            [
                "server.listen",
                "server.max_connections",
                "proxy.idle_timeout"
            ]
        );
        assert_eq!(next.server.listen, running.server.listen);
        assert_eq!(next.server.max_connections, running.server.max_connections);
        assert_eq!(next.proxy.idle_timeout, running.proxy.idle_timeout);
        // Read per request: takes effect.
        assert_eq!(next.proxy.response_timeout, Duration::from_secs(9));
    }

    #[test]
    fn watched_directories_follow_the_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("apps.d")).unwrap();
        std::fs::create_dir_all(root.join("teams/x")).unwrap();
        let files = SourceFiles {
            files: Vec::new(),
            patterns: vec![
                root.join("apps.d/*.yaml").display().to_string(),
                root.join("teams/*/app.yaml").display().to_string(),
                root.join("missing/*.yaml").display().to_string(),
            ],
        };
        let dirs = watch_dirs(&root.join("portico.yaml"), &files);
        let expected: BTreeMap<PathBuf, RecursiveMode> = [
            (root.to_path_buf(), RecursiveMode::NonRecursive),
            (root.join("apps.d"), RecursiveMode::NonRecursive),
            (root.join("teams"), RecursiveMode::Recursive),
        ]
        .into();
        assert_eq!(dirs, expected);
    }

    /// A reloader for `MAIN`, written in `dir`.
    fn reloader_in(dir: &Path) -> Arc<Reloader> {
        let path = dir.join("portico.yaml");
        std::fs::write(&path, MAIN).unwrap();
        let (loaded, files) = config::load_file_traced(&path);
        let config = Arc::new(ArcSwap::from_pointee(loaded.unwrap().config));
        let oidc = Arc::new(OidcRegistry::new(&[]).unwrap());
        let origin = ConfigOrigin {
            path,
            files,
            listen: None,
            admin_listen: None,
        };
        Arc::new(Reloader::new(
            config,
            oidc,
            "127.0.0.1:1".parse().unwrap(),
            Some(origin),
        ))
    }

    /// A file event that changed no file's content swaps nothing; a signal or admin reload always
    /// applies (a secret file or an environment variable may have changed).
    #[tokio::test]
    async fn only_file_events_skip_unchanged_files() {
        let dir = tempfile::tempdir().unwrap();
        let reloader = reloader_in(dir.path());
        let outcome = reloader.reload(Trigger::File).await;
        assert!(
            matches!(*outcome, ReloadOutcome::Unchanged { generation: 1 }),
            "{outcome:?}"
        );
        let outcome = reloader.reload(Trigger::Signal).await;
        assert!(
            matches!(*outcome, ReloadOutcome::Applied { generation: 2, .. }),
            "{outcome:?}"
        );
        std::fs::write(dir.path().join("portico.yaml"), format!("{MAIN}# edited\n")).unwrap();
        let outcome = reloader.reload(Trigger::File).await;
        assert!(
            matches!(*outcome, ReloadOutcome::Applied { generation: 3, .. }),
            "{outcome:?}"
        );
        assert_eq!(reloader.status().loaded_by, Trigger::File);
    }

    /// A reload asked for while one runs waits and is coalesced: never two at once, and a crowd of
    /// requests costs at most one more run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reloads_never_overlap_and_waiting_ones_are_coalesced() {
        let dir = tempfile::tempdir().unwrap();
        let reloader = reloader_in(dir.path());
        let active = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (a, m) = (active.clone(), most.clone());
        reloader.add_hook(Box::new(move |_| {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(200));
            a.fetch_sub(1, Ordering::SeqCst);
        }));
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let reloader = reloader.clone();
                tokio::spawn(async move { reloader.reload(Trigger::Admin).await })
            })
            .collect();
        for call in calls {
            let outcome = call.await.unwrap();
            assert!(
                matches!(*outcome, ReloadOutcome::Applied { .. }),
                "{outcome:?}"
            );
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let counts = reloader.counts();
        assert!(
            (1..=2).contains(&counts.applied),
            "10 overlapping requests ran {} reloads",
            counts.applied
        );
        assert_eq!(counts.generation, 1 + counts.applied);
    }
}
