//! Roles and the one access decision.
//!
//! A tenant's role map turns IdP groups into portal roles; an app's `AccessPolicy` says which roles may
//! reach which part of it. `decide` is the only function that answers "may this user reach this app at
//! this path": the shell calls it to build the navigation and the proxy calls it before forwarding, so
//! nothing hidden from the navigation is reachable through the proxy (BRIEF invariant 1).
//!
//! This module is pure: no IO, no config parsing, no HTTP. Default deny is structural: a rule lists the
//! roles it allows and nothing else passes.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use http::Method;

/// A portal role name, as written in a tenant's `roles:` map.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(pub String);

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles one user holds in one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(pub BTreeSet<RoleName>);

impl Roles {
    /// Role names in a stable order, for headers, logs and the shell's context.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|role| role.0.as_str()).collect()
    }
}

/// A tenant's map from IdP groups to portal roles.
#[derive(Debug, Clone, Default)]
pub struct RoleMap {
    /// Each role with the groups that grant it. Every role has at least one group (config checks it).
    pub roles: Vec<(RoleName, Vec<String>)>,
    /// What each role is for, where config says (`description:`): shown to users on "My access".
    pub descriptions: std::collections::BTreeMap<RoleName, crate::config::Text>,
}

impl RoleMap {
    /// The roles that these groups grant. Group names compare exactly, as IdPs send them.
    pub fn roles_for(&self, groups: &[String]) -> Roles {
        let granted = self
            .roles
            .iter()
            .filter(|(_, role_groups)| role_groups.iter().any(|group| groups.contains(group)))
            .map(|(role, _)| role.clone())
            .collect();
        Roles(granted)
    }

    /// Whether the map defines this role.
    pub fn defines(&self, role: &str) -> bool {
        self.roles.iter().any(|(name, _)| name.0 == role)
    }

    /// Each of these roles with the groups that grant it: what a refused user would have to ask for
    /// (the forbidden explanation in the shell and `portico explain` both say it so).
    pub fn needs(&self, needed: &[RoleName]) -> Vec<Need<'_>> {
        needed
            .iter()
            .filter_map(|role| {
                self.roles
                    .iter()
                    .find(|(name, _)| name == role)
                    .map(|(name, groups)| Need {
                        role: name.0.as_str(),
                        groups,
                    })
            })
            .collect()
    }
}

/// A role a user lacks, and the groups that would give it.
#[derive(Debug, PartialEq, serde::Serialize)]
pub struct Need<'a> {
    pub role: &'a str,
    pub groups: &'a [String],
}

/// The roles that may pass one rule. Never empty: an empty rule would deny everyone, which config reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub roles: Vec<RoleName>,
}

impl AccessRule {
    /// Whether one of `roles` is among the rule's.
    pub fn allows(&self, roles: &Roles) -> bool {
        self.roles.iter().any(|role| roles.0.contains(role))
    }
}

/// Everything that decides access to one app: its own rule, and the narrower rules of its navigation nodes,
/// keyed by the path (inside the app) that each node's view lives under.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    pub app: AccessRule,
    /// `(path prefix inside the app, rule)`; a request path under a prefix needs that rule too.
    pub paths: Vec<(String, AccessRule)>,
    /// The app's own method + path-glob rules (`rules:` in config); a matching request needs that rule too.
    pub requests: Vec<RequestRule>,
    /// Whether node prefixes and rule globs compare letter case (`paths: case_sensitive`).
    pub case: PathCase,
}

impl AccessPolicy {
    /// The policy of an app with one rule and nothing narrower (portico's built-in apps).
    pub fn only(app: AccessRule) -> Self {
        AccessPolicy {
            app,
            paths: Vec::new(),
            requests: Vec::new(),
            case: PathCase::default(),
        }
    }
}

/// How an app's paths compare letter case (`paths:` of an app in config).
///
/// Case-insensitive is the default because Express, ASP.NET and IIS route that way out of the box (and
/// Spring can be told to): a rule on `/reports` that `/REPORTS` slipped past would be no rule. An app
/// whose upstream really serves different things at `/a` and `/A` opts out with `case_sensitive`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathCase {
    #[default]
    Insensitive,
    Sensitive,
}

impl PathCase {
    /// The form both sides of every comparison are brought to: unchanged when case-sensitive, else each
    /// character's simple upper case, then its lower case. That equates at least what JavaScript's `i`
    /// regexes (Express) and Java's `equalsIgnoreCase` (Spring) equate: `ſ`, U+212A (Kelvin sign)
    /// and `İ` fold to `s`, `k` and `i`. Only ever widens what a narrowing rule covers.
    pub fn fold<'a>(self, text: &'a str) -> Cow<'a, str> {
        let already_folded = !text
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii());
        if self == PathCase::Sensitive || already_folded {
            return Cow::Borrowed(text);
        }
        Cow::Owned(text.chars().map(fold_char).collect())
    }
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut upper = c.to_uppercase();
    // A character whose upper case is several characters (`ß` → `SS`) keeps its own: simple mapping.
    let upper = match (upper.next(), upper.next()) {
        (Some(single), None) => single,
        _ => c,
    };
    // `İ` lowers to `i` + combining dot; Java's simple mapping gives `i`, which is the first character.
    upper.to_lowercase().next().unwrap_or(upper)
}

/// A narrowing rule for some requests inside an app, e.g. `POST /admin/**` needs `platform-admin`.
#[derive(Debug, Clone)]
pub struct RequestRule {
    /// The methods it covers (config accepts the seven standard ones); empty means every method.
    pub methods: Vec<Method>,
    pub path: PathGlob,
    pub rule: AccessRule,
}

/// A path pattern: `*` matches within one segment, `**` any number of whole segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathGlob {
    pattern: String,
    /// The pattern's segments as written, and folded to lower case (see [`PathCase::fold`]).
    segments: Vec<GlobSegment>,
    folded: Vec<GlobSegment>,
}

/// One segment of a glob, split once when the glob is built.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobSegment {
    /// `**`: any number of whole segments, none included.
    AnySegments,
    /// Text with `*` wildcards; `suffixed` is the same plus `.*` when the text has no dot, because
    /// Spring's suffix matching (and a static file server's extension negotiation) routes
    /// `/reports.json` to `/reports`.
    Text {
        text: String,
        suffixed: Option<String>,
    },
}

impl GlobSegment {
    fn of(text: &str) -> GlobSegment {
        if text == "**" {
            return GlobSegment::AnySegments;
        }
        GlobSegment::Text {
            text: text.to_owned(),
            suffixed: (!text.contains('.')).then(|| format!("{text}.*")),
        }
    }
}

impl PathGlob {
    /// `pattern` must start with `/`; config checks it.
    pub fn new(pattern: &str) -> Self {
        let split = |text: &str| -> Vec<GlobSegment> {
            text.split('/')
                .filter(|s| !s.is_empty())
                .map(GlobSegment::of)
                .collect()
        };
        PathGlob {
            pattern: pattern.to_owned(),
            segments: split(pattern),
            folded: split(&PathCase::Insensitive.fold(pattern)),
        }
    }

    /// A pattern from config: it must start with `/` and may not hold `?`, `#`, `%`, `;`, `\\`, dot
    /// segments or segments ending in a dot, because it is matched against canonical paths that
    /// never contain them (see `proxy::path`).
    pub fn parse(pattern: &str) -> Option<Self> {
        let valid = pattern.starts_with('/')
            && !pattern.contains(['?', '#', '%', ';', '\\'])
            && !pattern.split('/').any(|s| s.ends_with('.'));
        valid.then(|| PathGlob::new(pattern))
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `path` matches exactly as written: case-sensitive, no suffix equivalence. For allow-lists,
    /// where a wider match would let more through. Access rules, which narrow, use [`decide`].
    pub fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match_segments(&self.segments, &path, false)
    }

    /// Whether a rule with this glob covers `path` (its segments, already folded by `case`): every
    /// spelling an upstream may route to the same place, so the rule cannot be stepped around.
    fn covers(&self, path: &[&str], case: PathCase) -> bool {
        let pattern = match case {
            PathCase::Insensitive => &self.folded,
            PathCase::Sensitive => &self.segments,
        };
        match_segments(pattern, path, true)
    }
}

/// Glob matching over segments in O(pattern × path) steps: the classic wildcard algorithm, where
/// `**` plays the star and every other segment matches exactly one path segment. On a mismatch it
/// backtracks only to the most recent `**`, which then swallows one more segment; earlier `**` never
/// need revisiting, because the later one can absorb anything they would have. (The recursive matcher
/// this replaces tried every split for every `**`: exponential in their number.)
fn match_segments(pattern: &[GlobSegment], path: &[&str], wide: bool) -> bool {
    let (mut p, mut s) = (0, 0);
    // After a `**`: the pattern index behind it, and the path index it has swallowed up to.
    let mut resume: Option<(usize, usize)> = None;
    while s < path.len() {
        match pattern.get(p) {
            Some(GlobSegment::AnySegments) => {
                p += 1;
                resume = Some((p, s));
            }
            Some(GlobSegment::Text { text, suffixed })
                if match_segment(text, path[s])
                    || (wide
                        && suffixed
                            .as_deref()
                            .is_some_and(|x| match_segment(x, path[s]))) =>
            {
                p += 1;
                s += 1;
            }
            _ => match resume {
                Some((after, swallowed)) => {
                    p = after;
                    s = swallowed + 1;
                    resume = Some((after, s));
                }
                None => return false,
            },
        }
    }
    pattern[p..]
        .iter()
        .all(|segment| *segment == GlobSegment::AnySegments)
}

/// `*` within one segment: any run of characters. Linear-ish: each literal part is found once, left to
/// right (leftmost is always a safe choice, since the next `*` can absorb what it skipped).
fn match_segment(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(index) => rest = &rest[index + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied; the rule that failed, for the audit log and the 403 page.
    Deny {
        needed: Vec<RoleName>,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// May a user with `roles` send `method` to `path` (a canonical path inside the app, starting with `/`,
/// as `proxy::path::normalise` decodes it)?
///
/// The app's own rule must pass, and so must the rule of every node whose view path is a prefix of `path`
/// on a segment boundary, and of every request rule matching the method and path: node and request
/// rules only ever narrow access, they never widen it. The navigation asks with `GET`.
///
/// Prefixes and globs compare as the app's upstream routes: letter case folded unless the app is
/// case-sensitive, a trailing slash ignored, and a segment `x.anything` taken for a rule segment `x`
/// that has no dot (suffix matching). Each of these only makes a narrowing rule cover more.
pub fn decide(roles: &Roles, policy: &AccessPolicy, method: &Method, path: &str) -> Decision {
    decide_by(roles, policy, method, path).0
}

/// The rule that decided: the app's own when nothing narrower covers the path, else the first
/// narrower rule that refused (for `portico explain`).
#[derive(Debug, Clone, Copy)]
pub enum DecidedBy<'p> {
    /// The app's `access`.
    App,
    /// A node's `access`, covering every path under its view (the prefix).
    Node(&'p str),
    /// One of the app's `rules`.
    Request(&'p RequestRule),
}

/// [`decide`], with the rule that decided. The one decision: `decide` is this without the reason.
pub fn decide_by<'p>(
    roles: &Roles,
    policy: &'p AccessPolicy,
    method: &Method,
    path: &str,
) -> (Decision, DecidedBy<'p>) {
    if !policy.app.allows(roles) {
        let needed = policy.app.roles.clone();
        return (Decision::Deny { needed }, DecidedBy::App);
    }
    if policy.paths.is_empty() && policy.requests.is_empty() {
        return (Decision::Allow, DecidedBy::App);
    }
    let folded = policy.case.fold(path);
    let segments: Vec<&str> = folded.split('/').filter(|s| !s.is_empty()).collect();
    for (prefix, rule) in &policy.paths {
        if is_under(&segments, &policy.case.fold(prefix)) && !rule.allows(roles) {
            let needed = rule.roles.clone();
            return (Decision::Deny { needed }, DecidedBy::Node(prefix));
        }
    }
    for request in &policy.requests {
        // A rule on GET covers HEAD: Express, servlets and Spring run the GET handler for a HEAD.
        // Names compare ignoring case: Express routes `delete` as DELETE.
        let method = method.as_str();
        let method_matches = request.methods.is_empty()
            || request.methods.iter().any(|m| {
                m.as_str().eq_ignore_ascii_case(method)
                    || (*m == Method::GET && method.eq_ignore_ascii_case("HEAD"))
            });
        if method_matches
            && request.path.covers(&segments, policy.case)
            && !request.rule.allows(roles)
        {
            let needed = request.rule.roles.clone();
            return (Decision::Deny { needed }, DecidedBy::Request(request));
        }
    }
    (Decision::Allow, DecidedBy::App)
}

/// The path (its segments, folded) is `prefix` (folded the same way) or below it, on a segment boundary:
/// `/reports` covers `/reports/x` and `/reports.json`, not `/reportsx`.
fn is_under(path: &[&str], prefix: &str) -> bool {
    let mut path = path.iter();
    prefix.split('/').filter(|s| !s.is_empty()).all(|wanted| {
        path.next().is_some_and(|segment| {
            segment == &wanted
                || (!wanted.contains('.')
                    && segment
                        .strip_prefix(wanted)
                        .is_some_and(|rest| rest.starts_with('.')))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(roles: &[&str]) -> AccessRule {
        AccessRule {
            roles: roles.iter().map(|r| RoleName(r.to_string())).collect(),
        }
    }

    fn roles(names: &[&str]) -> Roles {
        Roles(names.iter().map(|r| RoleName(r.to_string())).collect())
    }

    fn method(name: &str) -> Method {
        Method::from_bytes(name.as_bytes()).unwrap()
    }

    fn policy() -> AccessPolicy {
        AccessPolicy {
            app: rule(&["developer", "admin"]),
            paths: vec![("/reports".into(), rule(&["admin"]))],
            requests: vec![RequestRule {
                methods: vec![Method::POST, Method::DELETE],
                path: PathGlob::new("/admin/**"),
                rule: rule(&["admin"]),
            }],
            case: PathCase::Insensitive,
        }
    }

    #[test]
    fn role_map_grants_roles_by_group() {
        let map = RoleMap {
            roles: vec![
                (RoleName("admin".into()), vec!["admins".into()]),
                (
                    RoleName("developer".into()),
                    vec!["eng".into(), "admins".into()],
                ),
            ],
            descriptions: std::collections::BTreeMap::new(),
        };
        assert_eq!(
            map.roles_for(&["admins".into()]).names(),
            ["admin", "developer"]
        );
        assert_eq!(map.roles_for(&["eng".into()]).names(), ["developer"]);
        assert!(map.roles_for(&["sales".into()]).0.is_empty());
        assert!(map.roles_for(&[]).0.is_empty());
    }

    #[test]
    fn no_role_no_access() {
        assert!(!decide(&roles(&[]), &policy(), &Method::GET, "/").is_allowed());
        assert!(!decide(&roles(&["sales"]), &policy(), &Method::GET, "/").is_allowed());
    }

    #[test]
    fn node_rules_narrow_on_segment_boundaries() {
        let developer = roles(&["developer"]);
        assert!(decide(&developer, &policy(), &Method::GET, "/").is_allowed());
        assert!(decide(&developer, &policy(), &Method::GET, "/reportsx").is_allowed());
        assert!(!decide(&developer, &policy(), &Method::GET, "/reports").is_allowed());
        assert!(!decide(&developer, &policy(), &Method::GET, "/reports/2024").is_allowed());
        assert!(decide(&roles(&["admin"]), &policy(), &Method::GET, "/reports/2024").is_allowed());
    }

    #[test]
    fn a_node_rule_never_widens_the_app_rule() {
        let policy = AccessPolicy {
            app: rule(&["admin"]),
            paths: vec![("/public".into(), rule(&["developer"]))],
            requests: vec![],
            case: PathCase::Insensitive,
        };
        assert!(!decide(&roles(&["developer"]), &policy, &Method::GET, "/public").is_allowed());
    }

    #[test]
    fn request_rules_narrow_by_method_and_glob() {
        let developer = roles(&["developer"]);
        let admin = roles(&["admin"]);
        assert!(decide(&developer, &policy(), &Method::GET, "/admin/users").is_allowed());
        assert!(!decide(&developer, &policy(), &Method::POST, "/admin/users").is_allowed());
        assert!(!decide(&developer, &policy(), &method("delete"), "/admin").is_allowed());
        assert!(!decide(&developer, &policy(), &Method::POST, "/admin/a/b/c").is_allowed());
        assert!(decide(&developer, &policy(), &Method::POST, "/administrator").is_allowed());
        assert!(decide(&admin, &policy(), &Method::POST, "/admin/users").is_allowed());
    }

    #[test]
    fn globs_match_segments() {
        let glob = |p: &str| PathGlob::new(p);
        assert!(glob("/api/*/items").matches("/api/v1/items"));
        assert!(!glob("/api/*/items").matches("/api/v1/x/items"));
        assert!(glob("/api/**/items").matches("/api/v1/x/items"));
        assert!(glob("/api/**").matches("/api"));
        assert!(glob("/files/*.csv").matches("/files/report.csv"));
        assert!(!glob("/files/*.csv").matches("/files/report.csv.exe"));
        assert!(glob("/**").matches("/anything/at/all"));
    }

    #[test]
    fn rules_cover_every_letter_case_unless_the_app_is_case_sensitive() {
        let developer = roles(&["developer"]);
        for path in ["/REPORTS", "/Reports/2024", "/rEpOrTs/"] {
            assert!(
                !decide(&developer, &policy(), &Method::GET, path).is_allowed(),
                "{path}"
            );
        }
        for path in ["/ADMIN/users", "/Admin", "/aDmIn/a/b"] {
            assert!(
                !decide(&developer, &policy(), &Method::DELETE, path).is_allowed(),
                "{path}"
            );
        }
        // Unicode letters that Java or JavaScript equate with ASCII ones in a case-insensitive match.
        let keys = AccessPolicy {
            paths: vec![("/keys".into(), rule(&["admin"]))],
            ..policy()
        };
        for path in ["/reporTſ", "/\u{212A}EYS", "/\u{212A}eys/x"] {
            assert!(
                !decide(&developer, &policy(), &Method::GET, path).is_allowed()
                    || path.contains('\u{212A}')
            );
            assert!(
                !decide(&developer, &keys, &Method::GET, path).is_allowed() || path.contains('ſ')
            );
        }
        assert_eq!(PathCase::Insensitive.fold("/İNDEX"), "/index");
        assert_eq!(PathCase::Insensitive.fold("/straße"), "/straße");

        let sensitive = AccessPolicy {
            case: PathCase::Sensitive,
            ..policy()
        };
        assert!(decide(&developer, &sensitive, &Method::GET, "/REPORTS").is_allowed());
        assert!(decide(&developer, &sensitive, &Method::DELETE, "/Admin/users").is_allowed());
        assert!(!decide(&developer, &sensitive, &Method::GET, "/reports/").is_allowed());
        assert!(!decide(&developer, &sensitive, &Method::DELETE, "/admin/users").is_allowed());
    }

    #[test]
    fn a_get_rule_covers_head() {
        let policy = AccessPolicy {
            requests: vec![RequestRule {
                methods: vec![Method::GET],
                path: PathGlob::new("/exports/**"),
                rule: rule(&["admin"]),
            }],
            ..policy()
        };
        let developer = roles(&["developer"]);
        for name in ["GET", "HEAD", "head"] {
            assert!(!decide(&developer, &policy, &method(name), "/exports/q3.csv").is_allowed());
        }
        assert!(decide(&developer, &policy, &Method::OPTIONS, "/exports/q3.csv").is_allowed());
    }

    #[test]
    fn rules_cover_suffixed_spellings_of_dotless_segments() {
        let developer = roles(&["developer"]);
        for path in ["/reports.json", "/reports.csv/x", "/Reports.HTML"] {
            assert!(
                !decide(&developer, &policy(), &Method::GET, path).is_allowed(),
                "{path}"
            );
        }
        assert!(!decide(&developer, &policy(), &Method::DELETE, "/admin.json/users").is_allowed());
        assert!(decide(&developer, &policy(), &Method::GET, "/reportsx.json").is_allowed());
        let csv = PathGlob::new("/exports/*.csv");
        assert!(csv.covers(&["exports", "q3.csv"], PathCase::Insensitive));
        assert!(!csv.covers(&["exports", "q3.csv.pdf"], PathCase::Insensitive));
        let exact = PathGlob::new("/admin/users");
        assert!(exact.covers(&["admin", "users.json"], PathCase::Insensitive));
        assert!(
            !exact.matches("/admin/users.json"),
            "allow-lists match exactly"
        );
        assert!(!exact.matches("/Admin/users"), "allow-lists match exactly");
    }

    #[test]
    fn globs_with_several_double_stars_are_linear_in_the_path() {
        // The recursive matcher tried every split for every `**`: about n³/6 ≈ 10¹¹ steps here.
        let glob = PathGlob::new("/**/a/**/a/**/b");
        let mut path = "/a".repeat(10_000);
        assert!(!glob.matches(&path));
        assert!(!glob.covers(
            &path.split('/').skip(1).collect::<Vec<_>>(),
            PathCase::Sensitive
        ));
        path.push_str("/b");
        assert!(glob.matches(&path));
        let glob = PathGlob::new("/**/x*y/**/*/**/z");
        let path = "/xay/q".repeat(5_000);
        assert!(!glob.matches(&path));
        assert!(glob.matches(&format!("{path}/z")));
    }

    #[test]
    fn globs_match_like_the_recursive_definition() {
        // The two-pointer matcher against the obvious recursive one, on every short combination.
        fn reference(pattern: &[&str], path: &[&str]) -> bool {
            match pattern.split_first() {
                None => path.is_empty(),
                Some((&"**", rest)) => (0..=path.len()).any(|skip| reference(rest, &path[skip..])),
                Some((segment, rest)) => path.split_first().is_some_and(|(first, path_rest)| {
                    match_segment(segment, first) && reference(rest, path_rest)
                }),
            }
        }
        let atoms = ["**", "a", "b", "*"];
        let words = ["a", "b", "c"];
        let mut patterns: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..4 {
            let longer: Vec<Vec<&str>> = patterns
                .iter()
                .flat_map(|p| atoms.iter().map(move |a| [p.clone(), vec![*a]].concat()))
                .collect();
            patterns.extend(longer);
        }
        let mut paths: Vec<Vec<&str>> = vec![vec![]];
        for _ in 0..4 {
            let longer: Vec<Vec<&str>> = paths
                .iter()
                .flat_map(|p| words.iter().map(move |w| [p.clone(), vec![*w]].concat()))
                .collect();
            paths.extend(longer);
        }
        for pattern in &patterns {
            let glob = PathGlob::new(&format!("/{}", pattern.join("/")));
            for path in &paths {
                assert_eq!(
                    glob.matches(&format!("/{}", path.join("/"))),
                    reference(pattern, path),
                    "{pattern:?} on {path:?}"
                );
            }
        }
    }
}
