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
    let mut apps: Vec<Arc<App>> = Vec::new();
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
    });
    for shared in shared.iter().filter(|shared| shared.enabled_by(scope.id)) {
        cx.at_path(&format!("shared_apps[{}]", shared.index), |cx| {
            let app = app(&shared.for_tenant(scope.id), shared.mark, cx, scope);
            add(cx, &mut apps, app, shared.mark);
        });
    }
    apps
}

/// Adds a compiled app unless its id is taken (reported at the app, the current key).
fn add(cx: &mut Cx<'_>, apps: &mut Vec<Arc<App>>, app: Option<App>, mark: Mark) {
    let Some(app) = app else { return };
    if apps.iter().any(|existing| existing.id == app.id) {
        cx.error_at(
            mark,
            "id",
            format!("duplicate app id `{}`", app.id),
            Some("app ids must be unique within a tenant".into()),
        );
        return;
    }
    apps.push(Arc::new(app));
}

/// One `apps_from` pattern (the current key): every file it matches is a team's app.
fn apps_from(
    pattern: &Val<Env>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    team: &TeamScope,
    apps: &mut Vec<Arc<App>>,
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
            ("a syntax error", "id: [cost\n"),
            ("not a mapping", "- id: cost\n"),
        ] {
            source.files.insert(file.clone(), text.to_owned());
            report.push((name, main.clone()));
            let rendered = table(&source, &report[report.len() - 1..]);
            report.pop();
            insta::assert_snapshot!(name.replace(' ', "_"), rendered);
        }
        source.files.clear();
        let none = table(&source, &[("a pattern that matches nothing", main)]);
        insta::assert_snapshot!("matches_nothing", none);
    }
}
