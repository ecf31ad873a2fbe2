//! Turns YAML trees into a validated [`Config`], collecting every problem with its position.
//!
//! The walk never stops at the first mistake: each reader records a [`Diagnostic`] and returns `None`,
//! and the caller carries on with the rest of the document. No IO happens here except what the config
//! itself asks for (reading `apps_from` files, checking that a static directory exists), and both go
//! through [`Source`] so tests can feed files from memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::model::*;
use super::yaml::{self, Mark, Node, Value};
use super::{Diagnostic, Severity};
use crate::assets;
use crate::rbac::{AccessPolicy, AccessRule, PathCase, PathGlob, RequestRule, RoleMap, RoleName};

/// Path prefixes that portico itself answers on every tenant origin. An app id or node path with one of
/// these names would be shadowed in the shell's path routing, so config refuses them.
pub const RESERVED_SEGMENTS: &[&str] =
    &["auth", "shell", "apps", "backstage", ".well-known", "home"];

/// What the compiler may read besides the main file: the environment and other files.
pub trait Source {
    fn env(&self, name: &str) -> Option<String>;
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// Files matching a glob pattern, sorted.
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String>;
    fn is_dir(&self, path: &Path) -> bool;
    /// `path` with symlinks resolved, as the file system will open it. The default only removes `.`
    /// and `..` lexically, which is right for sources without symlinks (memory, fuzzing); a source
    /// backed by a real file system must resolve links, or confinement of app files is bypassable.
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        Ok(normalise_lexically(path))
    }
}

/// The largest config file portico reads (main file and every `apps_from` file). Also checked by
/// `yaml::parse`, so text that comes from memory is held to the same limit.
pub const MAX_FILE_BYTES: usize = yaml::MAX_DOCUMENT_BYTES;

/// Files and environment from memory, so rules are tested (and fuzzed, `fuzz/`) without the disk.
/// `apps_from` globs match by the text before `*.yaml`; every path counts as a directory.
#[derive(Debug, Default)]
pub struct MemorySource {
    pub files: std::collections::HashMap<PathBuf, String>,
    pub env: std::collections::HashMap<String, String>,
}

impl Source for MemorySource {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let prefix = pattern.trim_end_matches("*.yaml");
        let mut found: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| p.to_string_lossy().starts_with(prefix))
            .cloned()
            .collect();
        found.sort();
        Ok(found)
    }
    fn is_dir(&self, _path: &Path) -> bool {
        true
    }
}

/// The real environment and file system.
pub struct OsSource;

impl Source for OsSource {
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        use std::io::Read;
        // Read at most one byte past the limit: a huge (or endless, e.g. /dev/zero) file is refused
        // without being loaded.
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() > MAX_FILE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the file is larger than {} (the limit for config files)",
                    yaml::MAX_DOCUMENT_SIZE_TEXT
                ),
            ));
        }
        String::from_utf8(bytes)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
    }
    fn glob(&self, pattern: &str) -> Result<Vec<PathBuf>, String> {
        let paths = glob::glob(pattern).map_err(|error| error.to_string())?;
        let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        found.sort();
        Ok(found)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// Removes `.` and `..` components without touching the file system (`..` at the root stays at the root).
pub fn normalise_lexically(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Compiles the main config document. `file` names it in diagnostics; `base_dir` anchors relative paths.
pub fn compile(
    source: &dyn Source,
    file: &str,
    text: &str,
    base_dir: &Path,
) -> (Option<Config>, Vec<Diagnostic>) {
    let mut reader = Reader {
        source,
        file: Arc::from(file),
        diagnostics: Vec::new(),
        hosts_claimed: Vec::new(),
        namespaces_claimed: Vec::new(),
        unscoped_backstage: Vec::new(),
        base_dir: base_dir.to_path_buf(),
        team: None,
    };
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(errors) => {
            for error in errors {
                reader.error(
                    error.mark,
                    "",
                    error.message,
                    Some(error.hint.unwrap_or("fix the YAML syntax").into()),
                );
            }
            return (None, reader.diagnostics);
        }
    };
    let config = reader.config(&root, base_dir, file);
    (config, reader.diagnostics)
}

struct Reader<'s> {
    source: &'s dyn Source,
    file: Arc<str>,
    diagnostics: Vec<Diagnostic>,
    /// `(tenant, host, where)` for every host listed so far, to find a host claimed twice.
    hosts_claimed: Vec<(String, String, Mark)>,
    /// Every Backstage namespace a tenant lists, to find one claimed by two tenants.
    namespaces_claimed: Vec<NamespaceClaim>,
    /// `(tenant, backend, where, key path)` of each Backstage mount that lists no namespaces.
    unscoped_backstage: Vec<(String, String, Mark, String)>,
    /// The main file's directory, for paths in it.
    base_dir: PathBuf,
    /// Set while an `apps_from` file is read: what that team's file may reach.
    team: Option<TeamScope>,
}

/// What a team's app file (`apps_from`) may reach: files below its own directory or a directory the
/// tenant allows (`apps_static_roots`), and only the environment variables the tenant allows
/// (`apps_env`). The main config and `shared_apps` are the platform's and are not confined.
#[derive(Clone, Default)]
struct TeamScope {
    tenant: String,
    /// The app file's directory, symlinks resolved.
    dir: PathBuf,
    /// `apps_static_roots`, symlinks resolved.
    static_roots: Vec<PathBuf>,
    /// `apps_env`.
    env: Vec<String>,
    /// The main config file, named in hints (the team cannot fix these in its own file).
    main_file: Arc<str>,
}

/// One entry of `shared_apps:`: an app defined once and enabled for several tenants.
struct SharedApp<'n> {
    index: usize,
    /// The app's own keys (without `tenants` and `overrides`).
    base: Vec<(&'n Node, &'n Node)>,
    mark: Mark,
    /// The tenants that enable it, as listed.
    tenants: Vec<(String, Mark)>,
    /// Per-tenant replacements for some of the app's keys.
    overrides: Vec<(String, Vec<(&'n Node, &'n Node)>)>,
}

/// What a tenant's copy of a shared app may change.
const SHARED_APP_OVERRIDES: &[&str] = &["label", "access", "upstream"];

impl SharedApp<'_> {
    /// The app as `tenant` sees it: the shared keys, with that tenant's overrides replacing them. An
    /// overriding `upstream` also replaces a shared `static` bundle. Marks stay where each key was
    /// written, so an error in an override points at the override.
    fn for_tenant(&self, tenant: &str) -> Node {
        let overrides: &[(&Node, &Node)] = self
            .overrides
            .iter()
            .find(|(name, _)| name == tenant)
            .map_or(&[], |(_, entries)| entries.as_slice());
        let key_text = |node: &Node| match &node.value {
            Value::Scalar { text } => text.clone(),
            _ => String::new(),
        };
        let overridden: Vec<String> = overrides.iter().map(|(k, _)| key_text(k)).collect();
        let replaces = |key: &str| {
            overridden.iter().any(|o| o == key)
                || (key == "static" && overridden.iter().any(|o| o == "upstream"))
        };
        let mut entries: Vec<(Node, Node)> = self
            .base
            .iter()
            .filter(|(key, _)| !replaces(&key_text(key)))
            .map(|(k, v)| ((*k).clone(), (*v).clone()))
            .collect();
        entries.extend(overrides.iter().map(|(k, v)| ((*k).clone(), (*v).clone())));
        Node {
            value: Value::Map(entries),
            mark: self.mark,
        }
    }
}

/// One Backstage namespace listed by one tenant.
struct NamespaceClaim {
    tenant: String,
    /// The Backstage backend URL, normalised: the same name on two Backstage instances is no conflict.
    backend: String,
    namespace: String,
    shared: bool,
    mark: Mark,
    path: String,
}

/// The entries of a mapping whose keys were all checked against an allow-list.
struct Fields<'n> {
    node: &'n Node,
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`; a key with an empty value (`key:`) counts as absent.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.written(key)
            .filter(|node| !matches!(node.value, Value::Null))
    }

    /// The value of `key` as written, an empty one included.
    fn written(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, node)| *node)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'s> Reader<'s> {
    fn error(&mut self, mark: Mark, path: &str, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            file: self.file.to_string(),
            mark,
            key_path: path.to_owned(),
            message: message.into(),
            hint,
        });
    }

    fn warn(&mut self, mark: Mark, path: &str, message: impl Into<String>, hint: Option<String>) {
        self.diagnostics.push(Diagnostic {
            severity: Severity::Warning,
            file: self.file.to_string(),
            mark,
            key_path: path.to_owned(),
            message: message.into(),
            hint,
        });
    }

    /// Reads a mapping, reporting keys outside `allowed` (with a "did you mean" hint).
    fn map<'n>(&mut self, node: &'n Node, path: &str, allowed: &[&str]) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.mark,
                path,
                format!("expected a mapping of keys, found {}", node.kind()),
                Some(format!("allowed keys here: {}", allowed.join(", "))),
            );
            return None;
        };
        let mut fields = Fields {
            node,
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let Value::Scalar { text, .. } = &key.value else {
                self.error(key.mark, path, "keys must be plain strings", None);
                continue;
            };
            if !allowed.contains(&text.as_str()) {
                let hint = match closest(text, allowed) {
                    Some(near) => format!(
                        "did you mean `{near}`? allowed keys: {}",
                        allowed.join(", ")
                    ),
                    None => format!("allowed keys here: {}", allowed.join(", ")),
                };
                self.error(
                    key.mark,
                    &join(path, text),
                    format!("unknown key `{text}`"),
                    Some(hint),
                );
                continue;
            }
            fields.entries.push((text.as_str(), value));
        }
        Some(fields)
    }

    /// A mapping whose keys are names chosen by the user (tenant ids, role names).
    fn named_entries<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(String, Mark, &'n Node)> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.mark,
                path,
                format!("expected a mapping of names, found {}", node.kind()),
                None,
            );
            return Vec::new();
        };
        let mut named = Vec::new();
        for (key, value) in entries {
            match &key.value {
                Value::Scalar { text, .. } => named.push((text.clone(), key.mark, value)),
                _ => self.error(key.mark, path, "names must be plain strings", None),
            }
        }
        named
    }

    fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        path: &str,
        hint: &str,
    ) -> Option<&'n Node> {
        let node = fields.get(key);
        if node.is_none() {
            self.error(
                fields.node.mark,
                &join(path, key),
                format!("missing required key `{key}`"),
                Some(hint.to_owned()),
            );
        }
        node
    }

    /// A scalar as a string, with `${VAR}` read from the environment. Only for values the browser
    /// never receives; text shown to users goes through [`Reader::shown`].
    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.scalar(node, path, false)
    }

    /// A scalar that reaches users' browsers (labels, titles, icons, branding, dev sign-in users):
    /// written literally, never from the environment, so no secret can end up on a page by mistake.
    fn shown(&mut self, node: &Node, path: &str) -> Option<String> {
        self.scalar(node, path, true)
    }

    fn scalar(&mut self, node: &Node, path: &str, shown: bool) -> Option<String> {
        let Value::Scalar { text, .. } = &node.value else {
            self.error(
                node.mark,
                path,
                format!("expected a single value, found {}", node.kind()),
                None,
            );
            return None;
        };
        self.substitute_env(text, node.mark, path, shown)
    }

    /// Replaces `${NAME}` with the variable's value (`$${` is a literal `${`). Refused in values shown to
    /// users, and in a team's app file unless its tenant allows the variable (`apps_env`).
    fn substitute_env(
        &mut self,
        text: &str,
        mark: Mark,
        path: &str,
        shown: bool,
    ) -> Option<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            if let Some(escaped) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = escaped;
            } else if let Some(inner) = after.strip_prefix("${") {
                let Some(end) = inner.find('}') else {
                    self.error(
                        mark,
                        path,
                        "unclosed `${` in value",
                        Some("write `${NAME}`, or `$${` for a literal `${`".into()),
                    );
                    return None;
                };
                let name = &inner[..end];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    self.error(
                        mark,
                        path,
                        format!("`${{{name}}}` is not a valid environment variable name"),
                        None,
                    );
                    return None;
                }
                if shown {
                    let key = path.rsplit('.').next().unwrap_or(path);
                    self.error(
                        mark,
                        path,
                        format!("`${{{name}}}` cannot be used in `{key}`: it is shown in users' browsers"),
                        Some("write the text itself; environment variables are read only in settings the browser never receives (secrets, upstream URLs, listen addresses); `$${` is a literal `${`".into()),
                    );
                    return None;
                }
                if let Some(team) = &self.team {
                    if !team.env.iter().any(|allowed| allowed == name) {
                        let hint = format!(
                            "a team's app file reads only the variables its tenant allows: the platform can add `apps_env: [{name}]` to tenant `{}` in {}; otherwise write the value itself",
                            team.tenant, team.main_file
                        );
                        self.error(
                            mark,
                            path,
                            format!("`${{{name}}}` is not available in an app file"),
                            Some(hint),
                        );
                        return None;
                    }
                }
                match self.source.env(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        self.error(
                            mark,
                            path,
                            format!("environment variable `{name}` is not set"),
                            Some(format!(
                                "export {name}=… before starting portico, or remove the reference"
                            )),
                        );
                        return None;
                    }
                }
                rest = &inner[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
        Some(out)
    }

    fn items<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a list, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Mark)>> {
        self.scalars(node, path, false)
    }

    /// Like [`Reader::strings`], for lists shown to users (see [`Reader::shown`]).
    fn shown_strings(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Mark)>> {
        self.scalars(node, path, true)
    }

    fn scalars(&mut self, node: &Node, path: &str, shown: bool) -> Option<Vec<(String, Mark)>> {
        if let Value::Scalar { .. } = node.value {
            return self.scalar(node, path, shown).map(|s| vec![(s, node.mark)]);
        }
        let items = self.items(node, path)?;
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            if let Some(value) = self.scalar(item, &format!("{path}[{index}]"), shown) {
                out.push((value, item.mark));
            }
        }
        Some(out)
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let text = self.string(node, path)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            Ok(_) => {
                self.error(
                    node.mark,
                    path,
                    "a duration of zero is not allowed",
                    Some("e.g. 30s, 5m, 8h".into()),
                );
                None
            }
            Err(error) => {
                self.error(
                    node.mark,
                    path,
                    format!("`{text}` is not a duration: {error}"),
                    Some("e.g. 30s, 5m, 8h".into()),
                );
                None
            }
        }
    }

    /// A byte size: `512`, `64KiB`, `10MiB`, `1GiB` (also KB/MB/GB as powers of 1000).
    fn size(&mut self, node: &Node, path: &str) -> Option<u64> {
        let text = self.string(node, path)?;
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let factor = match unit.trim() {
            "" | "B" => Some(1),
            "KiB" => Some(1 << 10),
            "MiB" => Some(1 << 20),
            "GiB" => Some(1 << 30),
            "KB" => Some(1_000),
            "MB" => Some(1_000_000),
            "GB" => Some(1_000_000_000),
            _ => None,
        };
        match (digits.parse::<u64>(), factor) {
            (Ok(number), Some(factor)) if number > 0 => Some(number.saturating_mul(factor)),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("`{text}` is not a size"),
                    Some("e.g. 512KiB, 10MiB, 1GiB".into()),
                );
                None
            }
        }
    }

    /// A positive whole number, e.g. a limit.
    fn count(&mut self, node: &Node, path: &str) -> Option<usize> {
        let text = self.string(node, path)?;
        match text.trim().parse::<usize>() {
            Ok(number) if number > 0 => Some(number),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("`{text}` is not a positive whole number"),
                    Some("e.g. 100".into()),
                );
                None
            }
        }
    }

    fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match self.string(node, path)?.as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            other => {
                self.error(
                    node.mark,
                    path,
                    format!("`{other}` is not true or false"),
                    None,
                );
                None
            }
        }
    }

    fn socket_addr(&mut self, node: &Node, path: &str) -> Option<SocketAddr> {
        let text = self.string(node, path)?;
        match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(
                    node.mark,
                    path,
                    format!("`{text}` is not an IP address with a port"),
                    Some(
                        "e.g. 127.0.0.1:8080 or [::1]:8080 (host names are not resolved here)"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    /// An identifier users type in URLs: lower-case letters, digits and `-`, starting with a letter.
    fn identifier(&mut self, text: &str, mark: Mark, path: &str, what: &str) -> bool {
        let valid = text.starts_with(|c: char| c.is_ascii_lowercase())
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && text.len() <= 63;
        if !valid {
            self.error(
                mark,
                path,
                format!("{what} `{text}` is not valid"),
                Some(
                    "use lower-case letters, digits and `-`, starting with a letter (at most 63)"
                        .into(),
                ),
            );
        }
        valid
    }

    fn config(&mut self, root: &Node, base_dir: &Path, source_name: &str) -> Option<Config> {
        let fields = self.map(
            root,
            "",
            &[
                "version",
                "server",
                "sessions",
                "proxy",
                "default_tenant",
                "tenants",
                "shared_apps",
            ],
        )?;
        if let Some(version) = fields.get("version") {
            if let Some(text) = self.string(version, "version") {
                if text != "1" {
                    self.error(
                        version.mark,
                        "version",
                        format!("unsupported config version `{text}`"),
                        Some("this portico reads version 1".into()),
                    );
                }
            }
        }
        let server = self.server(fields.get("server"));
        let sessions = self.sessions(fields.get("sessions"));
        let proxy = self.proxy(fields.get("proxy"));

        // Tenant ids first: shared apps name them, and each tenant compiles the shared apps it enables.
        let tenant_ids: Vec<String> = match fields.get("tenants").map(|n| &n.value) {
            Some(Value::Map(entries)) => entries
                .iter()
                .filter_map(|(key, _)| match &key.value {
                    Value::Scalar { text } => Some(text.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let shared_apps = match fields.get("shared_apps") {
            Some(node) => self.shared_apps(node, &tenant_ids),
            None => Vec::new(),
        };

        let mut tenants = Vec::new();
        if let Some(node) = self.required(
            &fields,
            "tenants",
            "",
            "define at least one tenant under `tenants:`",
        ) {
            for (id, mark, tenant_node) in self.named_entries(node, "tenants") {
                let path = format!("tenants.{id}");
                if !self.identifier(&id, mark, &path, "tenant id") {
                    continue;
                }
                if let Some(tenant) = self.tenant(&id, tenant_node, &path, base_dir, &shared_apps) {
                    tenants.push(Arc::new(tenant));
                }
            }
            if tenants.is_empty()
                && matches!(&node.value, Value::Map(entries) if entries.is_empty())
            {
                self.error(
                    node.mark,
                    "tenants",
                    "no tenants are defined",
                    Some("add one, e.g. `tenants: { acme: { … } }`".into()),
                );
            }
        }

        let mut default_tenant = None;
        if let Some(node) = fields.get("default_tenant") {
            if let Some(id) = self.string(node, "default_tenant") {
                if tenants.iter().any(|tenant| tenant.id == id) {
                    default_tenant = Some(id);
                } else {
                    let known: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
                    self.error(
                        node.mark,
                        "default_tenant",
                        format!("unknown tenant `{id}`"),
                        Some(format!("tenants defined: {}", known.join(", "))),
                    );
                }
            }
        }

        self.check_namespaces();

        Some(Config {
            server: server?,
            sessions: sessions?,
            proxy: proxy?,
            tenants,
            default_tenant,
            source: source_name.to_owned(),
        })
    }

    fn server(&mut self, node: Option<&Node>) -> Option<ServerSettings> {
        let mut settings = ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            signing_keys: Vec::new(),
            header_read_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_client: 256,
        };
        let Some(node) = node else {
            return Some(settings);
        };
        let fields = self.map(
            node,
            "server",
            &[
                "listen",
                "admin_listen",
                "signing_keys",
                "header_read_timeout",
                "max_connections",
                "max_connections_per_client",
            ],
        )?;
        // Each key is read even when an earlier one is broken, so every mistake is reported.
        let mut broken = false;
        if let Some(value) = fields.get("header_read_timeout") {
            match self.duration(value, "server.header_read_timeout") {
                Some(timeout) => settings.header_read_timeout = timeout,
                None => broken = true,
            }
        }
        if let Some(value) = fields.get("max_connections") {
            match self.count(value, "server.max_connections") {
                Some(count) => settings.max_connections = count,
                None => broken = true,
            }
        }
        if let Some(value) = fields.get("max_connections_per_client") {
            match self.count(value, "server.max_connections_per_client") {
                Some(count) => settings.max_connections_per_client = count,
                None => broken = true,
            }
        }
        if let Some(keys) = fields.get("signing_keys") {
            for (index, (file, mark)) in self
                .strings(keys, "server.signing_keys")
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let path = self.base_dir.join(&file);
                if self.source.read(&path).is_err() {
                    self.error(
                        mark,
                        &format!("server.signing_keys[{index}]"),
                        format!("cannot read signing key `{}`", path.display()),
                        Some("a P-256 private key in PEM, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`".into()),
                    );
                    continue;
                }
                settings.signing_keys.push(path);
            }
        }
        if let Some(listen) = fields.get("listen") {
            match self.socket_addr(listen, "server.listen") {
                Some(addr) => settings.listen = addr,
                None => broken = true,
            }
        }
        if let Some(admin) = fields.get("admin_listen") {
            match self.socket_addr(admin, "server.admin_listen") {
                Some(addr) => settings.admin_listen = Some(addr),
                None => broken = true,
            }
        }
        (!broken).then_some(settings)
    }

    fn sessions(&mut self, node: Option<&Node>) -> Option<SessionSettings> {
        let mut settings = SessionSettings {
            idle_timeout: Duration::from_secs(8 * 3600),
            absolute_timeout: Duration::from_secs(24 * 3600),
            pending_sign_ins_per_client: 100,
            pending_sign_ins_per_tenant: 10_000,
        };
        let Some(node) = node else {
            return Some(settings);
        };
        let fields = self.map(
            node,
            "sessions",
            &[
                "store",
                "idle_timeout",
                "absolute_timeout",
                "pending_sign_ins_per_client",
                "pending_sign_ins_per_tenant",
            ],
        )?;
        if let Some(store) = fields.get("store") {
            let text = self.string(store, "sessions.store")?;
            if text != "memory" {
                self.error(
                    store.mark,
                    "sessions.store",
                    format!("session store `{text}` is not supported yet"),
                    Some("use `memory`; a Redis store for scale-out is planned".into()),
                );
            }
        }
        if let Some(idle) = fields.get("idle_timeout") {
            settings.idle_timeout = self.duration(idle, "sessions.idle_timeout")?;
        }
        if let Some(absolute) = fields.get("absolute_timeout") {
            settings.absolute_timeout = self.duration(absolute, "sessions.absolute_timeout")?;
        }
        for (key, limit) in [
            (
                "pending_sign_ins_per_client",
                &mut settings.pending_sign_ins_per_client,
            ),
            (
                "pending_sign_ins_per_tenant",
                &mut settings.pending_sign_ins_per_tenant,
            ),
        ] {
            if let Some(value) = fields.get(key) {
                *limit = self.count(value, &format!("sessions.{key}"))?;
            }
        }
        if settings.idle_timeout > settings.absolute_timeout {
            self.error(
                node.mark,
                "sessions.idle_timeout",
                "idle_timeout is longer than absolute_timeout",
                Some("the idle timeout can never fire; shorten it".into()),
            );
        }
        Some(settings)
    }

    fn proxy(&mut self, node: Option<&Node>) -> Option<ProxySettings> {
        let mut settings = ProxySettings {
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(30),
            assertion_lifetime: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_request_body: 100 * 1024 * 1024,
        };
        let Some(node) = node else {
            return Some(settings);
        };
        let fields = self.map(
            node,
            "proxy",
            &[
                "connect_timeout",
                "response_timeout",
                "idle_timeout",
                "max_request_body",
                "assertion_lifetime",
            ],
        )?;
        if let Some(value) = fields.get("idle_timeout") {
            settings.idle_timeout = self.duration(value, "proxy.idle_timeout")?;
        }
        if let Some(value) = fields.get("max_request_body") {
            settings.max_request_body = self.size(value, "proxy.max_request_body")?;
        }
        if let Some(value) = fields.get("assertion_lifetime") {
            settings.assertion_lifetime = self.duration(value, "proxy.assertion_lifetime")?;
            if settings.assertion_lifetime > Duration::from_secs(600) {
                self.error(
                    value.mark,
                    "proxy.assertion_lifetime",
                    "an assertion may live at most 10m",
                    Some("keep it short: about a minute".into()),
                );
            }
        }
        if let Some(value) = fields.get("connect_timeout") {
            settings.connect_timeout = self.duration(value, "proxy.connect_timeout")?;
        }
        if let Some(value) = fields.get("response_timeout") {
            settings.response_timeout = self.duration(value, "proxy.response_timeout")?;
        }
        Some(settings)
    }

    /// `shared_apps:`: apps defined once and enabled for a list of tenants, with per-tenant overrides.
    /// Only the `tenants` and `overrides` keys are read here; each tenant compiles its copy of the app
    /// against its own role map (see [`SharedApp::for_tenant`]).
    fn shared_apps<'n>(&mut self, node: &'n Node, tenant_ids: &[String]) -> Vec<SharedApp<'n>> {
        let mut out = Vec::new();
        let Some(items) = self.items(node, "shared_apps") else {
            return out;
        };
        let known: Vec<&str> = tenant_ids.iter().map(String::as_str).collect();
        for (index, item) in items.iter().enumerate() {
            let path = format!("shared_apps[{index}]");
            let Value::Map(entries) = &item.value else {
                self.error(
                    item.mark,
                    &path,
                    format!("expected a mapping (an app), found {}", item.kind()),
                    Some("e.g. `- { id: wiki, tenants: [acme, globex], access: { roles: [developer] }, upstream: http://wiki:8080 }`".into()),
                );
                continue;
            };
            let key_is = |key: &Node, name: &str| matches!(&key.value, Value::Scalar { text } if text == name);
            let base: Vec<(&Node, &Node)> = entries
                .iter()
                .filter(|(key, _)| !key_is(key, "tenants") && !key_is(key, "overrides"))
                .map(|(k, v)| (k, v))
                .collect();
            let mut shared = SharedApp {
                index,
                base,
                mark: item.mark,
                tenants: Vec::new(),
                overrides: Vec::new(),
            };
            let tenants_node = entries.iter().find(|(key, _)| key_is(key, "tenants"));
            let Some((_, tenants_node)) = tenants_node else {
                self.error(
                    item.mark,
                    &join(&path, "tenants"),
                    "a shared app needs `tenants`",
                    Some(format!(
                        "the tenants that enable it, e.g. `tenants: [{}]`",
                        known.join(", ")
                    )),
                );
                continue;
            };
            let tenants_path = join(&path, "tenants");
            for (tenant, mark) in self
                .strings(tenants_node, &tenants_path)
                .unwrap_or_default()
            {
                if !known.contains(&tenant.as_str()) {
                    let hint = suggest(&tenant, &known, &format!("tenants: {}", known.join(", ")));
                    self.error(
                        mark,
                        &tenants_path,
                        format!("unknown tenant `{tenant}`"),
                        Some(hint),
                    );
                    continue;
                }
                if shared.tenants.iter().any(|(seen, _)| *seen == tenant) {
                    self.error(
                        mark,
                        &tenants_path,
                        format!("tenant `{tenant}` is listed twice"),
                        None,
                    );
                    continue;
                }
                shared.tenants.push((tenant, mark));
            }
            if let Some((_, overrides_node)) =
                entries.iter().find(|(key, _)| key_is(key, "overrides"))
            {
                let overrides_path = join(&path, "overrides");
                for (tenant, mark, override_node) in
                    self.named_entries(overrides_node, &overrides_path)
                {
                    let tenant_path = join(&overrides_path, &tenant);
                    if !shared.tenants.iter().any(|(enabled, _)| *enabled == tenant) {
                        self.error(
                            mark,
                            &tenant_path,
                            format!(
                                "overrides for tenant `{tenant}`, which does not enable this app"
                            ),
                            Some("add the tenant to `tenants`, or remove these overrides".into()),
                        );
                        continue;
                    }
                    let Some(fields) = self.map(override_node, &tenant_path, SHARED_APP_OVERRIDES)
                    else {
                        continue;
                    };
                    let keys: Vec<(&Node, &Node)> = match &fields.node.value {
                        Value::Map(entries) => entries.iter().map(|(k, v)| (k, v)).collect(),
                        _ => Vec::new(),
                    };
                    shared.overrides.push((tenant, keys));
                }
            }
            if shared.tenants.is_empty() {
                continue;
            }
            out.push(shared);
        }
        out
    }

    /// A Backstage namespace listed by two tenants of the same Backstage backend: both would read it.
    /// Allowed only when every tenant that lists it marks it shared (`shared_namespaces`).
    fn check_namespaces(&mut self) {
        let claims = std::mem::take(&mut self.namespaces_claimed);
        for (index, claim) in claims.iter().enumerate() {
            let earlier = claims[..index].iter().find(|other| {
                other.backend == claim.backend
                    && other.namespace == claim.namespace
                    && other.tenant != claim.tenant
            });
            let Some(other) = earlier else { continue };
            if claim.shared && other.shared {
                continue;
            }
            self.error(
                claim.mark,
                &claim.path,
                format!(
                    "Backstage namespace `{}` is also claimed by tenant `{}` (line {}) on the same backend",
                    claim.namespace, other.tenant, other.mark.line
                ),
                Some("each tenant owns its namespaces; a namespace several tenants may read goes in `shared_namespaces` of every one of them".into()),
            );
        }
        // A tenant without namespaces reads the whole catalog; next to scoped tenants of the same
        // Backstage that is almost certainly an oversight.
        for (tenant, backend, mark, path) in std::mem::take(&mut self.unscoped_backstage) {
            if claims.iter().any(|claim| claim.backend == backend) {
                self.warn(
                    mark,
                    &path,
                    format!("tenant `{tenant}` lists no namespaces, so it reads every namespace of a Backstage that other tenants scope"),
                    Some("list its catalog namespaces in `namespaces`".into()),
                );
            }
        }
    }

    fn tenant(
        &mut self,
        id: &str,
        node: &Node,
        path: &str,
        base_dir: &Path,
        shared_apps: &[SharedApp<'_>],
    ) -> Option<Tenant> {
        let fields = self.map(
            node,
            path,
            &[
                "hosts",
                "public_origin",
                "branding",
                "auth",
                "roles",
                "apps",
                "apps_from",
                "apps_env",
                "apps_static_roots",
                "backstage",
                "luigi",
            ],
        )?;
        // A broken key is reported and the rest of the tenant is still read: no `?` before the end.
        let mut broken = false;
        let backstage = match fields.get("backstage") {
            Some(node) => {
                let backstage = self.backstage(node, &join(path, "backstage"), id);
                broken |= backstage.is_none();
                backstage
            }
            None => None,
        };
        let public_origin = match fields.get("public_origin") {
            Some(origin) => {
                let origin_path = join(path, "public_origin");
                match self
                    .string(origin, &origin_path)
                    .map(|text| parse_origin(&text))
                {
                    Some(Ok(origin)) => Some(origin),
                    Some(Err(message)) => {
                        self.error(
                            origin.mark,
                            &origin_path,
                            message,
                            Some("the URL users type, e.g. https://portal.acme.example".into()),
                        );
                        broken = true;
                        None
                    }
                    None => {
                        broken = true;
                        None
                    }
                }
            }
            None => None,
        };
        let hosts = match fields.get("hosts") {
            Some(hosts) => {
                let mut lowered = Vec::new();
                let listed = self.strings(hosts, &join(path, "hosts"));
                broken |= listed.is_none();
                for (index, (host, mark)) in listed.unwrap_or_default().into_iter().enumerate() {
                    let host = host.to_ascii_lowercase();
                    self.claim_host(id, &host, mark, &format!("{path}.hosts[{index}]"));
                    lowered.push(host);
                }
                lowered
            }
            None => Vec::new(),
        };
        let branding = self.branding(fields.get("branding"), &join(path, "branding"), id);
        let luigi = match fields.get("luigi") {
            Some(node) => self.luigi_settings(node, &join(path, "luigi")),
            None => Some(LuigiSettings::default()),
        };
        let sign_in = match self.required(
            &fields,
            "auth",
            path,
            "say how users sign in, e.g. `auth: { dev_sign_in: { users: [...] } }`",
        ) {
            Some(auth) => self.sign_in(auth, &join(path, "auth")),
            None => None,
        };
        let roles = match self.required(
            &fields,
            "roles",
            path,
            "map IdP groups to roles, e.g. `roles: { developer: { groups: [eng] } }`",
        ) {
            Some(roles) => self.roles(roles, &join(path, "roles")),
            None => None,
        };
        let roles = roles.unwrap_or_default();

        let mut apps: Vec<Arc<App>> = Vec::new();
        if let Some(inline) = fields.get("apps") {
            let apps_path = join(path, "apps");
            if let Some(items) = self.items(inline, &apps_path) {
                for (index, item) in items.iter().enumerate() {
                    let app_path = format!("{apps_path}[{index}]");
                    if let Some(app) = self.app(item, &app_path, &roles, id, base_dir) {
                        self.add_app(&mut apps, app, item.mark, &app_path);
                    }
                }
            }
        }
        let team = self.team_scope(&fields, path, id, base_dir);
        if let Some(patterns) = fields.get("apps_from") {
            let from_path = join(path, "apps_from");
            for (pattern, mark) in self.strings(patterns, &from_path).unwrap_or_default() {
                self.apps_from(
                    &pattern, mark, &from_path, &roles, &team, base_dir, &mut apps,
                );
            }
        }
        // Shared apps this tenant enables come after its own, with its overrides applied.
        for shared in shared_apps {
            if !shared.tenants.iter().any(|(tenant, _)| tenant == id) {
                continue;
            }
            let merged = shared.for_tenant(id);
            let app_path = format!("shared_apps[{}]", shared.index);
            if let Some(app) = self.app(&merged, &app_path, &roles, id, base_dir) {
                self.add_app(&mut apps, app, merged.mark, &app_path);
            }
        }

        if let (Some(SignIn::Oidc(_)), None) = (&sign_in, &public_origin) {
            self.error(
                fields.node.mark,
                &join(path, "public_origin"),
                "OIDC sign-in needs the tenant's `public_origin`",
                Some("redirect URIs are built from it, never from the Host header, e.g. `public_origin: https://portal.acme.example`".into()),
            );
        }
        let origin = match (&public_origin, hosts.first()) {
            (Some(origin), _) => Some(origin.origin.clone()),
            (None, Some(host)) => Some(format!("http://{host}")),
            (None, None) => None,
        };
        let assertion_issuer = origin
            .clone()
            .unwrap_or_else(|| format!("urn:portico:tenant:{id}"));
        if broken {
            return None;
        }
        Some(Tenant {
            id: id.to_owned(),
            hosts,
            public_origin,
            origin,
            assertion_issuer,
            backstage,
            branding: branding?,
            luigi: luigi?,
            sign_in: sign_in?,
            roles,
            apps,
        })
    }

    /// `apps_env` and `apps_static_roots`: what the tenant lets its teams' app files reach.
    fn team_scope(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        tenant: &str,
        base_dir: &Path,
    ) -> TeamScope {
        let mut scope = TeamScope {
            tenant: tenant.to_owned(),
            main_file: self.file.clone(),
            ..TeamScope::default()
        };
        if let Some(list) = fields.get("apps_env") {
            let env_path = join(path, "apps_env");
            for (name, mark) in self.strings(list, &env_path).unwrap_or_default() {
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if valid {
                    scope.env.push(name);
                } else {
                    self.error(
                        mark,
                        &env_path,
                        format!("`{name}` is not an environment variable name"),
                        Some("the bare name, e.g. `apps_env: [REGION]`, not `${REGION}`".into()),
                    );
                }
            }
        }
        if let Some(list) = fields.get("apps_static_roots") {
            let roots_path = join(path, "apps_static_roots");
            for (dir, mark) in self.strings(list, &roots_path).unwrap_or_default() {
                let full = base_dir.join(&dir);
                match self.source.canonicalize(&full) {
                    Ok(root) if self.source.is_dir(&root) => scope.static_roots.push(root),
                    _ => self.error(
                        mark,
                        &roots_path,
                        format!("`{}` is not a directory", full.display()),
                        Some("a directory whose bundles app files may serve with `static:`; relative to this file".into()),
                    ),
                }
            }
        }
        scope
    }

    fn add_app(&mut self, apps: &mut Vec<Arc<App>>, app: App, mark: Mark, path: &str) {
        if apps.iter().any(|existing| existing.id == app.id) {
            self.error(
                mark,
                &join(path, "id"),
                format!("duplicate app id `{}`", app.id),
                Some("app ids must be unique within a tenant".into()),
            );
            return;
        }
        apps.push(Arc::new(app));
    }

    #[allow(clippy::too_many_arguments)]
    fn apps_from(
        &mut self,
        pattern: &str,
        mark: Mark,
        path: &str,
        roles: &RoleMap,
        team: &TeamScope,
        base_dir: &Path,
        apps: &mut Vec<Arc<App>>,
    ) {
        let tenant = team.tenant.as_str();
        let full = base_dir.join(pattern);
        let files = match self.source.glob(&full.to_string_lossy()) {
            Ok(files) => files,
            Err(error) => {
                self.error(
                    mark,
                    path,
                    format!("bad glob pattern `{pattern}`: {error}"),
                    None,
                );
                return;
            }
        };
        if files.is_empty() {
            self.warn(
                mark,
                path,
                format!("`{pattern}` matches no files"),
                Some(format!("paths are relative to {}", base_dir.display())),
            );
        }
        for file in files {
            let display = file.display().to_string();
            // A team's file that is a link out of its directory would have portico read (and
            // quote in diagnostics) a file of the host.
            let dir = file.parent().unwrap_or(base_dir);
            let real_dir = self
                .source
                .canonicalize(dir)
                .unwrap_or_else(|_| normalise_lexically(dir));
            if let Ok(real) = self.source.canonicalize(&file) {
                if !real.starts_with(&real_dir) {
                    self.error(
                        mark,
                        path,
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
            let text = match self.source.read(&file) {
                Ok(text) => text,
                Err(error) => {
                    self.error(mark, path, format!("cannot read {display}: {error}"), None);
                    continue;
                }
            };
            // Diagnostics inside an app file name that file, so the team that owns it sees its own line.
            let main_file = std::mem::replace(&mut self.file, Arc::from(display.as_str()));
            match yaml::parse(&text) {
                Ok(node) => {
                    let app_dir = file.parent().unwrap_or(base_dir).to_path_buf();
                    // The file is the team's: from here until it is compiled, it reaches only
                    // its own directory tree and the variables its tenant allows.
                    let dir = self
                        .source
                        .canonicalize(&app_dir)
                        .unwrap_or_else(|_| normalise_lexically(&app_dir));
                    self.team = Some(TeamScope {
                        dir,
                        ..team.clone()
                    });
                    if let Some(app) = self.app(&node, "", roles, tenant, &app_dir) {
                        self.add_app(apps, app, node.mark, "");
                    }
                    self.team = None;
                }
                Err(errors) => {
                    for error in errors {
                        self.error(
                            error.mark,
                            "",
                            error.message,
                            Some(error.hint.unwrap_or("fix the YAML syntax").into()),
                        );
                    }
                }
            }
            self.file = main_file;
        }
    }

    fn branding(&mut self, node: Option<&Node>, path: &str, tenant: &str) -> Option<Branding> {
        let mut branding = Branding {
            title: format!("{tenant} portal"),
            logo: None,
            favicon: None,
            theme: Theme::default(),
        };
        let Some(node) = node else {
            return Some(branding);
        };
        let fields = self.map(node, path, &["title", "logo", "favicon", "theme"])?;
        if let Some(title) = fields.get("title") {
            branding.title = self.shown(title, &join(path, "title"))?;
        }
        if let Some(logo) = fields.get("logo") {
            branding.logo = Some(self.shown(logo, &join(path, "logo"))?);
        }
        if let Some(favicon) = fields.get("favicon") {
            branding.favicon = Some(self.shown(favicon, &join(path, "favicon"))?);
        }
        if let Some(theme) = fields.get("theme") {
            let theme_path = join(path, "theme");
            let theme_fields = self.map(theme, &theme_path, &["shell_color", "accent_color"])?;
            branding.theme.shell_color = self.color(&theme_fields, "shell_color", &theme_path);
            branding.theme.accent_color = self.color(&theme_fields, "accent_color", &theme_path);
        }
        Some(branding)
    }

    /// `luigi: { responsive_navigation, side_nav_footer }`.
    fn luigi_settings(&mut self, node: &Node, path: &str) -> Option<LuigiSettings> {
        const NAVIGATION: &[&str] = &["semiCollapsible", "simple", "simpleMobileOnly", "Fiori3"];
        let fields = self.map(node, path, &["responsive_navigation", "side_nav_footer"])?;
        let mut settings = LuigiSettings::default();
        if let Some(mode) = fields.get("responsive_navigation") {
            let mode_path = join(path, "responsive_navigation");
            let text = self.shown(mode, &mode_path)?;
            if !NAVIGATION.contains(&text.as_str()) {
                let hint = suggest(
                    &text,
                    NAVIGATION,
                    &format!("one of: {}", NAVIGATION.join(", ")),
                );
                self.error(
                    mode.mark,
                    &mode_path,
                    format!("unknown navigation mode `{text}`"),
                    Some(hint),
                );
                return None;
            }
            settings.responsive_navigation = text;
        }
        if let Some(footer) = fields.get("side_nav_footer") {
            settings.side_nav_footer = Some(self.shown(footer, &join(path, "side_nav_footer"))?);
        }
        Some(settings)
    }

    /// A CSS hex colour; it is written into a stylesheet, so nothing else is accepted.
    fn color(&mut self, fields: &Fields<'_>, key: &str, path: &str) -> Option<String> {
        let node = fields.written(key)?;
        let key_path = join(path, key);
        if matches!(node.value, Value::Null) {
            // `shell_color: #0a6ed1` parses as an empty value: YAML reads `#…` as a comment.
            self.error(
                node.mark,
                &key_path,
                "the colour is empty",
                Some("in YAML an unquoted `#` starts a comment: write `\"#0a6ed1\"`".into()),
            );
            return None;
        }
        let text = self.shown(node, &key_path)?;
        let hex = text.strip_prefix('#').unwrap_or("");
        if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(text.to_ascii_lowercase());
        }
        self.error(
            node.mark,
            &key_path,
            format!("`{text}` is not a hex colour"),
            Some("`#rgb` or `#rrggbb`, e.g. `#0a6ed1`; quote it in YAML: \"#0a6ed1\"".into()),
        );
        None
    }

    fn sign_in(&mut self, node: &Node, path: &str) -> Option<SignIn> {
        let fields = self.map(node, path, &["dev_sign_in", "oidc"])?;
        let dev = match (fields.get("dev_sign_in"), fields.get("oidc")) {
            (Some(_), Some(oidc)) => {
                self.error(
                    oidc.mark,
                    &join(path, "oidc"),
                    "a tenant signs in with either `oidc` or `dev_sign_in`, not both",
                    None,
                );
                return None;
            }
            (None, Some(oidc)) => return self.oidc(oidc, &join(path, "oidc")).map(SignIn::Oidc),
            (Some(dev), None) => dev,
            (None, None) => {
                self.error(
                    node.mark,
                    path,
                    "no sign-in method configured",
                    Some("add `oidc: { issuer: …, client_id: …, client_secret: … }`".into()),
                );
                return None;
            }
        };
        let dev_path = join(path, "dev_sign_in");
        let dev_fields = self.map(dev, &dev_path, &["users"])?;
        let users_path = join(&dev_path, "users");
        let users_node = self.required(
            &dev_fields,
            "users",
            &dev_path,
            "list the demo users that can be picked",
        )?;
        let mut users: Vec<DevUser> = Vec::new();
        for (index, item) in self.items(users_node, &users_path)?.iter().enumerate() {
            let user_path = format!("{users_path}[{index}]");
            let Some(user_fields) = self.map(item, &user_path, &["id", "name", "email", "groups"])
            else {
                continue;
            };
            let id = self
                .required(&user_fields, "id", &user_path, "a short login name")
                .and_then(|n| self.shown(n, &join(&user_path, "id")));
            let name = user_fields
                .get("name")
                .and_then(|n| self.shown(n, &join(&user_path, "name")));
            let email = user_fields
                .get("email")
                .and_then(|n| self.shown(n, &join(&user_path, "email")));
            let groups = match user_fields.get("groups") {
                Some(groups) => self
                    .shown_strings(groups, &join(&user_path, "groups"))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let Some(id) = id else { continue };
            if users.iter().any(|user| user.id == id) {
                self.error(
                    item.mark,
                    &join(&user_path, "id"),
                    format!("duplicate dev user `{id}`"),
                    None,
                );
                continue;
            }
            users.push(DevUser {
                name: name.unwrap_or_else(|| id.clone()),
                email: email.unwrap_or_else(|| format!("{id}@example.invalid")),
                groups: groups.into_iter().map(|(group, _)| group).collect(),
                id,
            });
        }
        if users.is_empty() {
            self.error(
                users_node.mark,
                &users_path,
                "dev sign-in needs at least one user",
                None,
            );
            return None;
        }
        Some(SignIn::Dev { users })
    }

    fn oidc(&mut self, node: &Node, path: &str) -> Option<OidcSettings> {
        let fields = self.map(
            node,
            path,
            &[
                "issuer",
                "client_id",
                "client_secret",
                "client_secret_file",
                "scopes",
                "groups_claim",
                "signing_algs",
            ],
        )?;
        let issuer = self
            .required(
                &fields,
                "issuer",
                path,
                "the IdP's issuer URL, e.g. https://idp.acme.example",
            )
            .and_then(|n| Some((self.string(n, &join(path, "issuer"))?, n.mark)));
        let client_id = self
            .required(
                &fields,
                "client_id",
                path,
                "the client id registered at the IdP",
            )
            .and_then(|n| self.string(n, &join(path, "client_id")));
        let client_secret = match (
            fields.get("client_secret"),
            fields.get("client_secret_file"),
        ) {
            (Some(secret), None) => self.string(secret, &join(path, "client_secret")),
            (None, Some(file)) => {
                let file_path = join(path, "client_secret_file");
                let name = self.string(file, &file_path)?;
                match self.source.read(Path::new(&name)) {
                    Ok(secret) => Some(secret.trim().to_owned()),
                    Err(error) => {
                        self.error(
                            file.mark,
                            &file_path,
                            format!("cannot read `{name}`: {error}"),
                            None,
                        );
                        None
                    }
                }
            }
            (Some(_), Some(file)) => {
                self.error(
                    file.mark,
                    &join(path, "client_secret_file"),
                    "give `client_secret` or `client_secret_file`, not both",
                    None,
                );
                None
            }
            (None, None) => {
                self.error(
                    node.mark,
                    &join(path, "client_secret"),
                    "missing required key `client_secret`",
                    Some("portico is a confidential client: `client_secret: ${ACME_OIDC_SECRET}` or `client_secret_file: /run/secrets/acme`".into()),
                );
                None
            }
        };
        let mut scopes = vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "email".to_owned(),
        ];
        if let Some(list) = fields.get("scopes") {
            scopes = vec!["openid".to_owned()];
            for (scope, _) in self
                .strings(list, &join(path, "scopes"))
                .unwrap_or_default()
            {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        let groups_claim = match fields.get("groups_claim") {
            Some(claim) => self.string(claim, &join(path, "groups_claim")),
            None => Some("groups".to_owned()),
        };
        let mut signing_algs = DEFAULT_SIGNING_ALGS
            .iter()
            .map(|alg| (*alg).to_owned())
            .collect::<Vec<_>>();
        if let Some(list) = fields.get("signing_algs") {
            signing_algs.clear();
            for (alg, mark) in self
                .strings(list, &join(path, "signing_algs"))
                .unwrap_or_default()
            {
                if DEFAULT_SIGNING_ALGS.contains(&alg.as_str()) {
                    signing_algs.push(alg);
                } else {
                    self.error(
                        mark,
                        &join(path, "signing_algs"),
                        format!("`{alg}` is not an accepted ID token signing algorithm"),
                        Some(format!(
                            "choose from {} (never `none` or HMAC)",
                            DEFAULT_SIGNING_ALGS.join(", ")
                        )),
                    );
                }
            }
        }
        let (issuer, issuer_mark) = issuer?;
        if let Err(message) = check_issuer(&issuer) {
            self.error(
                issuer_mark,
                &join(path, "issuer"),
                message,
                Some("e.g. https://idp.acme.example/realms/acme".into()),
            );
            return None;
        }
        let groups_claim = groups_claim?;
        Some(OidcSettings {
            issuer,
            client_id: client_id?,
            client_secret: Secret(client_secret?),
            scopes,
            groups_claim: groups_claim.split('.').map(str::to_owned).collect(),
            signing_algs,
        })
    }

    fn backstage(&mut self, node: &Node, path: &str, tenant: &str) -> Option<BackstageSettings> {
        let fields = self.map(
            node,
            path,
            &[
                "url",
                "identity",
                "service_token",
                "plugins",
                "namespaces",
                "shared_namespaces",
                "user_namespace",
                "allow_unscoped",
            ],
        )?;
        let url_node = self.required(
            &fields,
            "url",
            path,
            "the Backstage backend's base URL, e.g. http://127.0.0.1:7007",
        )?;
        let url = self.string(url_node, &join(path, "url"))?;
        let backend = match parse_upstream(&url) {
            Ok(backend) => backend,
            Err(message) => {
                self.error(
                    url_node.mark,
                    &join(path, "url"),
                    message,
                    Some("e.g. http://backstage.internal:7007".into()),
                );
                return None;
            }
        };
        let identity = match fields.get("identity") {
            Some(node) => self.string(node, &join(path, "identity"))?,
            None => "user".to_owned(),
        };
        let identity = match (identity.as_str(), fields.get("service_token")) {
            ("user", _) => BackstageIdentity::User,
            ("service", Some(token)) => BackstageIdentity::Service(Secret(
                self.string(token, &join(path, "service_token"))?,
            )),
            ("service", None) => {
                self.error(
                    node.mark,
                    &join(path, "service_token"),
                    "service identity needs `service_token`",
                    Some("a static token from Backstage's backend.auth.externalAccess, e.g. `service_token: ${BACKSTAGE_TOKEN}`".into()),
                );
                return None;
            }
            (other, _) => {
                let mark = fields.get("identity").map_or(node.mark, |n| n.mark);
                self.error(
                    mark,
                    &join(path, "identity"),
                    format!("unknown Backstage identity `{other}`"),
                    Some(
                        "`user` (sign users in to Backstage) or `service` (a static token)".into(),
                    ),
                );
                return None;
            }
        };
        let mut plugins = vec!["catalog".to_owned()];
        if let Some(list) = fields.get("plugins") {
            plugins.clear();
            for (plugin, mark) in self
                .strings(list, &join(path, "plugins"))
                .unwrap_or_default()
            {
                if plugin == "auth" {
                    self.error(mark, &join(path, "plugins"), "the `auth` plugin is never reachable through portico", Some("portico signs users in to Backstage itself; exposing auth would let clients mint tokens".into()));
                    continue;
                }
                if !self.identifier(&plugin, mark, &join(path, "plugins"), "plugin id") {
                    continue;
                }
                plugins.push(plugin);
            }
        }
        let namespaces = self.namespaces(&fields, "namespaces", path);
        let shared_namespaces = self.namespaces(&fields, "shared_namespaces", path);
        for (list, shared) in [(&namespaces, false), (&shared_namespaces, true)] {
            for (name, mark) in list {
                self.namespaces_claimed.push(NamespaceClaim {
                    tenant: tenant.to_owned(),
                    backend: url.trim_end_matches('/').to_ascii_lowercase(),
                    namespace: name.clone(),
                    shared,
                    mark: *mark,
                    path: join(
                        path,
                        if shared {
                            "shared_namespaces"
                        } else {
                            "namespaces"
                        },
                    ),
                });
            }
        }
        if namespaces.is_empty() {
            self.unscoped_backstage.push((
                tenant.to_owned(),
                url.trim_end_matches('/').to_ascii_lowercase(),
                node.mark,
                join(path, "namespaces"),
            ));
        }
        let user_namespace = self.user_namespace(&fields, path, &namespaces);
        let namespaces: Vec<String> = namespaces.into_iter().map(|(n, _)| n).collect();
        let shared_namespaces: Vec<String> =
            shared_namespaces.into_iter().map(|(n, _)| n).collect();
        if namespaces.is_empty() && !shared_namespaces.is_empty() {
            let mark = fields
                .get("shared_namespaces")
                .map_or(node.mark, |n| n.mark);
            self.error(
                mark,
                &join(path, "shared_namespaces"),
                "shared namespaces without `namespaces` of its own would leave the catalog unscoped",
                Some("list the tenant's own catalog namespaces in `namespaces`".into()),
            );
        }
        let mut allow_unscoped = Vec::new();
        if let Some(list) = fields.get("allow_unscoped") {
            let list_path = join(path, "allow_unscoped");
            for (glob, mark) in self.strings(list, &list_path).unwrap_or_default() {
                let Some(parsed) = PathGlob::parse(&glob) else {
                    self.error(
                        mark,
                        &list_path,
                        format!("`{glob}` is not a path glob"),
                        Some("a catalog endpoint below /api/catalog, e.g. `/locations`".into()),
                    );
                    continue;
                };
                allow_unscoped.push(parsed);
            }
        }
        Some(BackstageSettings {
            backend,
            identity,
            plugins,
            namespaces,
            shared_namespaces,
            user_namespace,
            allow_unscoped,
        })
    }

    /// The namespace users are signed in to Backstage in: one the tenant owns (not merely shares), so
    /// a tenant can never name users of another tenant's namespace, or of `default` it does not own.
    fn user_namespace(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        namespaces: &[(String, Mark)],
    ) -> String {
        let fallback = namespaces
            .first()
            .map_or_else(|| "default".to_owned(), |(first, _)| first.clone());
        let Some(node) = fields.get("user_namespace") else {
            return fallback;
        };
        let key_path = join(path, "user_namespace");
        let Some(name) = self.string(node, &key_path) else {
            return fallback;
        };
        let name = name.to_ascii_lowercase();
        let owned = namespaces.is_empty() || namespaces.iter().any(|(owned, _)| *owned == name);
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !valid || !owned {
            let listed: Vec<&str> = namespaces.iter().map(|(n, _)| n.as_str()).collect();
            self.error(
                node.mark,
                &key_path,
                if valid {
                    format!("`{name}` is not one of this tenant's own `namespaces`")
                } else {
                    format!("`{name}` is not a Backstage namespace")
                },
                Some(if listed.is_empty() {
                    "letters, digits, `-`, `_` and `.`, at most 63 characters".to_owned()
                } else {
                    format!(
                        "users are signed in to Backstage only in a namespace the tenant owns: one of [{}]",
                        listed.join(", ")
                    )
                }),
            );
        }
        name
    }

    /// A list of catalog namespace names (Backstage's rules: lower-case letters, digits, `-`).
    fn namespaces(&mut self, fields: &Fields<'_>, key: &str, path: &str) -> Vec<(String, Mark)> {
        let Some(list) = fields.get(key) else {
            return Vec::new();
        };
        let list_path = join(path, key);
        let mut out: Vec<(String, Mark)> = Vec::new();
        for (name, mark) in self.strings(list, &list_path).unwrap_or_default() {
            let valid = !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
            if !valid {
                self.error(
                    mark,
                    &list_path,
                    format!("`{name}` is not a Backstage namespace"),
                    Some("letters, digits, `-`, `_` and `.`, at most 63 characters".into()),
                );
                continue;
            }
            if !out.iter().any(|(seen, _)| seen.eq_ignore_ascii_case(&name)) {
                out.push((name.to_ascii_lowercase(), mark));
            }
        }
        out
    }

    fn roles(&mut self, node: &Node, path: &str) -> Option<RoleMap> {
        let mut map = RoleMap::default();
        for (name, mark, role_node) in self.named_entries(node, path) {
            let role_path = join(path, &name);
            if !self.identifier(&name, mark, &role_path, "role name") {
                continue;
            }
            let Some(fields) = self.map(role_node, &role_path, &["groups", "description"]) else {
                continue;
            };
            let groups = match fields.get("groups") {
                Some(groups) => self
                    .strings(groups, &join(&role_path, "groups"))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if groups.is_empty() {
                self.error(
                    mark,
                    &join(&role_path, "groups"),
                    format!("role `{name}` is not granted by any group"),
                    Some("list the IdP groups that grant it, e.g. `groups: [eng]`; a role no group maps to can never be held".into()),
                );
                continue;
            }
            if let Some(description) = fields.get("description") {
                self.shown(description, &join(&role_path, "description"));
            }
            map.roles.push((
                RoleName(name),
                groups.into_iter().map(|(group, _)| group).collect(),
            ));
        }
        Some(map)
    }

    fn access_rule(
        &mut self,
        node: &Node,
        path: &str,
        roles: &RoleMap,
        tenant: &str,
    ) -> Option<AccessRule> {
        let fields = self.map(node, path, &["roles"])?;
        self.access_rule_in(&fields, path, roles, tenant)
    }

    /// The `roles:` of an access rule, from a mapping whose keys were already checked.
    fn access_rule_in(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        roles: &RoleMap,
        tenant: &str,
    ) -> Option<AccessRule> {
        let roles_path = join(path, "roles");
        let list = self.required(
            fields,
            "roles",
            path,
            "list the roles that may use this, e.g. `roles: [developer]`",
        )?;
        let mut rule = AccessRule { roles: Vec::new() };
        let mut ok = true;
        for (index, (role, mark)) in self.strings(list, &roles_path)?.into_iter().enumerate() {
            if !roles.defines(&role) {
                let known: Vec<&str> = roles
                    .roles
                    .iter()
                    .map(|(name, _)| name.0.as_str())
                    .collect();
                let listing = if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                };
                let hint = suggest(
                    &role,
                    &known,
                    &format!("roles of tenant `{tenant}`: {listing}"),
                );
                self.error(
                    mark,
                    &format!("{roles_path}[{index}]"),
                    format!("unknown role `{role}`"),
                    Some(hint),
                );
                ok = false;
                continue;
            }
            rule.roles.push(RoleName(role));
        }
        if rule.roles.is_empty() && ok {
            self.error(
                list.mark,
                &roles_path,
                "an access rule needs at least one role",
                Some("default deny: an empty list would hide this from everyone".into()),
            );
            return None;
        }
        ok.then_some(rule)
    }

    fn app(
        &mut self,
        node: &Node,
        path: &str,
        roles: &RoleMap,
        tenant: &str,
        base_dir: &Path,
    ) -> Option<App> {
        let fields = self.map(
            node,
            path,
            &[
                "id",
                "label",
                "category",
                "icon",
                "owner",
                "description",
                "access",
                "upstream",
                "static",
                "nodes",
                "luigi_client",
                "identity",
                "cookies",
                "rules",
                "paths",
            ],
        )?;
        let id_node = self.required(
            &fields,
            "id",
            path,
            "give the app a unique id, e.g. `id: cost-insights`",
        )?;
        let id = self.shown(id_node, &join(path, "id"))?;
        // Name the app in key paths from here on, so errors read `apps[cost-insights].access`.
        let path = if path.is_empty() {
            String::new()
        } else {
            format!(
                "{}[{id}]",
                path.rsplit_once('[').map_or(path, |(head, _)| head)
            )
        };
        let id_path = join(&path, "id");
        let valid_id = self.identifier(&id, id_node.mark, &id_path, "app id");
        if valid_id && RESERVED_SEGMENTS.contains(&id.as_str()) {
            self.error(
                id_node.mark,
                &id_path,
                format!("app id `{id}` collides with the reserved path /{id}"),
                Some(format!(
                    "reserved: {}; pick another id",
                    RESERVED_SEGMENTS.join(", ")
                )),
            );
        }
        let label = match fields.get("label") {
            Some(label) => self.shown(label, &join(&path, "label")),
            None => Some(id.clone()),
        };
        let category = fields
            .get("category")
            .and_then(|n| self.shown(n, &join(&path, "category")));
        let icon = fields
            .get("icon")
            .and_then(|n| self.shown(n, &join(&path, "icon")));
        let owner = fields
            .get("owner")
            .and_then(|n| self.shown(n, &join(&path, "owner")));
        if let Some(description) = fields.get("description") {
            self.shown(description, &join(&path, "description"));
        }
        let luigi_client = match fields.get("luigi_client") {
            Some(flag) => self.bool(flag, &join(&path, "luigi_client")),
            None => Some(true),
        };
        let requests = match fields.get("rules") {
            Some(list) => self.request_rules(list, &join(&path, "rules"), roles, tenant),
            None => Some(Vec::new()),
        };
        let cookies = match fields.get("cookies") {
            Some(node) => match self.string(node, &join(&path, "cookies")).as_deref() {
                Some("jar") => Some(CookieMode::Jar),
                Some("scoped") => Some(CookieMode::Scoped),
                Some("drop") => Some(CookieMode::Drop),
                Some(other) => {
                    let hint = suggest(
                        other,
                        CookieMode::NAMES,
                        "`jar` (the default: kept by portico, never in the browser), `scoped` \
                         (in the browser below /apps/<id>/, readable by every app's script) or `drop`",
                    );
                    self.error(
                        node.mark,
                        &join(&path, "cookies"),
                        format!("unknown cookie mode `{other}`"),
                        Some(hint),
                    );
                    None
                }
                None => None,
            },
            None => Some(CookieMode::default()),
        };
        let identity = match fields.get("identity") {
            Some(node) => self.identity(node, &join(&path, "identity")),
            None => Some(IdentityModes::default()),
        };
        // How node prefixes and rule globs compare letter case (see `rbac::PathCase`).
        let case = match fields.get("paths") {
            Some(node) => match self.string(node, &join(&path, "paths")).as_deref() {
                Some("case_insensitive") => Some(PathCase::Insensitive),
                Some("case_sensitive") => Some(PathCase::Sensitive),
                Some(other) => {
                    self.error(
                        node.mark,
                        &join(&path, "paths"),
                        format!("unknown path mode `{other}`"),
                        Some(
                            "`case_insensitive` (the default: `/Reports` is `/reports`, as Express \
                             routes) or `case_sensitive`"
                                .into(),
                        ),
                    );
                    None
                }
                None => None,
            },
            None => Some(PathCase::default()),
        };
        let access = match fields.get("access") {
            Some(access) => self.access_rule(access, &join(&path, "access"), roles, tenant),
            None => {
                self.error(
                    node.mark,
                    &join(&path, "access"),
                    format!("app `{id}` has no access rule"),
                    Some(
                        "default deny: add `access: { roles: [...] }`; there are no public apps"
                            .into(),
                    ),
                );
                None
            }
        };
        let target = self.app_target(&fields, &path, base_dir, node.mark);
        let mut nodes = Vec::new();
        if let Some(list) = fields.get("nodes") {
            nodes = self
                .nav_nodes(list, &join(&path, "nodes"), roles, tenant)
                .unwrap_or_default();
        }
        let access = access?;
        let mut paths = Vec::new();
        collect_path_rules(&nodes, &mut paths);
        Some(App {
            policy: AccessPolicy {
                app: access.clone(),
                paths,
                requests: requests?,
                case: case?,
            },
            id,
            label: label?,
            category,
            icon,
            owner,
            access,
            target: target?,
            nodes,
            luigi_client: luigi_client?,
            identity: identity?,
            cookies: cookies?,
        })
        .filter(|_| valid_id)
    }

    /// `rules: [{ methods: [POST], path: /admin/**, roles: [platform-admin] }]`: narrowing rules.
    fn request_rules(
        &mut self,
        node: &Node,
        path: &str,
        roles: &RoleMap,
        tenant: &str,
    ) -> Option<Vec<RequestRule>> {
        const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        let mut rules = Vec::new();
        let mut ok = true;
        for (index, item) in self.items(node, path)?.iter().enumerate() {
            let rule_path = format!("{path}[{index}]");
            let Some(fields) = self.map(item, &rule_path, &["methods", "path", "roles"]) else {
                ok = false;
                continue;
            };
            let mut methods = Vec::new();
            if let Some(list) = fields.get("methods") {
                for (method, mark) in self
                    .strings(list, &join(&rule_path, "methods"))
                    .unwrap_or_default()
                {
                    let upper = method.to_ascii_uppercase();
                    if METHODS.contains(&upper.as_str()) {
                        methods.push(upper);
                    } else {
                        self.error(
                            mark,
                            &join(&rule_path, "methods"),
                            format!("unknown method `{method}`"),
                            Some(format!("one of {}", METHODS.join(", "))),
                        );
                        ok = false;
                    }
                }
            }
            let glob = self
                .required(
                    &fields,
                    "path",
                    &rule_path,
                    "a path glob inside the app, e.g. `/admin/**`",
                )
                .and_then(|n| Some((self.string(n, &join(&rule_path, "path"))?, n.mark)));
            let rule = self.access_rule_in(&fields, &rule_path, roles, tenant);
            let (Some((glob, mark)), Some(rule)) = (glob, rule) else {
                ok = false;
                continue;
            };
            let Some(path) = PathGlob::parse(&glob) else {
                self.error(
                    mark,
                    &join(&rule_path, "path"),
                    format!("`{glob}` is not a path glob"),
                    Some(
                        "start with `/`; no `?`, `#`, `%`, `;`, `\\` or segments ending in `.`; \
                         `*` matches in one segment, `**` across segments"
                            .into(),
                    ),
                );
                ok = false;
                continue;
            };
            rules.push(RequestRule {
                methods,
                path,
                rule,
            });
        }
        ok.then_some(rules)
    }

    /// `identity: [assertion, headers, access_token]` or `identity: none`.
    fn identity(&mut self, node: &Node, path: &str) -> Option<IdentityModes> {
        let mut modes = IdentityModes::NONE;
        for (mode, mark) in self.strings(node, path)? {
            match mode.as_str() {
                "assertion" => modes.assertion = true,
                "headers" => modes.headers = true,
                // The user's IdP token reaches whatever else accepts it, not only this app: only
                // the platform (main file, shared_apps) may send it upstream.
                "access_token" if self.team.is_some() => self.error(
                    mark,
                    path,
                    "an app file may not forward the user's access token",
                    Some(format!(
                        "the token is valid beyond this app; the platform can define the app in {} (`apps:` or `shared_apps:`) if it must have it",
                        self.team.as_ref().map_or("the main config", |t| &*t.main_file)
                    )),
                ),
                "access_token" => modes.access_token = true,
                "none" => {}
                other => self.error(
                    mark,
                    path,
                    format!("unknown identity mode `{other}`"),
                    Some("choose from assertion, headers, access_token, or none".into()),
                ),
            }
        }
        Some(modes)
    }

    fn app_target(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        base_dir: &Path,
        mark: Mark,
    ) -> Option<AppTarget> {
        match (fields.get("upstream"), fields.get("static")) {
            (Some(_), Some(static_node)) => {
                self.error(
                    static_node.mark,
                    &join(path, "static"),
                    "an app has either `upstream` or `static`, not both",
                    None,
                );
                None
            }
            (None, None) => {
                self.error(
                    mark,
                    path,
                    "the app has neither `upstream` nor `static`",
                    Some("add `upstream: http://host:port` or `static: ./dist`".into()),
                );
                None
            }
            (Some(node), None) => {
                let upstream_path = join(path, "upstream");
                let url = self.string(node, &upstream_path)?;
                match parse_upstream(&url) {
                    Ok(upstream) => Some(AppTarget::Upstream(upstream)),
                    Err(message) => {
                        self.error(
                            node.mark,
                            &upstream_path,
                            message,
                            Some(
                                "e.g. http://127.0.0.1:3000 or http://app.internal:8080/base"
                                    .into(),
                            ),
                        );
                        None
                    }
                }
            }
            (None, Some(node)) => {
                let static_path = join(path, "static");
                let dir = self.string(node, &static_path)?;
                if let Some(name) = dir.strip_prefix("embedded:") {
                    if assets::DemoApps::has_bundle(name) {
                        return Some(AppTarget::Embedded(name.to_owned()));
                    }
                    self.error(
                        node.mark,
                        &static_path,
                        format!("no embedded bundle `{name}`"),
                        Some(format!(
                            "embedded bundles: {}",
                            assets::DemoApps::bundles().join(", ")
                        )),
                    );
                    return None;
                }
                let full = base_dir.join(dir.trim_start_matches("./"));
                if !self.source.is_dir(&full) {
                    self.error(
                        node.mark,
                        &static_path,
                        format!("`{}` is not a directory", full.display()),
                        Some("paths are relative to the file that names them".into()),
                    );
                    return None;
                }
                if let Some(team) = &self.team {
                    // Decided on the resolved path: `..`, an absolute path and a symlink that
                    // leaves the tree are all the same escape.
                    let resolved = self
                        .source
                        .canonicalize(&full)
                        .unwrap_or_else(|_| normalise_lexically(&full));
                    let inside = resolved.starts_with(&team.dir)
                        || team
                            .static_roots
                            .iter()
                            .any(|root| resolved.starts_with(root));
                    if !inside {
                        let mut allowed = vec![team.dir.display().to_string()];
                        allowed.extend(team.static_roots.iter().map(|r| r.display().to_string()));
                        let hint = format!(
                            "an app file serves only files below its own directory or a directory its tenant allows ({}); the platform can allow more with `apps_static_roots` in tenant `{}` in {}",
                            allowed.join(", "),
                            team.tenant,
                            team.main_file
                        );
                        self.error(
                            node.mark,
                            &static_path,
                            format!(
                                "`static: {dir}` resolves to `{}`, outside the app file's directory",
                                resolved.display()
                            ),
                            Some(hint),
                        );
                        return None;
                    }
                    // Serve what was checked: a link swapped later cannot move the bundle.
                    return Some(AppTarget::StaticDir(resolved));
                }
                Some(AppTarget::StaticDir(full))
            }
        }
    }

    fn nav_nodes(
        &mut self,
        node: &Node,
        path: &str,
        roles: &RoleMap,
        tenant: &str,
    ) -> Option<Vec<NavNode>> {
        let mut nodes: Vec<NavNode> = Vec::new();
        for (index, item) in self.items(node, path)?.iter().enumerate() {
            let node_path = format!("{path}[{index}]");
            let Some(fields) = self.map(
                item,
                &node_path,
                &["path", "label", "view", "icon", "access", "nodes"],
            ) else {
                continue;
            };
            let segment = self
                .required(
                    &fields,
                    "path",
                    &node_path,
                    "the node's path segment, e.g. `path: reports`",
                )
                .and_then(|n| Some((self.shown(n, &join(&node_path, "path"))?, n.mark)));
            let label = self
                .required(
                    &fields,
                    "label",
                    &node_path,
                    "the text shown in the navigation",
                )
                .and_then(|n| self.shown(n, &join(&node_path, "label")));
            let view = self
                .required(
                    &fields,
                    "view",
                    &node_path,
                    "the path inside the app to show, e.g. `view: /reports`",
                )
                .and_then(|n| Some((self.shown(n, &join(&node_path, "view"))?, n.mark)));
            let icon = fields
                .get("icon")
                .and_then(|n| self.shown(n, &join(&node_path, "icon")));
            let access = match fields.get("access") {
                Some(access) => self
                    .access_rule(access, &join(&node_path, "access"), roles, tenant)
                    .map(Some),
                None => Some(None),
            };
            let children = match fields.get("nodes") {
                Some(list) => self.nav_nodes(list, &join(&node_path, "nodes"), roles, tenant),
                None => Some(Vec::new()),
            };
            let (
                Some((segment, segment_mark)),
                Some(label),
                Some((view, view_mark)),
                Some(access),
                Some(children),
            ) = (segment, label, view, access, children)
            else {
                continue;
            };
            let segment_path = join(&node_path, "path");
            if !self.identifier(&segment, segment_mark, &segment_path, "node path") {
                continue;
            }
            if RESERVED_SEGMENTS.contains(&segment.as_str()) {
                self.error(
                    segment_mark,
                    &segment_path,
                    format!("node path `{segment}` collides with the reserved path /{segment}"),
                    Some(format!("reserved: {}", RESERVED_SEGMENTS.join(", "))),
                );
                continue;
            }
            if nodes.iter().any(|existing| existing.path == segment) {
                self.error(
                    segment_mark,
                    &segment_path,
                    format!("duplicate node path `{segment}`"),
                    Some("sibling nodes need distinct paths".into()),
                );
                continue;
            }
            if let Err(message) = check_view(&view) {
                self.error(
                    view_mark,
                    &join(&node_path, "view"),
                    message,
                    Some("a path inside the app such as /reports; no `..`, `?` or `#`".into()),
                );
                continue;
            }
            nodes.push(NavNode {
                path: segment,
                label,
                view,
                icon,
                access,
                children,
            });
        }
        Some(nodes)
    }

    /// Records that `tenant` lists `host`, reporting it where it is listed a second time.
    fn claim_host(&mut self, tenant: &str, host: &str, mark: Mark, path: &str) {
        if let Some((owner, _, first)) = self
            .hosts_claimed
            .iter()
            .find(|(_, claimed, _)| claimed == host)
        {
            let message = if owner == tenant {
                format!(
                    "host `{host}` is listed twice (first at line {})",
                    first.line
                )
            } else {
                format!(
                    "host `{host}` is also listed by tenant `{owner}` (line {})",
                    first.line
                )
            };
            self.error(
                mark,
                path,
                message,
                Some("each host belongs to exactly one tenant".into()),
            );
            return;
        }
        // Cookies are scoped to a host name, not to a port: two tenants on one name share every
        // cookie (each sign-in replaces the other's session cookie, app cookies cross over).
        let name = host_name(host);
        let sibling = self
            .hosts_claimed
            .iter()
            .find(|(owner, claimed, _)| owner != tenant && host_name(claimed) == name)
            .map(|(owner, claimed, first)| (owner.clone(), claimed.clone(), first.line));
        if let Some((owner, claimed, line)) = sibling {
            self.warn(
                mark,
                path,
                format!(
                    "host `{host}` differs from `{claimed}` of tenant `{owner}` (line {line}) only by port, so the two tenants share cookies"
                ),
                Some("browsers send a host's cookies to every port of it: give each tenant its own host name, e.g. `acme.portal.example` and `globex.portal.example`".into()),
            );
        }
        self.hosts_claimed
            .push((tenant.to_owned(), host.to_owned(), mark));
    }
}

/// The name part of `host[:port]` (`[v6]:port` included), which is what cookies are scoped to.
pub(super) fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// ID token signing algorithms portico accepts: asymmetric only, so no one holding the client secret
/// can mint ID tokens, and never `none`.
pub const DEFAULT_SIGNING_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn check_issuer(issuer: &str) -> Result<(), String> {
    let origin = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| format!("issuer `{issuer}` is not an http(s) URL"))?;
    let host = origin.split('/').next().unwrap_or("");
    if issuer.starts_with("http://") {
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let loopback = name == "localhost"
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || name == "[::1]";
        if !loopback {
            return Err(format!(
                "issuer `{issuer}` must use https (plain http is only accepted on loopback, for tests)"
            ));
        }
    }
    if host.is_empty() || issuer.contains(['?', '#']) {
        return Err(format!("issuer `{issuer}` is not a valid issuer URL"));
    }
    Ok(())
}

/// Parses `scheme://host[:port]` with nothing after it.
fn parse_origin(text: &str) -> Result<PublicOrigin, String> {
    let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("`{text}` is not an http(s) origin"));
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "`{text}` must be an origin only: scheme, host and optional port"
        ));
    }
    rest.parse::<http::uri::Authority>()
        .map_err(|_| format!("`{text}` has an invalid host or port"))?;
    Ok(PublicOrigin {
        https,
        origin: format!(
            "{}://{}",
            if https { "https" } else { "http" },
            rest.to_ascii_lowercase()
        ),
    })
}

fn collect_path_rules(nodes: &[NavNode], out: &mut Vec<(String, AccessRule)>) {
    for node in nodes {
        if let Some(rule) = &node.access {
            out.push((node.view.clone(), rule.clone()));
        }
        collect_path_rules(&node.children, out);
    }
}

fn check_view(view: &str) -> Result<(), String> {
    if !view.starts_with('/') {
        return Err(format!("view `{view}` must start with `/`"));
    }
    // Views are matched against canonical paths (see `proxy::path`), which never hold these.
    if view.contains(['?', '#', '\\', '%', ';']) {
        return Err(format!(
            "view `{view}` may not contain `?`, `#`, `%`, `;` or `\\`"
        ));
    }
    if view
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(format!(
            "view `{view}` may not contain `.` or `..` segments"
        ));
    }
    if view.split('/').any(|segment| segment.ends_with('.')) {
        return Err(format!(
            "view `{view}` may not have a segment ending in `.`"
        ));
    }
    Ok(())
}

/// Parses `http://host:port[/base]`. Only plain HTTP upstreams are supported for now.
pub fn parse_upstream(url: &str) -> Result<Upstream, String> {
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(format!("`{url}`: https upstreams are not supported yet"));
    } else {
        return Err(format!("`{url}` is not an http:// URL"));
    };
    let (authority, base) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{url}` has no usable host"));
    }
    if base.contains(['?', '#']) {
        return Err(format!("`{url}` may not carry a query or fragment"));
    }
    let authority: http::uri::Authority = authority
        .parse()
        .map_err(|_| format!("`{url}` has an invalid host or port"))?;
    let authority = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{}:80", authority.host())
    };
    Ok(Upstream {
        authority,
        base_path: base.trim_end_matches('/').to_owned(),
        url: url.to_owned(),
    })
}

/// The allowed word nearest to `word`, if it is close enough to be a likely typo.
/// A hint that names the closest candidate when one is near, then `listing` (what there is to choose).
fn suggest(word: &str, candidates: &[&str], listing: &str) -> String {
    match closest(word, candidates) {
        Some(near) => format!("did you mean `{near}`? {listing}"),
        None => listing.to_owned(),
    }
}

fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}
