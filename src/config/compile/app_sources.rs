//! Where a tenant's apps come from, in navigation order: its own `apps`, its teams' `apps_from` files,
//! then the shared apps it enables. A team's file is read under the team's confinement (its own
//! directory, the variables its tenant allows) and its diagnostics name that file, so the team that
//! owns it sees its own line. App ids are unique within the tenant.
//!
//! Under `portico check FILE` (`compile::Checking`), the app file under check is compiled here too,
//! by the same code as any `apps_from` file: as the tenant's whose patterns match it (or the one
//! named), last, so an id it shares with another app is reported on it.

use std::sync::Arc;

use super::shared_apps::SharedApp;
use super::{Checking, TeamScope, TenantScope, apps::app};
use crate::config::de;
use crate::config::diagnose::Cx;
use crate::config::env::EnvRules;
use crate::config::model::App;
use crate::config::raw::{Env, RawApp, RawTenant, Val, field};
use crate::config::source::normalise_lexically;
use crate::config::yaml::Mark;

/// A tenant's apps in navigation order: its own, those of its app files, then the shared apps it
/// enables (with its overrides applied).
pub(super) fn tenant_apps(
    raw: &RawTenant,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    team: &TeamScope,
    shared: &[SharedApp],
) -> Vec<Arc<App>> {
    let mut apps = Collected::default();
    let inline = field(&raw.apps)
        .flatten()
        .map(Vec::as_slice)
        .unwrap_or_default();
    cx.at("apps", |cx| {
        for (index, entity) in inline.iter().enumerate() {
            let Some(app_raw) = entity.0.get() else {
                continue;
            };
            cx.at(&format!("[{index}]"), |cx| {
                let app = app(app_raw, entity.0.mark, cx, scope);
                add(cx, &mut apps, app, entity.0.mark);
            });
        }
    });
    let patterns = field(&raw.apps_from)
        .flatten()
        .map(|list| list.0.as_slice());
    cx.at("apps_from", |cx| {
        for pattern in patterns.unwrap_or_default() {
            apps_from(pattern, cx, scope, team, &mut apps);
        }
        unread_app_files(patterns.unwrap_or_default(), cx, scope, &apps.files);
    });
    for shared in shared.iter().filter(|shared| shared.enabled_by(scope.id)) {
        cx.at_path(&format!("shared_apps[{}]", shared.index), |cx| {
            let app = app(&shared.for_tenant(scope.id), shared.mark, cx, scope);
            add(cx, &mut apps, app, shared.mark);
        });
    }
    checked_app(cx, scope, team, &mut apps);
    apps.apps
}

/// A tenant's apps so far, each with where it was written (file and position), so that a duplicate
/// id names the first definition, in whichever file it is.
#[derive(Default)]
struct Collected {
    apps: Vec<Arc<App>>,
    written_at: Vec<(Arc<str>, Mark)>,
    /// Every file an `apps_from` pattern matched, read or not.
    files: Vec<std::path::PathBuf>,
}

/// App files (`.yaml` or `.yml`) in a directory an `apps_from` pattern reads that no pattern matches:
/// a team's `cost.yml` beside a `*.yaml` pattern would otherwise be left out without a word. Only
/// directories of their own (not the main file's), where every YAML file is meant to be an app.
fn unread_app_files(
    patterns: &[Val<Env>],
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    matched: &[std::path::PathBuf],
) {
    let mut dirs: Vec<(std::path::PathBuf, Mark)> = Vec::new();
    for pattern in patterns {
        let Some(Env(text)) = pattern.get() else {
            continue;
        };
        let full = scope.base_dir.join(text);
        let Some(dir) = full.parent() else { continue };
        let plain = !dir.to_string_lossy().contains(['*', '?', '[']);
        if plain && dir != scope.base_dir && !dirs.iter().any(|(seen, _)| seen == dir) {
            dirs.push((dir.to_path_buf(), pattern.mark));
        }
    }
    for (dir, mark) in dirs {
        for extension in ["yaml", "yml"] {
            let pattern = dir.join(format!("*.{extension}"));
            let Ok(files) = cx.source.glob(&pattern.to_string_lossy()) else {
                continue;
            };
            for file in files.iter().filter(|file| !matched.contains(file)) {
                cx.warn(
                    mark,
                    format!(
                        "{} looks like an app file, but no `apps_from` pattern matches it: it is not read",
                        file.display()
                    ),
                    Some("match it too (`apps_from: [apps.d/*.yaml, apps.d/*.yml]`), or move it out of the directory".into()),
                );
            }
        }
    }
}

/// Adds a compiled app unless its id is taken (reported at the app, the current key, naming the
/// first definition).
fn add(cx: &mut Cx<'_>, apps: &mut Collected, app: Option<App>, mark: Mark) {
    let Some(app) = app else { return };
    if let Some(index) = apps.apps.iter().position(|existing| existing.id == app.id) {
        let (file, first) = &apps.written_at[index];
        cx.error_at(
            mark,
            "id",
            format!("duplicate app id `{}`", app.id),
            Some(format!(
                "app ids must be unique within a tenant; `{}` is first defined at {file}:{}:{}",
                app.id, first.line, first.column
            )),
        );
        return;
    }
    apps.written_at.push((cx.file().clone(), mark));
    apps.apps.push(Arc::new(app));
}

/// One `apps_from` pattern (the current key): every file it matches is a team's app.
fn apps_from(
    pattern: &Val<Env>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    team: &TeamScope,
    apps: &mut Collected,
) {
    let Some(Env(text)) = pattern.get() else {
        return;
    };
    let full = scope.base_dir.join(text);
    let files = match cx.source.glob(&full.to_string_lossy()) {
        Ok(files) => files,
        Err(error) => {
            cx.error(
                pattern.mark,
                format!("bad glob pattern `{text}`: {error}"),
                None,
            );
            return;
        }
    };
    let matches_checked = note_pattern(cx, scope.id, &full);
    if files.is_empty() && !matches_checked {
        let hint = format!("paths are relative to {}", scope.base_dir.display());
        cx.warn(
            pattern.mark,
            format!("`{text}` matches no files"),
            Some(hint),
        );
    }
    apps.files.extend(files.iter().cloned());
    for file in files {
        // The file under `portico check` is compiled last (`checked_app`), from the text checked.
        if cx
            .checking
            .is_some_and(|checking| is_checked(cx, checking, &file))
        {
            continue;
        }
        let display = file.display().to_string();
        let Some(real_dir) = confined_dir(cx, &file, &display, pattern.mark) else {
            continue;
        };
        let text = match cx.source.read(&file) {
            Ok(text) => text,
            Err(error) => {
                cx.error(
                    pattern.mark,
                    format!("cannot read {display}: {error}"),
                    None,
                );
                continue;
            }
        };
        let read = TeamFile {
            path: &file,
            display: &display,
            text: &text,
            real_dir,
        };
        app_file(cx, read, scope, team, apps);
    }
}

/// The directory a team's file is confined to (as the file system opens it), or `None` when the
/// file is a link out of it (reported at `mark`): portico would read, and quote in diagnostics, a
/// file of the host.
fn confined_dir(
    cx: &mut Cx<'_>,
    file: &std::path::Path,
    display: &str,
    mark: Mark,
) -> Option<std::path::PathBuf> {
    let dir = dir_of(file);
    let real_dir = cx
        .source
        .canonicalize(dir)
        .unwrap_or_else(|_| normalise_lexically(dir));
    if let Ok(real) = cx.source.canonicalize(file) {
        if !real.starts_with(&real_dir) {
            cx.error(
                mark,
                format!(
                    "{display} is a link to `{}`, outside its directory; not read",
                    real.display()
                ),
                Some(
                    "app files must be regular files (or links within their own directory)".into(),
                ),
            );
            return None;
        }
    }
    Some(real_dir)
}

/// A team file's directory: `.` for a bare name (`cost.yaml`, as a glob of `*.yaml` beside a main
/// config named `portico.yaml` returns it). Never the empty path, which every path starts with:
/// confined to it, a file would reach anything.
fn dir_of(file: &std::path::Path) -> &std::path::Path {
    file.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
}

/// One team's app file, read.
struct TeamFile<'f> {
    path: &'f std::path::Path,
    /// How its diagnostics name it.
    display: &'f str,
    text: &'f str,
    /// What it is confined to ([`confined_dir`]).
    real_dir: std::path::PathBuf,
}

/// Compiles one team's app file under the team's confinement and adds the app to the tenant's.
fn app_file(
    cx: &mut Cx<'_>,
    file: TeamFile<'_>,
    scope: &TenantScope<'_>,
    team: &TeamScope,
    apps: &mut Collected,
) {
    let dir = dir_of(file.path);
    let team = TeamScope {
        dir: file.real_dir,
        ..team.clone()
    };
    let file_scope = TenantScope {
        base_dir: dir,
        team: Some(&team),
        ..*scope
    };
    // Diagnostics inside an app file name that file, so the team that owns it sees its own line.
    cx.in_file(file.display, |cx| {
        let Some(root) = super::parse(cx, file.text) else {
            return;
        };
        let rules = EnvRules {
            source: cx.source,
            team: Some(&team.env),
            unset: Checking::unset(cx.checking),
        };
        let (raw, issues) = de::shape::<RawApp>(&root, &rules);
        cx.issues(issues);
        let app = raw.and_then(|raw| app(&raw, root.mark, cx, &file_scope));
        add(cx, apps, app, root.mark);
    });
}

/// Whether `file` (as a glob returned it) is the app file under check.
fn is_checked(cx: &Cx<'_>, checking: &Checking, file: &std::path::Path) -> bool {
    checking
        .app
        .as_ref()
        .is_some_and(|checked| cx.source.absolute(file) == checked.absolute)
}

/// Under `portico check`: notes the tenant's pattern (`full`, as searched) and whether it matches
/// the app file under check, by the pattern, so a file that is not on disk (`check -` with
/// `--stdin-name`) matches as it would once written. Says whether it does.
fn note_pattern(cx: &Cx<'_>, tenant: &str, full: &std::path::Path) -> bool {
    let Some(checking) = cx.checking else {
        return false;
    };
    let searched = full.display().to_string();
    let mut tenants = checking.tenants.borrow_mut();
    match tenants.iter_mut().find(|(id, _)| id == tenant) {
        Some((_, patterns)) => patterns.push(searched),
        None => tenants.push((tenant.to_owned(), vec![searched])),
    }
    drop(tenants);
    let pattern = cx.source.absolute(full);
    let Some(checked) = &checking.app else {
        return false;
    };
    // As the file system's glob matches: `*` stays within one path segment.
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let matches = glob::Pattern::new(&pattern.to_string_lossy())
        .is_ok_and(|pattern| pattern.matches_path_with(&checked.absolute, options));
    let mut matched_by = checking.matched_by.borrow_mut();
    if matches && !matched_by.iter().any(|id| id == tenant) {
        matched_by.push(tenant.to_owned());
    }
    matches
}

/// Under `portico check FILE`: the app file, compiled as this tenant's if its patterns match it
/// (or it is the tenant named with `--tenant`). Last, after the shared apps: an id it shares with
/// any other app of the tenant is reported on it, naming where the other is written.
fn checked_app(cx: &mut Cx<'_>, scope: &TenantScope<'_>, team: &TeamScope, apps: &mut Collected) {
    let Some(checking) = cx.checking else { return };
    let Some(checked) = &checking.app else { return };
    {
        let mut tenants = checking.tenants.borrow_mut();
        if !tenants.iter().any(|(id, _)| id == scope.id) {
            tenants.push((scope.id.to_owned(), Vec::new()));
        }
    }
    let matched = checking.matched_by.borrow().iter().any(|id| id == scope.id);
    let wanted = match &checked.tenant {
        Some(tenant) => tenant == scope.id,
        None => matched,
    };
    if !wanted {
        return;
    }
    checking.compiled_by.borrow_mut().push(scope.id.to_owned());
    let start = Mark { line: 1, column: 1 };
    let real_dir = cx.in_file(&checked.name, |cx| {
        if !matched && checked.located {
            cx.warn(
                start,
                format!(
                    "no `apps_from` pattern of tenant `{}` matches {}: `portico serve` does not read it",
                    scope.id, checked.name
                ),
                Some(format!(
                    "move it where the tenant's patterns look, or ask the platform to add one in {}",
                    team.env.main_file
                )),
            );
        }
        confined_dir(cx, &checked.file, &checked.name, start)
    });
    if let Some(real_dir) = real_dir {
        let file = TeamFile {
            path: &checked.file,
            display: &checked.name,
            text: &checked.text,
            real_dir,
        };
        app_file(cx, file, scope, team, apps);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    #[test]
    fn app_file_rules() {
        let mut source = MemorySource::default();
        source.env.insert("REGION".into(), "eu".into());
        let file = PathBuf::from("/etc/portico/apps.d/cost.yaml");
        let main = format!("{BASE}    apps_from: apps.d/*.yaml\n    apps_env: [REGION]\n");
        let mut report = Vec::new();
        for (name, text) in [
            (
                "a good file",
                "id: cost\naccess: { roles: [developer] }\nupstream: \"http://cost-${REGION}:3000\"\n",
            ),
            (
                "errors point into the file",
                "id: cost\naccess: { roles: [finance] }\nstatic: ../../etc\nidentity: [access_token]\ncolour: red\n",
            ),
            (
                "a variable the tenant does not allow",
                "id: cost\naccess: { roles: [developer] }\nupstream: \"http://${HOME}:1\"\n",
            ),
            // The main file defines `cost` as well (below): the file's copy names the first one.
            (
                "an id the main file took",
                "id: billing\naccess: { roles: [developer] }\nupstream: http://billing:3000\n",
            ),
            ("a syntax error", "id: [cost\n"),
            ("not a mapping", "- id: cost\n"),
        ] {
            source.files.insert(file.clone(), text.to_owned());
            let main = if name == "an id the main file took" {
                format!(
                    "{main}    apps:\n      - {{ id: billing, access: {{ roles: [developer] }}, static: ./d }}\n"
                )
            } else {
                main.clone()
            };
            report.push((name, main));
            let rendered = table(&source, &report[report.len() - 1..]);
            report.pop();
            insta::assert_snapshot!(name.replace(' ', "_"), rendered);
        }
        // A team's `.yml` beside the `*.yaml` the tenant reads: said, not silently skipped.
        source.files.insert(
            file.clone(),
            "id: cost\naccess: { roles: [developer] }\nstatic: ./d\n".into(),
        );
        source.files.insert(
            PathBuf::from("/etc/portico/apps.d/ledger.yml"),
            "id: ledger\n".into(),
        );
        let unread = table(&source, &[("a .yml file no pattern reads", main.clone())]);
        insta::assert_snapshot!("a_yml_file_no_pattern_reads", unread);
        source.files.clear();
        let none = table(&source, &[("a pattern that matches nothing", main)]);
        insta::assert_snapshot!("matches_nothing", none);
    }
}
