//! Loading and validating portico's YAML config.
//!
//! `load_file` and `load_embedded` return either a complete, validated `Config` or every problem found,
//! each a `Diagnostic` with file, line, column, key path and hint. Only this module knows YAML; the rest
//! of the server reads the typed model. It must never hand out a half-valid config: a config with one
//! error is refused whole, so a running server keeps its previous snapshot (hot reload builds on this).
//!
//! It must not let a config value carry more than its author may reach. The main file is the
//! platform's; an `apps_from` file is a team's and is confined: `${VAR}` only for variables its tenant
//! allows (`apps_env`), never the user's access token, `static:` only below its own directory (symlinks resolved) or an
//! `apps_static_roots` entry. And no value the browser receives (labels, categories, icons, branding,
//! node views, dev users, …) reads the environment at all, in any file: those are written literally,
//! so a secret can never reach a page through config. Input is bounded: 1 MiB per file, and a cap on
//! nesting and on what anchors and aliases copy.
//!
//! Three stages, each reporting everything it finds: syntax (`yaml`, a positioned tree), shape (`raw`,
//! the document as serde structs, read by `de` value by value; `${VAR}` via `env`), meaning
//! (`compile`, one rule file per section, reporting through `diagnose::Cx`). `source` is the only IO.
//! `check` is `portico check FILE`: a main config or one team's app file, without the platform's
//! secrets, through the same rules.

mod check;
mod compile;
mod de;
mod diagnose;
mod env;
mod ids;
pub mod model;
mod raw;
#[cfg(test)]
mod schema;
mod source;
mod wrap;
mod yaml;

use std::fmt;
use std::path::Path;

pub use check::{
    CONFIG_FILE_NAME, CheckError, CheckInput, CheckOptions, CheckReport, CheckSubject, OtherFile,
    check,
};
pub use compile::{RESERVED_SEGMENTS, parse_upstream};
pub use model::*;
pub use source::{MemorySource, OsSource, Source, SourceFile, SourceFiles};
pub use yaml::Mark;

/// The config the binary runs on when no `--config` is given: a demo tenant with dev sign-in.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// The JSON Schema of the main config file, as `docs/portico.schema.json` holds it (generated from
/// `raw.rs` by the `config::schema` test, which fails when the file is stale).
pub const SCHEMA: &str = include_str!("../../docs/portico.schema.json");

/// The JSON Schema of one team's app file (`apps_from`), as `docs/portico-app.schema.json` holds it.
pub const APP_SCHEMA: &str = include_str!("../../docs/portico-app.schema.json");

/// How bad a finding is. Warnings are printed by `portico check` but do not stop a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding in a config file, positioned for a human to jump to.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub mark: Mark,
    /// Dotted path to the key, e.g. `tenants.acme.apps[cost-insights].access.roles[0]`.
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}: {severity}: {}",
            self.file, self.mark, self.message
        )?;
        if !self.key_path.is_empty() {
            write!(f, "\n    key: {}", self.key_path)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n    hint: {hint}")?;
        }
        Ok(())
    }
}

/// A config that cannot be used, with everything that is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut out: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    out.push(format!("{errors} error(s) in config"));
    out.join("\n")
}

/// A validated config plus the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates a config file from disk. Relative paths inside it are relative to its directory.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(&OsSource, path)
}

/// Like [`load_file`], reading the environment and files through `source`.
pub fn load_with(source: &dyn Source, path: &Path) -> Result<Loaded, ConfigError> {
    let display = path.display().to_string();
    let text = source.read(path).map_err(|error| ConfigError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            file: display.clone(),
            mark: Mark { line: 1, column: 1 },
            key_path: String::new(),
            message: format!("cannot read config file: {error}"),
            hint: Some(if error.kind() == std::io::ErrorKind::InvalidData {
                "split it: one file per app with `apps_from`".into()
            } else {
                "check the path given to --config".into()
            }),
        }],
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    finish(compile::compile(source, &display, &text, base_dir))
}

/// Like [`load_file`], and also says which config files were read, with their hashes, and which
/// `apps_from` patterns were searched (for `/config/status` and the reload watcher). The files are
/// reported whether or not the config compiles: a refused reload still shows what it read.
pub fn load_file_traced(path: &Path) -> (Result<Loaded, ConfigError>, SourceFiles) {
    load_traced_with(&OsSource, path)
}

/// [`load_file_traced`] through `source`.
pub fn load_traced_with(
    source: &dyn Source,
    path: &Path,
) -> (Result<Loaded, ConfigError>, SourceFiles) {
    let recording = source::RecordingSource::new(source, path);
    let result = load_with(&recording, path);
    (result, recording.into_files())
}

/// The embedded demo config.
pub fn load_embedded() -> Result<Loaded, ConfigError> {
    load_embedded_on(None)
}

/// The embedded demo as it runs on `port` (`serve --listen`): its hosts, origins and links name that
/// port instead of 8080, so the second tenant and the product switcher keep working.
pub fn load_embedded_on(port: Option<u16>) -> Result<Loaded, ConfigError> {
    let text = match port {
        Some(port) => {
            std::borrow::Cow::Owned(EMBEDDED_DEFAULT.replace(":8080", &format!(":{port}")))
        }
        None => std::borrow::Cow::Borrowed(EMBEDDED_DEFAULT),
    };
    finish(compile::compile(
        &OsSource,
        "<embedded default>",
        &text,
        Path::new("."),
    ))
}

/// Compiles config text that did not come from a file (tests, `check -`).
pub fn load_str(
    source: &dyn Source,
    name: &str,
    text: &str,
    base_dir: &Path,
) -> Result<Loaded, ConfigError> {
    finish(compile::compile(source, name, text, base_dir))
}

fn finish(
    (config, mut diagnostics): (Option<Config>, Vec<Diagnostic>),
) -> Result<Loaded, ConfigError> {
    in_reading_order(&mut diagnostics);
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    match config {
        Some(config) if !has_errors => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(ConfigError { diagnostics }),
    }
}

/// Sorts diagnostics as they are reported and drops repeats.
fn in_reading_order(diagnostics: &mut Vec<Diagnostic>) {
    // Report in reading order: files as first met, then by position within each file.
    let mut file_order: Vec<String> = Vec::new();
    for diagnostic in diagnostics.iter() {
        if !file_order.contains(&diagnostic.file) {
            file_order.push(diagnostic.file.clone());
        }
    }
    diagnostics.sort_by_key(|d| {
        let file = file_order
            .iter()
            .position(|f| *f == d.file)
            .unwrap_or(usize::MAX);
        (file, d.mark.line, d.mark.column)
    });
    // A rule that runs once per tenant (a shared app's) may find the same thing twice: say it once.
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert(d.to_string()));
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    use compile::testing::BASE;

    fn compile(source: &MemorySource, text: &str) -> Result<Loaded, ConfigError> {
        load_str(source, "portico.yaml", text, Path::new("/etc/portico"))
    }

    /// Asserts that `text` fails with an error at `line`, whose message contains `message`.
    fn check_error(text: &str, line: usize, message: &str) {
        let error = compile(&MemorySource::default(), text).expect_err("config should be refused");
        let found = error
            .errors()
            .any(|d| d.mark.line == line && d.message.contains(message));
        assert!(found, "expected `{message}` at line {line}, got:\n{error}");
    }

    #[test]
    fn a_minimal_tenant_compiles() {
        let loaded = compile(&MemorySource::default(), BASE).unwrap();
        assert_eq!(loaded.config.tenants[0].id, "acme");
        assert_eq!(loaded.config.server.listen.port(), 8080);
    }

    #[test]
    fn each_rule_reports_its_line() {
        let app =
            |extra: &str| format!("{BASE}    apps:\n      - {{ id: x, static: ./d{extra} }}\n");
        check_error(
            &app(", access: { roles: [developer] }, colour: red"),
            8,
            "unknown key `colour`",
        );
        check_error(&app(""), 8, "has no access rule");
        check_error(
            &app(", access: { roles: [admin] }"),
            8,
            "unknown role `admin`",
        );
        check_error(&app(", access: { roles: [] }"), 8, "at least one role");
        check_error(
            &format!(
                "{BASE}    apps:\n      - {{ id: auth, static: ./d, access: {{ roles: [developer] }} }}\n"
            ),
            8,
            "reserved path /auth",
        );
        check_error(
            &BASE.replace("developer: { groups: [eng] }", "developer: { groups: [] }"),
            6,
            "not granted by any group",
        );
        check_error(&BASE.replace("hosts:", "hostz:"), 3, "unknown key `hostz`");
        check_error(
            &format!(
                "{BASE}  globex:\n    hosts: [portal.acme.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: g }}] }} }}\n    roles: {{}}\n"
            ),
            8,
            "also listed by tenant `acme`",
        );
    }

    #[test]
    fn pending_sign_in_limits_have_defaults_and_must_be_positive() {
        let loaded = compile(&MemorySource::default(), BASE).unwrap();
        assert_eq!(loaded.config.sessions.pending_sign_ins_per_client, 100);
        assert_eq!(loaded.config.sessions.pending_sign_ins_per_tenant, 10_000);
        let text = format!("sessions: {{ pending_sign_ins_per_client: 5 }}\n{BASE}");
        let loaded = compile(&MemorySource::default(), &text).unwrap();
        assert_eq!(loaded.config.sessions.pending_sign_ins_per_client, 5);
        check_error(
            &format!("sessions:\n  pending_sign_ins_per_tenant: 0\n{BASE}"),
            2,
            "not a positive whole number",
        );
    }

    #[test]
    fn server_connection_limits_are_read_and_checked() {
        let defaults = compile(&MemorySource::default(), BASE)
            .unwrap()
            .config
            .server;
        assert_eq!(defaults.header_read_timeout.as_secs(), 30);
        assert_eq!(defaults.max_connections, 4096);
        assert_eq!(defaults.max_connections_per_client, 256);
        let text = format!(
            "server: {{ header_read_timeout: 5s, max_connections: 100, max_connections_per_client: 10 }}\n{BASE}"
        );
        let server = compile(&MemorySource::default(), &text)
            .unwrap()
            .config
            .server;
        assert_eq!(server.header_read_timeout.as_secs(), 5);
        assert_eq!(server.max_connections, 100);
        assert_eq!(server.max_connections_per_client, 10);
        check_error(
            &format!("server: {{ max_connections: 0 }}\n{BASE}"),
            1,
            "`0` is not a positive whole number",
        );
        check_error(
            &format!("server:\n  max_connections_per_client: lots\n{BASE}"),
            2,
            "`lots` is not a positive whole number",
        );
        check_error(
            &format!("server: {{ header_read_timeout: 0s }}\n{BASE}"),
            1,
            "a duration of zero",
        );
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let error =
            compile(&MemorySource::default(), &BASE.replace("hosts:", "hots:")).unwrap_err();
        let diagnostic = error.errors().next().unwrap();
        assert_eq!(diagnostic.key_path, "tenants.acme.hots");
        assert!(
            diagnostic
                .hint
                .as_deref()
                .unwrap()
                .contains("did you mean `hosts`")
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = format!(
            "{BASE}    apps:\n      - {{ id: a, static: ./d }}\n      - {{ id: b, static: ./d, access: {{ roles: [nope] }} }}\n      - {{ id: a, static: ./d, access: {{ roles: [developer] }} }}\n"
        );
        let error = compile(&MemorySource::default(), &text).unwrap_err();
        let messages: Vec<String> = error
            .errors()
            .map(|d| format!("{}: {}", d.mark.line, d.message))
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].contains("8: app `a` has no access rule"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("9: unknown role `nope`"),
            "{messages:?}"
        );
    }

    #[test]
    fn environment_variables_are_substituted_or_reported() {
        let text = format!(
            "{BASE}    apps:\n      - {{ id: x, upstream: \"${{UPSTREAM}}\", access: {{ roles: [developer] }} }}\n"
        );
        let mut source = MemorySource::default();
        let error = compile(&source, &text).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("environment variable `UPSTREAM` is not set"),
            "{error}"
        );
        source
            .env
            .insert("UPSTREAM".into(), "http://127.0.0.1:9000".into());
        let loaded = compile(&source, &text).unwrap();
        assert!(matches!(
            &loaded.config.tenants[0].apps[0].target,
            AppTarget::Upstream(upstream) if upstream.authority == "127.0.0.1:9000"
        ));
    }

    /// Invariant 8: nothing secret reaches the browser through config values. Every value shown to
    /// users is written literally; `${VAR}` there is an error even when the variable is set.
    #[test]
    fn values_shown_in_the_browser_never_read_the_environment() {
        let mut source = MemorySource::default();
        source.env.insert("SECRET".into(), "s3cr3t".into());
        let app = |keys: &str| {
            format!(
                "{BASE}    apps:\n      - {{ id: x, upstream: http://127.0.0.1:9000, access: {{ roles: [developer] }}, {keys} }}\n"
            )
        };
        let cases = [
            app("label: \"${SECRET}\""),
            app("category: \"a ${SECRET}\""),
            app("icon: \"${SECRET}\""),
            app("owner: \"${SECRET}\""),
            app("description: \"${SECRET}\""),
            app("nodes: [{ path: r, label: \"${SECRET}\", view: /r }]"),
            app("nodes: [{ path: r, label: R, view: \"/${SECRET}\" }]"),
            app("nodes: [{ path: r, label: R, view: /r, icon: \"${SECRET}\" }]"),
            format!("{BASE}    branding: {{ title: \"${{SECRET}}\" }}\n"),
            format!("{BASE}    branding: {{ logo: \"/x/${{SECRET}}.svg\" }}\n"),
            format!("{BASE}    branding: {{ favicon: \"${{SECRET}}\" }}\n"),
            format!("{BASE}    branding: {{ theme: {{ accent_color: \"${{SECRET}}\" }} }}\n"),
            format!("{BASE}    luigi: {{ side_nav_footer: \"${{SECRET}}\" }}\n"),
            BASE.replace("{ id: ann,", "{ id: ann, name: \"${SECRET}\","),
            BASE.replace("groups: [eng] }] }", "groups: [eng, \"${SECRET}\"] }] }"),
            BASE.replace(
                "developer: { groups: [eng] }",
                "developer: { groups: [eng], description: \"${SECRET}\" }",
            ),
        ];
        for text in cases {
            let error = compile(&source, &text).expect_err(&text);
            let diagnostic = error.errors().next().unwrap();
            assert!(
                diagnostic.message.contains("cannot be used in")
                    && diagnostic.message.contains("shown in users' browsers"),
                "{text}\n{error}"
            );
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
        }
        // `$${` still writes a literal `${`.
        let loaded = compile(&source, &app("label: \"$${SECRET}\"")).unwrap();
        assert_eq!(loaded.config.tenants[0].apps[0].label, "${SECRET}");
    }

    #[test]
    fn app_files_read_only_the_variables_their_tenant_allows() {
        let mut source = MemorySource::default();
        source.env.insert("REGION".into(), "eu".into());
        source
            .env
            .insert("ACME_OIDC_SECRET".into(), "s3cr3t".into());
        let app = |var: &str| {
            format!(
                "id: cost\naccess: {{ roles: [developer] }}\nupstream: \"http://cost-${{{var}}}.internal:3000\"\n"
            )
        };
        let file = PathBuf::from("/etc/portico/apps.d/cost.yaml");
        source.files.insert(file.clone(), app("ACME_OIDC_SECRET"));
        let text = format!("{BASE}    apps_from: apps.d/*.yaml\n    apps_env: [REGION]\n");
        let error = compile(&source, &text).unwrap_err();
        let diagnostic = error.errors().next().unwrap();
        assert_eq!(diagnostic.file, "/etc/portico/apps.d/cost.yaml");
        assert_eq!(diagnostic.mark.line, 3);
        assert!(
            diagnostic
                .message
                .contains("`${ACME_OIDC_SECRET}` is not available in an app file"),
            "{error}"
        );
        assert!(
            diagnostic
                .hint
                .as_deref()
                .unwrap()
                .contains("`apps_env: [ACME_OIDC_SECRET]` to tenant `acme` in portico.yaml"),
            "{error}"
        );
        source.files.insert(file, app("REGION"));
        let loaded = compile(&source, &text).unwrap();
        assert!(matches!(
            &loaded.config.tenants[0].apps[0].target,
            AppTarget::Upstream(upstream) if upstream.authority == "cost-eu.internal:3000"
        ));
        // The main file itself is the platform's: it reads any variable.
        let inline = format!(
            "{BASE}    apps:\n      - {{ id: x, upstream: \"http://x-${{ACME_OIDC_SECRET}}:1\", access: {{ roles: [developer] }} }}\n"
        );
        compile(&source, &inline).unwrap();
    }

    #[test]
    fn app_files_serve_static_files_only_below_their_directory() {
        let mut source = MemorySource::default();
        let file = PathBuf::from("/etc/portico/apps.d/cost.yaml");
        let app =
            |dir: &str| format!("id: cost\naccess: {{ roles: [developer] }}\nstatic: {dir}\n");
        let text = format!("{BASE}    apps_from: apps.d/*.yaml\n");
        for escape in [
            "../..",
            "/etc",
            "./dist/../../secrets",
            "/etc/portico/apps.d/../bundles",
        ] {
            source.files.insert(file.clone(), app(escape));
            let error = compile(&source, &text).expect_err(escape);
            let diagnostic = error.errors().next().unwrap();
            assert_eq!(diagnostic.mark.line, 3, "{error}");
            assert!(
                diagnostic
                    .message
                    .contains("outside the app file's directory"),
                "{error}"
            );
        }
        source.files.insert(file.clone(), app("./dist"));
        compile(&source, &text).unwrap();
        // A directory the tenant allows is fine.
        source.files.insert(file, app("/srv/bundles/cost"));
        compile(
            &source,
            &format!("{text}    apps_static_roots: [/srv/bundles]\n"),
        )
        .unwrap();
    }

    #[test]
    fn tenants_that_differ_only_by_port_are_warned_about() {
        let text = format!(
            "{}  globex:\n    hosts: [\"portal.acme.example:9090\"]\n    auth: {{ dev_sign_in: {{ users: [{{ id: g }}] }} }}\n    roles: {{}}\n",
            BASE.replace("[portal.acme.example]", "[\"portal.acme.example:8080\"]")
        );
        let loaded = compile(&MemorySource::default(), &text).unwrap();
        let warning = &loaded.warnings[0];
        assert_eq!(warning.mark.line, 8);
        assert!(
            warning.message.contains("only by port"),
            "{}",
            warning.message
        );
        assert_eq!(host_name_for_test("[::1]:8080"), "::1");
    }

    fn host_name_for_test(host: &str) -> &str {
        compile::values::host_name(host)
    }

    #[test]
    fn app_files_report_errors_in_their_own_file() {
        let mut source = MemorySource::default();
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/cost.yaml"),
            "id: cost\nlabel: Cost\nstatic: ./dist\naccess: { roles: [finance] }\n".into(),
        );
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/ok.yaml"),
            "id: ok\nstatic: ./dist\naccess: { roles: [developer] }\n".into(),
        );
        let text = format!("{BASE}    apps_from: apps.d/*.yaml\n");
        let error = compile(&source, &text).unwrap_err();
        let diagnostic = error.errors().next().unwrap();
        assert_eq!(diagnostic.file, "/etc/portico/apps.d/cost.yaml");
        assert_eq!(diagnostic.mark.line, 4);
        assert!(diagnostic.message.contains("unknown role `finance`"));

        source
            .files
            .remove(Path::new("/etc/portico/apps.d/cost.yaml"));
        let loaded = compile(&source, &text).unwrap();
        assert_eq!(loaded.config.tenants[0].apps[0].id, "ok");
    }

    #[test]
    fn a_traced_load_names_the_config_files_read_with_their_hashes() {
        let mut source = MemorySource::default();
        let main = PathBuf::from("/etc/portico/portico.yaml");
        let text = format!("{BASE}    apps_from: apps.d/*.yaml\n");
        source.files.insert(main.clone(), text.clone());
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/ok.yaml"),
            "id: ok\nstatic: ./dist\naccess: { roles: [developer] }\n".into(),
        );
        let (result, files) = load_traced_with(&source, &main);
        result.unwrap();
        let paths: Vec<_> = files.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            [main.clone(), PathBuf::from("/etc/portico/apps.d/ok.yaml")]
        );
        // sha256 of "" is e3b0…; of the main text, 64 hex digits that change with it.
        assert_eq!(files.files[0].sha256.len(), 64);
        // The pattern, and `*.yml` beside it: a file appearing there gets its warning at reload.
        assert_eq!(
            files.patterns,
            ["/etc/portico/apps.d/*.yaml", "/etc/portico/apps.d/*.yml"]
        );
        source
            .files
            .insert(main.clone(), format!("{text}# edited\n"));
        let (_, edited) = load_traced_with(&source, &main);
        assert_ne!(edited.files[0].sha256, files.files[0].sha256);
        assert_eq!(edited.files[1], files.files[1]);
        // A broken app file is still reported as read.
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/ok.yaml"),
            "id: [ok\n".into(),
        );
        let (result, broken) = load_traced_with(&source, &main);
        assert!(result.is_err());
        assert_eq!(broken.files.len(), 2);
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let loaded = load_embedded().unwrap();
        assert!(loaded.warnings.is_empty());
        let demo = &loaded.config.tenants[0];
        assert!(demo.apps.len() >= 3);
        assert!(matches!(demo.sign_in, SignIn::Dev { .. }));
    }
}
