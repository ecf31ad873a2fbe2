//! Loading and validating portico's YAML config.
//!
//! `load_file` and `load_embedded` return either a complete, validated [`Config`] or every problem found,
//! each a [`Diagnostic`] with file, line, column, key path and hint. Only this module knows YAML; the rest
//! of the server reads the typed model. It must never hand out a half-valid config: a config with one
//! error is refused whole, so a running server keeps its previous snapshot (hot reload builds on this).

mod compile;
pub mod model;
mod yaml;

use std::fmt;
use std::path::Path;

pub use compile::{OsSource, RESERVED_SEGMENTS, Source, parse_upstream};
pub use model::*;
pub use yaml::Mark;

/// The config the binary runs on when no `--config` is given: a demo tenant with dev sign-in.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

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
            hint: Some("check the path given to --config".into()),
        }],
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    finish(compile::compile(source, &display, &text, base_dir))
}

/// The embedded demo config.
pub fn load_embedded() -> Result<Loaded, ConfigError> {
    finish(compile::compile(
        &OsSource,
        "<embedded default>",
        EMBEDDED_DEFAULT,
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

fn finish((config, diagnostics): (Option<Config>, Vec<Diagnostic>)) -> Result<Loaded, ConfigError> {
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    match config {
        Some(config) if !has_errors => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(ConfigError { diagnostics }),
    }
}
