//! Rules for one app, wherever it is written (a tenant's `apps`, a team's app file, a tenant's copy of a
//! shared app; see `app_sources`): a valid, unreserved id, an access rule (there are no public apps),
//! exactly one target (in a team's file, one inside what the team may reach), and navigation nodes
//! whose views are canonical paths.

use super::{RESERVED_SEGMENTS, TenantScope, access, upstream, values};
use crate::assets;
use crate::config::Severity;
use crate::config::diagnose::{Cx, suggest};
use crate::config::model::{
    App, AppId, AppMount, AppTarget, CompressMode, CookieMode, IdentityModes, NavNode, PATH_MODES,
    Text,
};
use crate::config::raw::{Env, FlexBool, RawApp, RawNode, Shown, Val, field};
use crate::config::source::normalise_lexically;
use crate::config::yaml::Mark;
use crate::rbac::{AccessPolicy, AccessRule, PathCase};

/// An app; the current key is its place in a list (`apps[3]`), or the root of an app file.
pub(super) fn app(
    raw: &RawApp,
    mark: Mark,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<App> {
    let Some(id_val) = &raw.id else {
        cx.missing(
            mark,
            "id",
            "give the app a unique id, e.g. `id: cost-insights`",
        );
        return None;
    };
    let Shown(id) = id_val.get()?;
    // Name the app in key paths from here on, so errors read `apps[cost-insights].access`.
    let path = cx.path();
    let named = match path.rsplit_once('[') {
        _ if path.is_empty() => String::new(),
        Some((head, _)) => format!("{head}[{id}]"),
        None => format!("{path}[{id}]"),
    };
    cx.at_path(&named, |cx| {
        named_app(raw, id, id_val.mark, mark, cx, scope)
    })
}

fn named_app(
    raw: &RawApp,
    id: &str,
    id_mark: Mark,
    mark: Mark,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<App> {
    let valid_id = cx.at("id", |cx| values::identifier(cx, id, id_mark, "app id"));
    if valid_id && RESERVED_SEGMENTS.contains(&id) {
        cx.error_at(
            id_mark,
            "id",
            format!("app id `{id}` collides with the reserved path /{id}"),
            Some(format!(
                "reserved: {}; pick another id",
                RESERVED_SEGMENTS.join(", ")
            )),
        );
    }
    let shown = |value: &Option<Val<Shown>>| field(value).flatten().map(|Shown(text)| text.clone());
    let label = values::text_field(cx, "label", &raw.label);
    let category = values::text_field(cx, "category", &raw.category);
    let description = values::text_field(cx, "description", &raw.description);
    let luigi_client = field(&raw.luigi_client).map(|flag| flag.map(|FlexBool(on)| *on));
    let cache = cache(raw, cx);
    let requests = match &raw.rules {
        Some(list) => cx.at("rules", |cx| access::request_rules(list, cx, scope)),
        None => Some(Vec::new()),
    };
    let (cookies, identity, case) = settings(raw, cx, scope);
    let compress = compress_mode(raw, cx);
    let access = match &raw.access {
        Some(val) => cx.at("access", |cx| access::access_rule(val, cx, scope)),
        None if cx.misspelt(mark, "access") => None,
        None => {
            cx.error_at(
                mark,
                "access",
                format!("app `{id}` has no access rule"),
                Some(
                    "default deny: add `access: { roles: [...] }`; there are no public apps".into(),
                ),
            );
            None
        }
    };
    let target = target(raw, mark, cx, scope);
    let nodes = match &raw.nodes {
        Some(list) => cx
            .at("nodes", |cx| {
                nav_nodes(list, cx, scope, (&[], access.as_ref()))
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let access = access?;
    // Unsaid, an app is taken not to load Luigi Client: Luigi then shows no spinner that waits for a
    // handshake that may never come. portico's own bundles load it.
    let luigi_client = luigi_client?.unwrap_or(matches!(&target, Some(AppTarget::Embedded(_))));
    let mut paths = Vec::new();
    collect_path_rules(&nodes, &mut paths);
    Some(App {
        policy: AccessPolicy {
            app: access.clone(),
            paths,
            requests: requests?,
            case: case?,
        },
        id: AppId::new(id),
        label: label?.unwrap_or_else(|| Text::new(id)),
        category: category?,
        icon: shown(&raw.icon),
        owner: shown(&raw.owner),
        description: description?,
        catalog_ref: catalog_ref(raw, cx, scope)?,
        access,
        target: target?,
        nodes,
        luigi_client,
        identity: identity?,
        cookies: cookies?,
        mount: AppMount::Apps,
        cache: cache?,
        compress: compress?,
    })
    .filter(|_| valid_id)
}

/// `catalog_ref: kind:namespace/name`: an entity of the tenant's catalog, in one of its namespaces
/// (or shared ones) when the catalog is scoped. `Some(None)` when absent, `None` when broken.
fn catalog_ref(raw: &RawApp, cx: &mut Cx<'_>, scope: &TenantScope<'_>) -> Option<Option<String>> {
    let Some(val) = &raw.catalog_ref else {
        return Some(None);
    };
    let Shown(text) = val.get()?;
    let entity_ref = text.to_ascii_lowercase();
    let hint = "an entity ref `kind:namespace/name`, e.g. `component:acme/cost-insights`";
    let parts = entity_ref.split_once(':').and_then(|(kind, rest)| {
        rest.split_once('/')
            .map(|(namespace, name)| (kind, namespace, name))
    });
    let Some((_, namespace, _)) = parts.filter(|(kind, namespace, name)| {
        !kind.is_empty()
            && kind.bytes().all(|b| b.is_ascii_alphanumeric())
            && values::namespace_ok(namespace)
            && values::namespace_ok(name)
    }) else {
        cx.error_at(
            val.mark,
            "catalog_ref",
            format!("`{text}` is not a full entity ref"),
            Some(hint.into()),
        );
        return None;
    };
    match scope.backstage {
        // The tenant's Backstage is broken (reported): nothing to check against.
        None => Some(Some(entity_ref)),
        Some(None) => {
            cx.error_at(
                val.mark,
                "catalog_ref",
                "`catalog_ref` names a catalog entity, but the tenant has no `backstage:`",
                Some("add the tenant's `backstage: { url: ... }`, or remove `catalog_ref`".into()),
            );
            None
        }
        Some(Some(settings)) => {
            let readable =
                !settings.scoped() || settings.readable_namespaces().any(|own| own == namespace);
            if readable {
                return Some(Some(entity_ref));
            }
            let listing = settings
                .readable_namespaces()
                .collect::<Vec<_>>()
                .join(", ");
            cx.error_at(
                val.mark,
                "catalog_ref",
                format!(
                    "`{namespace}` is not one of tenant `{}`'s catalog namespaces",
                    scope.id
                ),
                Some(format!("the tenant's namespaces: {listing}")),
            );
            None
        }
    }
}

/// `cache:` (default off): only for an upstream, since a static bundle is already served from memory
/// or disk without a round trip.
fn cache(raw: &RawApp, cx: &mut Cx<'_>) -> Option<bool> {
    let on = field(&raw.cache)?.is_some_and(|FlexBool(on)| *on);
    if on && raw.upstream.is_none() {
        let mark = raw.cache.as_ref().map(|val| val.mark)?;
        cx.error_at(
            mark,
            "cache",
            "`cache` keeps an upstream's responses; this app has no upstream",
            Some("remove `cache:`: static files are served without a round trip already".into()),
        );
        return None;
    }
    Some(on)
}

/// `cookies`, `identity` and `paths` of an app.
fn settings(
    raw: &RawApp,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> (Option<CookieMode>, Option<IdentityModes>, Option<PathCase>) {
    let cookies = values::optional(
        cx,
        "cookies",
        raw.cookies.as_ref(),
        CookieMode::default(),
        |text| {
            let found = CookieMode::ALL.iter().find(|(name, _)| *name == text);
            found.map(|(_, mode)| *mode).ok_or_else(|| {
                let names: Vec<&str> = CookieMode::ALL.iter().map(|(name, _)| *name).collect();
                values::Bad {
                    message: format!("unknown cookie mode `{text}`"),
                    hint: Some(suggest(
                        text,
                        &names,
                        "`jar` (the default: kept by portico, never in the browser), `scoped` \
                     (in the browser below /apps/<id>/, readable by every app's script) or `drop`",
                    )),
                }
            })
        },
    );
    let identity = match &raw.identity {
        Some(list) => cx.at("identity", |cx| identity(list, cx, scope)),
        None => Some(IdentityModes::default()),
    };
    // How node prefixes and rule globs compare letter case (see `rbac::PathCase`).
    let case = values::optional(
        cx,
        "paths",
        raw.paths.as_ref(),
        PathCase::default(),
        |text| match PATH_MODES.iter().find(|(name, _)| *name == text) {
            Some((_, case)) => Ok(*case),
            None => Err(values::Bad::new(
                format!("unknown path mode `{text}`"),
                "`case_insensitive` (the default: `/Reports` is `/reports`, as Express routes) or `case_sensitive`",
            )),
        },
    );
    (cookies, identity, case)
}

/// `compress: assets | text | off` of an app.
fn compress_mode(raw: &RawApp, cx: &mut Cx<'_>) -> Option<CompressMode> {
    values::optional(
        cx,
        "compress",
        raw.compress.as_ref(),
        CompressMode::default(),
        |text| {
            let found = CompressMode::ALL.iter().find(|(name, _)| *name == text);
            found.map(|(_, mode)| *mode).ok_or_else(|| {
                let names: Vec<&str> = CompressMode::ALL.iter().map(|(name, _)| *name).collect();
                values::Bad {
                    message: format!("unknown compress mode `{text}`"),
                    hint: Some(suggest(
                        text,
                        &names,
                        "`assets` (the default: scripts, stylesheets, SVG, fonts), `text` (also \
                         HTML, JSON and other text; read the BREACH note in the README first) or `off`",
                    )),
                }
            })
        },
    )
}

/// `identity: [assertion, headers, access_token]` or `identity: none` (the current key).
fn identity(
    list: &Val<crate::config::raw::Texts>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<IdentityModes> {
    let mut modes = IdentityModes::NONE;
    for item in &list.get()?.0 {
        let Some(Env(mode)) = item.get() else {
            continue;
        };
        match mode.as_str() {
            "assertion" => modes.assertion = true,
            "headers" => modes.headers = true,
            // The user's IdP token reaches whatever else accepts it, not only this app: only the
            // platform (main file, shared_apps) may send it upstream.
            "access_token" => match scope.team {
                Some(team) => cx.error(
                    item.mark,
                    "an app file may not forward the user's access token",
                    Some(format!(
                        "the token is valid beyond this app; the platform can define the app in {} (`apps:` or `shared_apps:`) if it must have it",
                        team.env.main_file
                    )),
                ),
                None => modes.access_token = true,
            },
            "none" => {}
            other => cx.error(
                item.mark,
                format!("unknown identity mode `{other}`"),
                Some("choose from assertion, headers, access_token, or none".into()),
            ),
        }
    }
    Some(modes)
}

/// Where the app's content comes from: exactly one of `upstream` and `static`.
fn target(raw: &RawApp, mark: Mark, cx: &mut Cx<'_>, scope: &TenantScope<'_>) -> Option<AppTarget> {
    match (&raw.upstream, &raw.static_dir) {
        (Some(_), Some(static_dir)) => {
            let message = "an app has either `upstream` or `static`, not both";
            cx.error_at(static_dir.mark, "static", message, None);
            None
        }
        (None, None) => {
            cx.error(
                mark,
                "the app has neither `upstream` nor `static`",
                Some("add `upstream: http://host:port` or `static: ./dist`".into()),
            );
            None
        }
        (Some(upstream), None) => upstream::app_upstream(upstream, cx, &upstream::Files::of(scope))
            .map(AppTarget::Upstream),
        (None, Some(static_dir)) => {
            let Env(dir) = static_dir.get()?;
            cx.at("static", |cx| {
                static_target(dir, static_dir.mark, cx, scope)
            })
        }
    }
}

/// `static:` (the current key): an embedded bundle, or a directory; in a team's file, one below its
/// own directory or an allowed root, decided on the resolved path.
fn static_target(
    dir: &str,
    mark: Mark,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
) -> Option<AppTarget> {
    if let Some(name) = dir.strip_prefix("embedded:") {
        if name == super::tenant::CATALOG_APP && matches!(scope.backstage, Some(None)) {
            let hint = "the Catalog app reads the tenant's catalog through `/backstage/api/catalog`: add the tenant's `backstage: { url: ... }`";
            cx.error(
                mark,
                "the `catalog` bundle needs the tenant's Backstage",
                Some(hint.into()),
            );
            return None;
        }
        if assets::DemoApps::has_bundle(name) {
            return Some(AppTarget::Embedded(name.to_owned()));
        }
        let hint = format!(
            "embedded bundles: {}",
            assets::DemoApps::bundles().join(", ")
        );
        cx.error(mark, format!("no embedded bundle `{name}`"), Some(hint));
        return None;
    }
    let full = scope.base_dir.join(dir.trim_start_matches("./"));
    if !cx.source.is_dir(&full) {
        cx.error(
            mark,
            format!("`{}` is not a directory", full.display()),
            Some("paths are relative to the file that names them".into()),
        );
        return None;
    }
    let Some(team) = scope.team else {
        return Some(AppTarget::StaticDir(full));
    };
    // `..`, an absolute path and a symlink that leaves the tree are all the same escape.
    let resolved = cx
        .source
        .canonicalize(&full)
        .unwrap_or_else(|_| normalise_lexically(&full));
    let inside = resolved.starts_with(&team.dir)
        || team
            .static_roots
            .iter()
            .any(|root| resolved.starts_with(root));
    if inside {
        // Serve what was checked: a link swapped later cannot move the bundle.
        return Some(AppTarget::StaticDir(resolved));
    }
    let mut allowed = vec![team.dir.display().to_string()];
    allowed.extend(team.static_roots.iter().map(|r| r.display().to_string()));
    cx.error(
        mark,
        format!(
            "`static: {dir}` resolves to `{}`, outside the app file's directory",
            resolved.display()
        ),
        Some(format!(
            "an app file serves only files below its own directory or a directory its tenant allows ({}); the platform can allow more with `apps_static_roots` in tenant `{}` in {}",
            allowed.join(", "),
            team.env.tenant,
            team.env.main_file
        )),
    );
    None
}

/// `nodes:` (the current key): navigation entries, each checked; broken ones are left out.
/// `above`: the path parameters of the nodes above (`:incident`), which a view may use, and the
/// nearest access rule above (a node's, else the app's).
fn nav_nodes(
    list: &Val<Vec<Val<RawNode>>>,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    above: (&[String], Option<&AccessRule>),
) -> Option<Vec<NavNode>> {
    let mut nodes: Vec<NavNode> = Vec::new();
    for (index, item) in list.get()?.iter().enumerate() {
        let Some(raw) = item.get() else { continue };
        let node = cx.at(&format!("[{index}]"), |cx| {
            nav_node(raw, item.mark, cx, scope, (&nodes, above))
        });
        nodes.extend(node);
    }
    Some(nodes)
}

fn nav_node(
    raw: &RawNode,
    mark: Mark,
    cx: &mut Cx<'_>,
    scope: &TenantScope<'_>,
    (siblings, (params, rule_above)): (&[NavNode], (&[String], Option<&AccessRule>)),
) -> Option<NavNode> {
    let required = |cx: &mut Cx<'_>, value: &Option<Val<Shown>>, key: &str, hint: &str| match value
    {
        None => {
            cx.missing(mark, key, hint);
            None
        }
        Some(val) => val.get().map(|Shown(text)| (text.clone(), val.mark)),
    };
    let segment = required(
        cx,
        &raw.path,
        "path",
        "the node's path segment, e.g. `path: reports`",
    );
    let label = match &raw.label {
        None => {
            cx.missing(mark, "label", "the text shown in the navigation");
            None
        }
        Some(val) => values::translated(cx, "label", val),
    };
    let view = required(
        cx,
        &raw.view,
        "view",
        "the path inside the app to show, e.g. `view: /reports`",
    );
    let icon = field(&raw.icon).flatten().map(|Shown(icon)| icon.clone());
    let access = match &raw.access {
        Some(val) => cx
            .at("access", |cx| access::access_rule(val, cx, scope))
            .map(Some),
        None => Some(None),
    };
    // A path parameter (`path: ":incident"`) is one more name the views below may use.
    let mut params_below = params.to_vec();
    if let Some(param) = segment
        .as_ref()
        .and_then(|(text, _)| text.strip_prefix(':'))
    {
        params_below.push(param.to_owned());
    }
    if let (Some(Some(rule)), Some(above), Some(val)) = (&access, rule_above, &raw.access) {
        narrowing_roles(rule, above, val.mark, cx);
    }
    let nearest_rule = access.as_ref().and_then(Option::as_ref).or(rule_above);
    let children = match &raw.nodes {
        Some(list) => cx.at("nodes", |cx| {
            nav_nodes(list, cx, scope, (&params_below, nearest_rule))
        }),
        None => Some(Vec::new()),
    };
    let ((segment, segment_mark), label, (view, view_mark)) = (segment?, label?, view?);
    let (access, children) = (access?, children?);
    cx.at("path", |cx| {
        check_segment(&segment, segment_mark, cx, siblings)
    })?;
    if let Err(message) = values::check_view(&view) {
        let hint = "a path inside the app such as /reports; no `..`, `?` or `#`";
        cx.error_at(view_mark, "view", message, Some(hint.into()));
        return None;
    }
    check_view_params(&view, view_mark, &params_below, access.is_some(), cx)?;
    Some(NavNode {
        path: segment,
        label,
        view,
        icon,
        access,
        children,
    })
}

/// A node's rule narrows the rule above it: a user needs a role of each. A role the node lets in that
/// the rule above does not is not a way in on its own, which surprises people; said as a warning.
fn narrowing_roles(rule: &AccessRule, above: &AccessRule, mark: Mark, cx: &mut Cx<'_>) {
    let outside: Vec<&str> = rule
        .roles
        .iter()
        .filter(|role| !above.roles.contains(role))
        .map(|role| role.0.as_str())
        .collect();
    if outside.is_empty() {
        return;
    }
    let above_roles: Vec<&str> = above.roles.iter().map(|role| role.0.as_str()).collect();
    cx.report_at(
        Severity::Warning,
        mark,
        "access",
        format!(
            "the node lets in {}, which the rule above it ({}) does not: only users with both reach it",
            outside.iter().map(|role| format!("`{role}`")).collect::<Vec<_>>().join(", "),
            above_roles.join(", ")
        ),
        Some("a node's rule narrows its app's (or parent's), it never widens it: to let those users in, add the role to the rule above too".into()),
    );
}

/// A view's path parameters (`/incidents/:incident`): each names a parameter of this node or one above
/// it, and such a node carries no `access` of its own. Its rule would be a prefix with `:incident` in
/// it, which no request path ever matches, so it would silently protect nothing; the rule belongs on
/// the nearest node above whose view has no parameter, and covers every value below it.
fn check_view_params(
    view: &str,
    mark: Mark,
    params: &[String],
    has_access: bool,
    cx: &mut Cx<'_>,
) -> Option<()> {
    let used: Vec<&str> = view
        .split('/')
        .filter_map(|segment| segment.strip_prefix(':'))
        .collect();
    if let Some(unknown) = used.iter().find(|name| !params.iter().any(|p| p == *name)) {
        let hint = if params.is_empty() {
            "only a node whose path (or a parent's) is a parameter, `path: \":incident\"`, may use one".to_owned()
        } else {
            format!(
                "the parameters here: {}",
                params
                    .iter()
                    .map(|p| format!("`:{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        cx.error_at(
            mark,
            "view",
            format!("view `{view}` uses `:{unknown}`, which no node above names"),
            Some(hint),
        );
        return None;
    }
    if has_access && !used.is_empty() {
        cx.error_at(
            mark,
            "access",
            format!(
                "a node whose view has a path parameter (`{view}`) cannot have its own `access`"
            ),
            Some(
                "put the rule on the node above it: a node's rule covers every path below its view"
                    .into(),
            ),
        );
        return None;
    }
    Some(())
}

/// A node's path segment (the current key): an identifier, or a path parameter (`:incident`, at most
/// one among siblings), unreserved, unique among its siblings.
fn check_segment(segment: &str, mark: Mark, cx: &mut Cx<'_>, siblings: &[NavNode]) -> Option<()> {
    if let Some(param) = segment.strip_prefix(':') {
        if !values::identifier(cx, param, mark, "path parameter") {
            return None;
        }
        if siblings
            .iter()
            .any(|existing| existing.path.starts_with(':'))
        {
            cx.error(
                mark,
                format!("a second path parameter `{segment}` among the same nodes"),
                Some("one parameter per level: Luigi matches the first one for any segment".into()),
            );
            return None;
        }
        return Some(());
    }
    if !values::identifier(cx, segment, mark, "node path") {
        return None;
    }
    if RESERVED_SEGMENTS.contains(&segment) {
        cx.error(
            mark,
            format!("node path `{segment}` collides with the reserved path /{segment}"),
            Some(format!("reserved: {}", RESERVED_SEGMENTS.join(", "))),
        );
        return None;
    }
    if siblings.iter().any(|existing| existing.path == segment) {
        cx.error(
            mark,
            format!("duplicate node path `{segment}`"),
            Some("sibling nodes need distinct paths".into()),
        );
        return None;
    }
    Some(())
}

fn collect_path_rules(nodes: &[NavNode], out: &mut Vec<(String, AccessRule)>) {
    for node in nodes {
        if let Some(rule) = &node.access {
            out.push((node.view.clone(), rule.clone()));
        }
        collect_path_rules(&node.children, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{BASE, table};
    use crate::config::MemorySource;

    fn app(keys: &str) -> String {
        format!("{BASE}    apps:\n      - {{ id: x, access: {{ roles: [developer] }}, {keys} }}\n")
    }

    #[test]
    fn app_rules() {
        let cases = [
            (
                "an unknown key and a bad value in one app",
                app("static: \"embedded:demo\", colour: red, luigi_client: maybe"),
            ),
            ("no target", app("label: X")),
            (
                "a node role the rule above does not let in is a warning: both are needed",
                format!(
                    "{BASE}      admin: {{ groups: [admins] }}\n    apps:\n      - {{ id: x, access: {{ roles: [developer] }}, static: ./d, nodes: [{{ path: a, label: A, view: /a, access: {{ roles: [admin] }}, nodes: [{{ path: b, label: B, view: /a/b, access: {{ roles: [admin] }} }}] }}, {{ path: c, label: C, view: /c, access: {{ roles: [developer] }} }}] }}\n"
                ),
            ),
            (
                "a misspelt key is one error, not two; a key simply missing is still said",
                format!(
                    "{BASE}    apps:\n      - {{ id: x, acess: {{ roles: [developer] }}, static: ./d }}\n      - {{ idd: y, access: {{ roles: [developer] }}, static: ./d }}\n      - {{ id: z, static: ./d }}\n"
                ),
            ),
            (
                "path parameters: two at one level, own access, a bad name, a view naming an unknown one",
                app(
                    "static: ./d, nodes: [{ path: a, label: A, view: /a, nodes: [{ path: \":id\", label: I, view: \"/a/:id\" }, { path: \":x\", label: X, view: /a/x }] }, { path: \":id\", label: B, view: \"/b/:id\", access: { roles: [developer] } }, { path: \":1d\", label: C, view: /c }, { path: p, label: P, view: \"/p/:nope\" }]",
                ),
            ),
            (
                "labels per language: an unknown language, a variable, an empty mapping, a list",
                format!(
                    "{BASE}    apps:\n      - {{ id: x, static: ./d, access: {{ roles: [developer] }}, label: {{ en: Costs, fr: Coûts }}, description: {{ de: \"${{HOME}}\" }}, category: {{}}, nodes: [{{ path: a, label: [A], view: /a }}] }}\n"
                ),
            ),
            (
                "both targets",
                app("upstream: http://127.0.0.1:1, static: ./d"),
            ),
            ("a bad upstream", app("upstream: ftp://a.example")),
            ("an unknown bundle", app("static: \"embedded:nope\"")),
            (
                "cookies, identity and path modes",
                app("static: ./d, cookies: jars, identity: [assertion, token], paths: insensitive"),
            ),
            (
                "yes and no are booleans",
                app(
                    "static: ./d, luigi_client: no, identity: none, cookies: scoped, paths: case_sensitive",
                ),
            ),
            (
                "cache: not a boolean; on a static app",
                format!(
                    "{BASE}    apps:\n      - {{ id: x, upstream: http://127.0.0.1:1, cache: always, access: {{ roles: [developer] }} }}\n      - {{ id: y, static: ./d, cache: on, access: {{ roles: [developer] }} }}\n"
                ),
            ),
            (
                "an unknown compress mode",
                app("static: ./d, compress: gzip"),
            ),
            (
                "ids: invalid, reserved, missing, duplicate",
                format!(
                    "{BASE}    apps:\n      - {{ id: X, static: ./d, access: {{ roles: [developer] }} }}\n      - {{ id: shell, static: ./d, access: {{ roles: [developer] }} }}\n      - {{ static: ./d }}\n      - {{ id: a, static: ./d, access: {{ roles: [developer] }} }}\n      - {{ id: a, static: ./d, access: {{ roles: [developer] }} }}\n"
                ),
            ),
            (
                "no access rule",
                format!("{BASE}    apps:\n      - {{ id: x, static: ./d }}\n"),
            ),
            (
                "apps is not a list",
                format!("{BASE}    apps: {{ id: x }}\n"),
            ),
            (
                "nodes",
                app(
                    "static: ./d, nodes: [{ path: shell, label: S, view: /s }, { path: r, label: R, view: r }, { path: a, label: A, view: /a }, { path: a, label: A2, view: /a2 }, { label: L, view: /v, access: { roles: [nope] } }, { path: n, label: N, view: /n, nodes: [{ path: c, label: C, view: \"/c/../d\" }] }]",
                ),
            ),
        ];
        insta::assert_snapshot!(table(&MemorySource::default(), &cases));
    }
}
