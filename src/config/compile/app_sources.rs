//! Where a tenant's apps come from, in navigation order: its own `apps`, its teams' `apps_from` files,
//! then the shared apps it enables. A team's file is read under the team's confinement (its own
//! directory, the variables its tenant allows) and its diagnostics name that file, so the team that
//! owns it sees its own line. App ids are unique within the tenant.

use std::sync::Arc;

use super::shared_apps::SharedApp;
use super::{TeamScope, TenantScope, apps::app};
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
    if files.is_empty() {
        let hint = format!("paths are relative to {}", scope.base_dir.display());
        cx.warn(
            pattern.mark,
            format!("`{text}` matches no files"),
            Some(hint),
        );
    }
    apps.files.extend(files.iter().cloned());
    for file in files {
        let display = file.display().to_string();
        let dir = file.parent().unwrap_or(scope.base_dir);
        // The directory as the file system opens it: what the team's file is confined to.
        let real_dir = cx
            .source
            .canonicalize(dir)
            .unwrap_or_else(|_| normalise_lexically(dir));
        // A team's file that is a link out of its directory would have portico read (and quote in
        // diagnostics) a file of the host.
        if let Ok(real) = cx.source.canonicalize(&file) {
            if !real.starts_with(&real_dir) {
                cx.error(
                    pattern.mark,
                    format!(
                        "{display} is a link to `{}`, outside its directory; not read",
                        real.display()
                    ),
                    Some(
                        "app files must be regular files (or links within their own directory)"
                            .into(),
                    ),
                );
                continue;
            }
        }
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
        let team = TeamScope {
            dir: real_dir,
            ..team.clone()
        };
        let file_scope = TenantScope {
            base_dir: dir,
            team: Some(&team),
            ..*scope
        };
        // Diagnostics inside an app file name that file, so the team that owns it sees its own line.
        cx.in_file(&display, |cx| {
            let Some(root) = super::parse(cx, &text) else {
                return;
            };
            let rules = EnvRules {
                source: cx.source,
                team: Some(&team.env),
            };
            let (raw, issues) = de::shape::<RawApp>(&root, &rules);
            cx.issues(issues);
            let app = raw.and_then(|raw| app(&raw, root.mark, cx, &file_scope));
            add(cx, apps, app, root.mark);
        });
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
