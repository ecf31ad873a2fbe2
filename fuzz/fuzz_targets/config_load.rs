//! The config loader on arbitrary text, from memory: a main file, and a team's app file it reads
//! through `apps_from`.
//!
//! Properties: it never panics and never hangs (YAML limits); a refused config has at least one error
//! and every diagnostic has a 1-based position; an accepted config follows default deny (every app and
//! every node rule names a role), and no browser-visible value (label, category, icon, owner, title,
//! node label) carries the value of an environment variable unless the text itself spells it out; a
//! team's static directory stays below the team's directory or `/srv/allowed`.
#![no_main]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use portico::config::{AppTarget, MemorySource, NavNode, load_str};

/// What the fuzzer may reference as `${SECRET}`; it must never show up in the browser.
const SECRET: &str = "zq-secret-7731";

fn nodes_shown(nodes: &[NavNode], out: &mut Vec<String>) {
    for node in nodes {
        out.push(node.label.clone());
        out.push(node.view.clone());
        out.extend(node.icon.clone());
        nodes_shown(&node.children, out);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `---8<---` splits the input into the main file and one team app file.
    let (main, app) = text.split_once("---8<---").unwrap_or((text, ""));
    let mut files = HashMap::new();
    files.insert(PathBuf::from("/cfg/apps.d/team.yaml"), app.to_owned());
    let env = [("SECRET", SECRET), ("HOME", SECRET), ("PORT", "9000")]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let source = MemorySource { files, env };
    match load_str(&source, "portico.yaml", main, Path::new("/cfg")) {
        Err(error) => {
            assert!(error.errors().next().is_some(), "refused without an error");
            for diagnostic in &error.diagnostics {
                assert!(diagnostic.mark.line >= 1 && diagnostic.mark.column >= 1);
            }
        }
        Ok(loaded) => {
            for tenant in &loaded.config.tenants {
                let mut shown = vec![tenant.branding.title.clone()];
                shown.extend(tenant.branding.logo.clone());
                shown.extend(tenant.luigi.side_nav_footer.clone());
                for app in &tenant.apps {
                    assert!(!app.access.roles.is_empty(), "default deny");
                    assert!(!app.policy.paths.iter().any(|(_, r)| r.roles.is_empty()));
                    shown.push(app.label.clone());
                    shown.push(app.id.as_str().to_owned());
                    shown.extend(app.category.clone());
                    shown.extend(app.icon.clone());
                    shown.extend(app.owner.clone());
                    nodes_shown(&app.nodes, &mut shown);
                    if let AppTarget::StaticDir(dir) = &app.target {
                        // The main file's own `static:` may point anywhere, and so may roots other
                        // than the seed's; otherwise only the team file's app can be static here.
                        let roots_fixed = !main.contains("apps_static_roots")
                            || main.contains("apps_static_roots: [/srv/allowed]\n");
                        if roots_fixed && !main.contains("static:") {
                            assert!(
                                dir.starts_with("/cfg/apps.d") || dir.starts_with("/srv/allowed"),
                                "{dir:?}"
                            );
                        }
                    }
                }
                if !text.contains(SECRET) {
                    for value in shown {
                        assert!(!value.contains(SECRET), "{value}");
                    }
                }
            }
        }
    }
});
