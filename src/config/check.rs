//! `portico check FILE`: a main config, or one team's app file checked as its tenant's, without the
//! platform's secrets.
//!
//! A file is recognised by its top level ([`CheckSubject`]): a mapping with `tenants` or `server` is a
//! main config; a mapping with `id` (and neither of those) is an app file; anything else is refused
//! with one error saying what each looks like. An app file is checked against a main config
//! (`--config`, else `PORTICO_CONFIG`, else the nearest `portico.yaml` in the working directory or
//! above) by compiling that config with the app file among its tenant's apps (`compile::Checking`):
//! the tenant is the one named (`--tenant`), else the one whose `apps_from` patterns match the
//! file's path; none or several is an error naming the candidates. The rules are the loader's own,
//! so what is reported is what `serve` would say about the file. An unset `${VAR}`, anywhere, is a
//! warning and reads as a placeholder; an error at that value is left out (the value was not
//! known). The compiled config never leaves `compile::check`, so nothing checked here can be served.
//!
//! What an app check counts is what is written in the app file; what other files (the main config,
//! other teams' app files) have is summed up in a note, because a team's CI cannot fix the
//! platform's file (a secret file that is only on the servers, say).

use std::path::{Path, PathBuf};

use super::compile::{self, CheckedApp, Checking};
use super::source::Source;
use super::yaml::{self, Mark, Value};
use super::{Diagnostic, Severity, env};

/// The name a main config is looked for under, in the working directory and its parents.
pub const CONFIG_FILE_NAME: &str = "portico.yaml";

/// The file to check.
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// How diagnostics name it: the path as given, `--stdin-name`, or `<stdin>`.
    pub name: String,
    /// Where it is, or would be (`--stdin-name`): its directory anchors its relative paths, and its
    /// path is matched with `apps_from` patterns. `None` for standard input without a name.
    pub path: Option<PathBuf>,
    /// Its text when it came from standard input; otherwise it is read from `path`.
    pub text: Option<String>,
}

/// Where an app file's tenant comes from.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions<'a> {
    /// The main config: `--config` or `PORTICO_CONFIG`; `None` looks for `portico.yaml`.
    pub config: Option<&'a Path>,
    /// `--tenant`: the tenant the app file is checked as, whether or not its patterns match it.
    pub tenant: Option<&'a str>,
    /// The process's working directory: where the search for `portico.yaml` starts (a config
    /// found is named relative to it), and the directory of `check -` without `--stdin-name`.
    pub working_dir: &'a Path,
}

/// What a checked file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckSubject {
    /// Neither a main config nor an app file, or not YAML that can be read: the diagnostics say why.
    Unrecognised,
    /// A main config; `tenants` and `apps` are counted when it compiled.
    MainConfig { compiled: Option<(usize, usize)> },
    /// A team's app file, checked as an app of `tenant` of the main config `config`.
    App {
        id: Option<String>,
        tenant: String,
        config: String,
    },
}

/// Another file's findings, counted but not listed in an app file's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherFile {
    pub file: String,
    pub errors: usize,
    pub warnings: usize,
}

/// What `portico check` found in one file.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub name: String,
    pub subject: CheckSubject,
    /// The file's findings, in reading order.
    pub diagnostics: Vec<Diagnostic>,
    /// For an app file: what the other files of the load have (not counted in its result).
    pub elsewhere: Vec<OtherFile>,
}

/// Why an app file could not be checked at all: there is no tenant to check it as.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No `--config`, no `PORTICO_CONFIG`, and no `portico.yaml` here or above.
    #[error(
        "{file} is an app file, and there is no main config to check it against: no --config, no PORTICO_CONFIG, and no {CONFIG_FILE_NAME} in {} or a directory above\n    hint: name it: `portico check --config path/to/portico.yaml {file}` (add `--tenant <id>` to choose the tenant)",
        searched_from.display()
    )]
    NoConfig {
        file: String,
        searched_from: PathBuf,
    },
    /// The main config could not be read.
    #[error("cannot read the main config {}: {source}\n    hint: check the path given to --config (or in PORTICO_CONFIG)", path.display())]
    ConfigUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--tenant` names no tenant of the main config.
    #[error("{config} has no tenant `{tenant}`{}\n    hint: the tenants: {}", broken_note(*config_errors, config), known.join(", "))]
    UnknownTenant {
        tenant: String,
        config: String,
        known: Vec<String>,
        config_errors: usize,
    },
    /// No tenant's `apps_from` matches the file, and no `--tenant` was given.
    #[error("no `apps_from` pattern in {config} matches {file}, so no tenant reads it{}\n    hint: {}; name the tenant to check it as with `--tenant <id>`{}", broken_note(*config_errors, config), patterns_hint(patterns), if *from_stdin { ", or the path it stands for with `--stdin-name <path>`" } else { "" })]
    NoTenant {
        file: String,
        /// Standard input without `--stdin-name`: it has no path to match.
        from_stdin: bool,
        config: String,
        /// Each tenant with the patterns it reads.
        patterns: Vec<(String, Vec<String>)>,
        config_errors: usize,
    },
    /// Several tenants' `apps_from` match the file, and no `--tenant` was given.
    #[error("{file} is read by several tenants of {config}: {}\n    hint: name the one to check it as: `portico check --tenant {} {file}`", tenants.join(", "), tenants.first().map_or("<id>", String::as_str))]
    AmbiguousTenant {
        file: String,
        config: String,
        tenants: Vec<String>,
    },
}

fn broken_note(errors: usize, config: &str) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!(
            " ({config} itself has {}: `portico check {config}` lists them)",
            counted(errors, "error")
        )
    }
}

fn patterns_hint(patterns: &[(String, Vec<String>)]) -> String {
    let read: Vec<String> = patterns
        .iter()
        .map(|(tenant, patterns)| match patterns.as_slice() {
            [] => format!("tenant `{tenant}` reads no app files"),
            _ => format!("tenant `{tenant}` reads {}", patterns.join(", ")),
        })
        .collect();
    if read.is_empty() {
        "the config has no tenant".to_owned()
    } else {
        read.join("; ")
    }
}

/// `1 error`, `2 warnings`.
fn counted(count: usize, what: &str) -> String {
    if count == 1 {
        format!("1 {what}")
    } else {
        format!("{count} {what}s")
    }
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        count(&self.diagnostics, Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        count(&self.diagnostics, Severity::Warning)
    }

    /// Whether the check passes: no error, and with `strict` no warning either.
    pub fn passed(&self, strict: bool) -> bool {
        self.errors() == 0 && !(strict && self.warnings() > 0)
    }

    /// The last line of the report: what was checked and how it went.
    pub fn summary(&self, strict: bool) -> String {
        let (errors, warnings) = (self.errors(), self.warnings());
        let strict_note = if strict && errors == 0 && warnings > 0 {
            "; --strict fails on warnings"
        } else {
            ""
        };
        match &self.subject {
            CheckSubject::App { id, tenant, .. } => {
                let about = match id {
                    Some(id) => format!("app `{id}` of tenant `{tenant}`"),
                    None => format!("an app of tenant `{tenant}`"),
                };
                let mut found = Vec::new();
                if errors > 0 {
                    found.push(counted(errors, "error"));
                }
                if warnings > 0 {
                    found.push(counted(warnings, "warning"));
                }
                if found.is_empty() {
                    format!("{}: ok ({about})", self.name)
                } else {
                    format!(
                        "{} in {} ({about}){strict_note}",
                        found.join(", "),
                        self.name
                    )
                }
            }
            // The main config's lines are the ones `portico check` has always printed.
            CheckSubject::MainConfig { compiled } if errors == 0 => {
                let (tenants, apps) = compiled.unwrap_or_default();
                let size = format!("{tenants} tenant(s), {apps} app(s)");
                match warnings {
                    0 => format!("{}: ok ({size})", self.name),
                    // Only when a value that is one unset variable stopped the config compiling.
                    _ if compiled.is_none() => format!(
                        "{}: no errors as far as it can be checked without its unset variables, {}{strict_note}",
                        self.name,
                        counted(warnings, "warning")
                    ),
                    _ if strict => format!(
                        "{} in {} ({size}){strict_note}",
                        counted(warnings, "warning"),
                        self.name
                    ),
                    _ => format!(
                        "{}: ok ({size}), {}",
                        self.name,
                        counted(warnings, "warning")
                    ),
                }
            }
            CheckSubject::MainConfig { .. } | CheckSubject::Unrecognised => {
                let mut line = format!("{errors} error(s) found in {}", self.name);
                if warnings > 0 {
                    line.push_str(&format!(", and {}", counted(warnings, "warning")));
                }
                line
            }
        }
    }

    /// For an app file: one line on what the other files have, which its check does not count.
    pub fn note(&self) -> Option<String> {
        if self.elsewhere.is_empty() {
            return None;
        }
        let files: Vec<String> = self
            .elsewhere
            .iter()
            .map(|other| {
                let mut found = Vec::new();
                if other.errors > 0 {
                    found.push(counted(other.errors, "error"));
                }
                if other.warnings > 0 {
                    found.push(counted(other.warnings, "warning"));
                }
                format!("{} has {}", other.file, found.join(" and "))
            })
            .collect();
        let config = match &self.subject {
            CheckSubject::App { config, .. } => config.as_str(),
            _ => "the main config",
        };
        Some(format!(
            "note: not counted here: {} (the platform's or other teams' files; `portico check {config}` lists them)",
            files.join(", ")
        ))
    }
}

fn count(diagnostics: &[Diagnostic], severity: Severity) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .count()
}

/// Checks one file: a main config, or an app file as its tenant's. `Err` only when an app file has
/// no tenant to be checked as; every finding in a file is in the report.
pub fn check(
    source: &dyn Source,
    input: &CheckInput,
    options: &CheckOptions<'_>,
) -> Result<CheckReport, CheckError> {
    let text = match (&input.text, &input.path) {
        (Some(text), _) => text.clone(),
        (None, path) => {
            let path = path.as_deref().unwrap_or(Path::new(&input.name));
            match source.read(path) {
                Ok(text) => text,
                Err(error) => return Ok(unreadable(input, &error)),
            }
        }
    };
    match recognise(&text) {
        Kind::App { id } => check_app(source, input, options, text, id),
        Kind::MainConfig => Ok(check_main(source, input, &text)),
        Kind::Neither(mark) => Ok(neither(input, mark)),
    }
}

/// What a file's top level says it is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Also for text that is not YAML: the loader reports its syntax errors.
    MainConfig,
    App {
        id: Option<String>,
    },
    Neither(Mark),
}

fn recognise(text: &str) -> Kind {
    let Ok(root) = yaml::parse(text) else {
        return Kind::MainConfig;
    };
    let Value::Map(entries) = &root.value else {
        return Kind::Neither(root.mark);
    };
    let key = |name: &str| {
        entries.iter().find_map(|(key, value)| match &key.value {
            Value::Scalar { text } if text == name => Some(value),
            _ => None,
        })
    };
    if key("tenants").is_some() || key("server").is_some() {
        return Kind::MainConfig;
    }
    match key("id") {
        Some(id) => Kind::App {
            id: match &id.value {
                Value::Scalar { text } => Some(text.clone()),
                _ => None,
            },
        },
        None => Kind::Neither(root.mark),
    }
}

fn unreadable(input: &CheckInput, error: &std::io::Error) -> CheckReport {
    let hint = if error.kind() == std::io::ErrorKind::InvalidData {
        "split it: one file per app with `apps_from`"
    } else {
        "check the path"
    };
    let diagnostic = Diagnostic {
        severity: Severity::Error,
        file: input.name.clone(),
        mark: Mark { line: 1, column: 1 },
        key_path: String::new(),
        message: format!("cannot read config file: {error}"),
        hint: Some(hint.to_owned()),
    };
    report(input, CheckSubject::Unrecognised, vec![diagnostic])
}

fn neither(input: &CheckInput, mark: Mark) -> CheckReport {
    let diagnostic = Diagnostic {
        severity: Severity::Error,
        file: input.name.clone(),
        mark,
        key_path: String::new(),
        message: "this is neither a main config nor an app file".to_owned(),
        hint: Some("a main config is a mapping with `tenants:` (and `server:`, …); a team's app file is a mapping with the app's `id:` at the top (`portico schema --app` prints its schema)".to_owned()),
    };
    report(input, CheckSubject::Unrecognised, vec![diagnostic])
}

fn report(input: &CheckInput, subject: CheckSubject, diagnostics: Vec<Diagnostic>) -> CheckReport {
    CheckReport {
        name: input.name.clone(),
        subject,
        diagnostics,
        elsewhere: Vec::new(),
    }
}

/// The directory relative paths in a file start from: its own (`.` for a bare name, as the
/// loader has it), so paths in diagnostics read as they do in a full load.
fn dir_of(path: Option<&Path>) -> &Path {
    path.and_then(Path::parent)
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn check_main(source: &dyn Source, input: &CheckInput, text: &str) -> CheckReport {
    let checking = Checking::default();
    let base_dir = dir_of(input.path.as_deref());
    let (checked, diagnostics) = compile::check(source, &input.name, text, base_dir, &checking);
    let subject = CheckSubject::MainConfig {
        compiled: checked.map(|checked| (checked.tenants, checked.apps)),
    };
    report(input, subject, settle(diagnostics))
}

fn check_app(
    source: &dyn Source,
    input: &CheckInput,
    options: &CheckOptions<'_>,
    text: String,
    id: Option<String>,
) -> Result<CheckReport, CheckError> {
    let (config_path, config) = match options.config {
        Some(path) => (path.to_path_buf(), path.display().to_string()),
        None => find_config(source, options.working_dir).ok_or_else(|| CheckError::NoConfig {
            file: input.name.clone(),
            searched_from: options.working_dir.to_path_buf(),
        })?,
    };
    let config_text = source
        .read(&config_path)
        .map_err(|error| CheckError::ConfigUnreadable {
            path: config_path.clone(),
            source: error,
        })?;
    let located = input.path.is_some();
    let file = input
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from("<stdin>"));
    let checking = Checking {
        app: Some(CheckedApp {
            absolute: source.absolute(&file),
            file,
            name: input.name.clone(),
            text,
            tenant: options.tenant.map(str::to_owned),
            located,
        }),
        ..Checking::default()
    };
    let config_dir = dir_of(Some(&config_path));
    let (_, diagnostics) = compile::check(source, &config, &config_text, config_dir, &checking);
    let diagnostics = settle(diagnostics);
    let config_errors = diagnostics
        .iter()
        .filter(|d| d.file == config && d.severity == Severity::Error)
        .count();
    let compiled_by = checking.compiled_by.into_inner();
    let tenant = match (options.tenant, compiled_by.as_slice()) {
        (_, [tenant]) => tenant.clone(),
        (Some(tenant), _) => {
            return Err(CheckError::UnknownTenant {
                tenant: tenant.to_owned(),
                config,
                known: checking
                    .tenants
                    .into_inner()
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect(),
                config_errors,
            });
        }
        (None, []) => {
            return Err(CheckError::NoTenant {
                file: input.name.clone(),
                from_stdin: !located,
                config,
                patterns: checking.tenants.into_inner(),
                config_errors,
            });
        }
        (None, several) => {
            return Err(CheckError::AmbiguousTenant {
                file: input.name.clone(),
                config,
                tenants: several.to_vec(),
            });
        }
    };
    let (own, others): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diagnostics.into_iter().partition(|d| d.file == input.name);
    let mut elsewhere: Vec<OtherFile> = Vec::new();
    for other in others {
        let at = match elsewhere.iter().position(|e| e.file == other.file) {
            Some(at) => at,
            None => {
                elsewhere.push(OtherFile {
                    file: other.file.clone(),
                    errors: 0,
                    warnings: 0,
                });
                elsewhere.len() - 1
            }
        };
        match other.severity {
            Severity::Error => elsewhere[at].errors += 1,
            Severity::Warning => elsewhere[at].warnings += 1,
        }
    }
    Ok(CheckReport {
        name: input.name.clone(),
        subject: CheckSubject::App { id, tenant, config },
        diagnostics: own,
        elsewhere,
    })
}

/// `$PORTICO_CONFIG` is `--config`'s (the binary reads it); this is the last resort: the nearest
/// `portico.yaml` in the working directory (`start`) or a directory above it, as a path relative to
/// it (`portico.yaml`, `../../portico.yaml`), so the files it names read as they do in a full load
/// run from here.
fn find_config(source: &dyn Source, start: &Path) -> Option<(PathBuf, String)> {
    (0..start.ancestors().count()).find_map(|up| {
        let candidate = PathBuf::from(format!("{}{CONFIG_FILE_NAME}", "../".repeat(up)));
        source.read(&candidate).ok()?;
        let name = candidate.display().to_string();
        Some((candidate, name))
    })
}

/// Diagnostics as reported: in reading order, once each, and without an error at a value that was
/// one unset variable (the error is about the placeholder; the warning there says the value is
/// not checked, and `serve` reports the variable instead).
fn settle(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let placeholders: Vec<(String, Mark)> = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning && env::value_unknown(&d.message))
        .map(|d| (d.file.clone(), d.mark))
        .collect();
    diagnostics.retain(|d| {
        d.severity != Severity::Error
            || !placeholders
                .iter()
                .any(|(file, mark)| *file == d.file && *mark == d.mark)
    });
    super::in_reading_order(&mut diagnostics);
    diagnostics
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::MemorySource;
    use crate::config::compile::testing::BASE;

    const MAIN: &str = "/etc/portico/portico.yaml";

    /// A platform with two tenants: acme reads `apps.d/acme/` and the shared directory, globex
    /// its own and the shared one too.
    fn platform() -> MemorySource {
        let mut source = MemorySource::default();
        source.files.insert(
            PathBuf::from(MAIN),
            format!(
                "{BASE}    apps_from: [apps.d/acme/*.yaml, apps.d/shared/*.yaml]\n    apps_env: [COST_URL]\n    apps:\n      - {{ id: billing, access: {{ roles: [developer] }}, static: ./d }}\n  globex:\n    hosts: [portal.globex.example]\n    auth: {{ dev_sign_in: {{ users: [{{ id: gina, groups: [g] }}] }} }}\n    roles:\n      engineer: {{ groups: [g] }}\n    apps_from: [apps.d/globex/*.yaml, apps.d/shared/*.yaml]\n"
            ),
        );
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/acme/ledger.yaml"),
            "id: ledger\naccess: { roles: [developer] }\nstatic: ./dist\n".into(),
        );
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/globex/people.yaml"),
            "id: people\naccess: { roles: [engineer] }\nstatic: ./dist\n".into(),
        );
        source
    }

    fn file(path: &str) -> CheckInput {
        CheckInput {
            name: path.trim_start_matches("/etc/portico/").to_owned(),
            path: Some(PathBuf::from(path)),
            text: None,
        }
    }

    /// Renders a check as `portico check` prints it (without and with `--strict`), or its error.
    fn render(source: &MemorySource, input: &CheckInput, tenant: Option<&str>) -> String {
        let options = CheckOptions {
            config: Some(Path::new(MAIN)),
            tenant,
            working_dir: Path::new("/work"),
        };
        match check(source, input, &options) {
            Ok(report) => {
                let mut lines: Vec<String> =
                    report.diagnostics.iter().map(ToString::to_string).collect();
                lines.extend(report.note());
                lines.push(report.summary(false));
                lines.push(format!(
                    "exit: {}, with --strict: {}",
                    u8::from(!report.passed(false)),
                    u8::from(!report.passed(true))
                ));
                lines.join("\n")
            }
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn app_files_are_checked_as_their_tenants() {
        let mut cases = Vec::new();
        let mut case = |name: &str, app: Option<&str>, input: CheckInput, tenant: Option<&str>| {
            let mut source = platform();
            if let (Some(text), Some(path)) = (app, &input.path) {
                source.files.insert(path.clone(), text.to_owned());
            }
            cases.push(format!("## {name}\n{}\n", render(&source, &input, tenant)));
        };
        let cost = "/etc/portico/apps.d/acme/cost.yaml";
        case(
            "a good app file, its tenant found by its pattern",
            Some("id: cost\naccess: { roles: [developer] }\nstatic: ./dist\n"),
            file(cost),
            None,
        );
        case(
            "a role the tenant lacks",
            Some("id: cost\naccess: { roles: [developer, finance] }\nstatic: ./dist\n"),
            file(cost),
            None,
        );
        case(
            "an id another app file of the tenant has",
            Some("id: ledger\naccess: { roles: [developer] }\nstatic: ./dist\n"),
            file(cost),
            None,
        );
        case(
            "an id the main config has",
            Some("id: billing\naccess: { roles: [developer] }\nstatic: ./dist\n"),
            file(cost),
            None,
        );
        case(
            "a static directory outside the file's own",
            Some("id: cost\naccess: { roles: [developer] }\nstatic: ../globex\n"),
            file(cost),
            None,
        );
        case(
            "an unset variable the tenant allows: a warning, not a parse error of the placeholder",
            Some("id: cost\naccess: { roles: [developer] }\nupstream: ${COST_URL}\n"),
            file(cost),
            None,
        );
        case(
            "a variable the tenant does not allow is refused, set or not",
            Some("id: cost\naccess: { roles: [developer] }\nupstream: \"http://${HOME}:1\"\n"),
            file(cost),
            None,
        );
        let shared = "/etc/portico/apps.d/shared/wiki.yaml";
        let wiki = "id: wiki\naccess: { roles: [developer] }\nstatic: ./dist\n";
        case("read by two tenants", Some(wiki), file(shared), None);
        case(
            "read by two tenants, one named",
            Some(wiki),
            file(shared),
            Some("acme"),
        );
        case(
            "a tenant that is not there",
            Some(wiki),
            file(shared),
            Some("initech"),
        );
        let elsewhere = "/home/dev/cost.yaml";
        case(
            "matched by no pattern",
            Some("id: cost\naccess: { roles: [developer] }\n"),
            file(elsewhere),
            None,
        );
        case(
            "matched by no pattern, the tenant named",
            Some("id: cost\naccess: { roles: [developer] }\nstatic: ./dist\n"),
            file(elsewhere),
            Some("acme"),
        );
        insta::assert_snapshot!("app_files", cases.join("\n"));
    }

    #[test]
    fn standard_input_is_named_and_matched_by_its_stated_path() {
        let source = platform();
        let text = "id: cost\naccess: { roles: [engineer] }\nstatic: ./dist\n";
        let unnamed = CheckInput {
            name: "<stdin>".into(),
            path: None,
            text: Some(text.into()),
        };
        // Not on disk, but where globex's pattern looks.
        let named = CheckInput {
            name: "apps.d/globex/cost.yaml".into(),
            path: Some(PathBuf::from("/etc/portico/apps.d/globex/cost.yaml")),
            text: Some(text.into()),
        };
        // The text checked is the one given, not the file on disk under that name.
        let replacing = CheckInput {
            name: "apps.d/globex/people.yaml".into(),
            path: Some(PathBuf::from("/etc/portico/apps.d/globex/people.yaml")),
            text: Some("id: people\naccess: { roles: [developer] }\n".into()),
        };
        let report = [
            (
                "standard input without a name",
                render(&source, &unnamed, None),
            ),
            ("with --tenant", render(&source, &unnamed, Some("globex"))),
            ("with --stdin-name", render(&source, &named, None)),
            (
                "with --stdin-name of a file on disk",
                render(&source, &replacing, None),
            ),
        ]
        .map(|(name, text)| format!("## {name}\n{text}\n"))
        .join("\n");
        insta::assert_snapshot!("standard_input", report);
    }

    #[test]
    fn main_configs_are_checked_without_the_platforms_secrets() {
        let mut source = MemorySource::default();
        let main = BASE.replace(
            "auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }",
            "public_origin: https://portal.acme.example\n    auth: { oidc: { issuer: \"${ACME_ISSUER}\", client_id: portico, client_secret: \"${ACME_OIDC_SECRET}\" } }",
        );
        source.files.insert(PathBuf::from(MAIN), main.clone());
        let secrets = render(&source, &file(MAIN), None);
        // A value with a placeholder is still checked where it can be: the scheme is wrong here.
        let broken = main.replace("\"${ACME_ISSUER}\"", "\"ftp://${ACME_HOST}\"");
        source.files.insert(PathBuf::from(MAIN), broken);
        let still = render(&source, &file(MAIN), None);
        source
            .files
            .insert(PathBuf::from(MAIN), "- id: cost\n".into());
        let neither = render(&source, &file(MAIN), None);
        source
            .files
            .insert(PathBuf::from(MAIN), "label: Cost\n".into());
        let no_id = render(&source, &file(MAIN), None);
        let missing = render(&source, &file("/etc/portico/nope.yaml"), None);
        let report = [
            ("unset secrets are warnings", secrets),
            ("an error beside a placeholder", still),
            ("a list is neither kind of file", neither),
            ("a mapping without `id` or `tenants`", no_id),
            ("a file that is not there", missing),
        ]
        .map(|(name, text)| format!("## {name}\n{text}\n"))
        .join("\n");
        insta::assert_snapshot!("main_configs", report);
    }

    #[test]
    fn an_app_file_without_a_main_config_says_how_to_name_one() {
        let mut source = MemorySource::default();
        source.files.insert(
            PathBuf::from("/work/cost.yaml"),
            "id: cost\naccess: { roles: [developer] }\n".into(),
        );
        let options = CheckOptions {
            config: None,
            tenant: None,
            working_dir: Path::new("/work"),
        };
        let error = check(&source, &file("/work/cost.yaml"), &options).unwrap_err();
        insta::assert_snapshot!("no_main_config", error.to_string());
    }
}
