//! [`Cx`]: where the meaning stage reports. It collects every `Diagnostic` (nothing stops at the first),
//! knows which file is being read and keeps the key path, so a rule says only what is wrong and where
//! in the text (`cx.error(mark, message, hint)`), not how to spell `tenants.acme.apps[x].access`.
//!
//! It also holds the did-you-mean helpers. It must not know any config key.

use std::sync::Arc;

use super::de::Issue;
use super::source::Source;
use super::yaml::Mark;
use super::{Diagnostic, Severity};

/// The compile context: the source, the file being read, the diagnostics so far and the key path.
pub(crate) struct Cx<'s> {
    pub source: &'s dyn Source,
    file: Arc<str>,
    path: String,
    diagnostics: Vec<Diagnostic>,
    /// Unknown keys that are typos of allowed ones, reported already: (file, mapping, the key).
    typos: Vec<(Arc<str>, Mark, &'static str)>,
    /// Set only by `portico check` (`compile::check`), whose config is never served: the app file
    /// under check, and unset `${VAR}`s read as placeholders.
    pub checking: Option<&'s super::compile::Checking>,
}

impl<'s> Cx<'s> {
    pub(crate) fn new(source: &'s dyn Source, file: &str) -> Self {
        Cx {
            source,
            file: Arc::from(file),
            path: String::new(),
            diagnostics: Vec::new(),
            typos: Vec::new(),
            checking: None,
        }
    }

    /// The file being read.
    pub(crate) fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// The key path of what is being read.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn into_diagnostics(self) -> Vec<Diagnostic> {
        self.diagnostics
    }

    /// Runs `f` one key deeper (`key` may be `name`, `name[3]` or `name[id]`).
    pub(crate) fn at<T>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        self.path = join(&self.path, key);
        let out = f(self);
        self.path.truncate(len);
        out
    }

    /// Runs `f` with the key path set to `path` (an absolute path, or `""` for an app file's root).
    pub(crate) fn at_path<T>(&mut self, path: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::replace(&mut self.path, path.to_owned());
        let out = f(self);
        self.path = saved;
        out
    }

    /// Runs `f` reading another file (an `apps_from` file): its diagnostics name that file, and its
    /// key paths start at its root.
    pub(crate) fn in_file<T>(&mut self, file: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved_file = std::mem::replace(&mut self.file, Arc::from(file));
        let out = self.at_path("", f);
        self.file = saved_file;
        out
    }

    fn push(
        &mut self,
        severity: Severity,
        mark: Mark,
        key_path: String,
        message: String,
        hint: Option<String>,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.to_string(),
            mark,
            key_path,
            message,
            hint,
        });
    }

    /// A diagnostic at the current key.
    pub(crate) fn report(
        &mut self,
        severity: Severity,
        mark: Mark,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let path = self.path.clone();
        self.push(severity, mark, path, message.into(), hint);
    }

    /// An error at the current key.
    pub(crate) fn error(&mut self, mark: Mark, message: impl Into<String>, hint: Option<String>) {
        self.report(Severity::Error, mark, message, hint);
    }

    /// A warning at the current key.
    pub(crate) fn warn(&mut self, mark: Mark, message: impl Into<String>, hint: Option<String>) {
        self.report(Severity::Warning, mark, message, hint);
    }

    /// A diagnostic at `key` below the current key.
    pub(crate) fn report_at(
        &mut self,
        severity: Severity,
        mark: Mark,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let path = join(&self.path, key);
        self.push(severity, mark, path, message.into(), hint);
    }

    /// An error at `key` below the current key (the common case: a rule names the key it checks).
    pub(crate) fn error_at(
        &mut self,
        mark: Mark,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.report_at(Severity::Error, mark, key, message, hint);
    }

    /// A diagnostic at an absolute key path (cross-tenant findings, made after the tenants are read).
    pub(crate) fn report_path(
        &mut self,
        severity: Severity,
        mark: Mark,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.push(severity, mark, path.to_owned(), message.into(), hint);
    }

    /// Shape-stage problems, whose paths are relative to the current key.
    pub(crate) fn issues(&mut self, issues: Vec<Issue>) {
        for issue in issues {
            if let Some((mapping, key)) = issue.stands_for {
                self.typos.push((self.file.clone(), mapping, key));
            }
            let path = join(&self.path, &issue.path);
            self.push(issue.severity, issue.mark, path, issue.message, issue.hint);
        }
    }

    /// Whether the mapping at `mark` has a typo of `key` that was reported already (`acess` for
    /// `access`): then `key` missing from it is the same mistake, not a second one.
    pub(crate) fn misspelt(&self, mark: Mark, key: &str) -> bool {
        self.typos
            .iter()
            .any(|(file, mapping, typo)| *file == self.file && *mapping == mark && *typo == key)
    }

    /// Reports a required key that is missing from the mapping at `mark` (unless it is there,
    /// misspelt, and reported as such).
    pub(crate) fn missing(&mut self, mark: Mark, key: &str, hint: &str) {
        if self.misspelt(mark, key) {
            return;
        }
        self.error_at(
            mark,
            key,
            format!("missing required key `{key}`"),
            Some(hint.to_owned()),
        );
    }
}

/// `path.key`, or `key` at the root; an index or id (`[3]`, `[billing]`) attaches without a dot.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else if key.is_empty() {
        path.to_owned()
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

/// The hint for an unknown key: the nearest allowed key if it is a likely typo, then all of them.
pub(crate) fn unknown_key_hint(key: &str, allowed: &[&str]) -> String {
    match closest(key, allowed) {
        Some(near) => format!(
            "did you mean `{near}`? allowed keys: {}",
            allowed.join(", ")
        ),
        None => format!("allowed keys here: {}", allowed.join(", ")),
    }
}

/// A hint that names the closest candidate when one is near, then `listing` (what there is to choose).
pub(crate) fn suggest(word: &str, candidates: &[&str], listing: &str) -> String {
    match closest(word, candidates) {
        Some(near) => format!("did you mean `{near}`? {listing}"),
        None => listing.to_owned(),
    }
}

/// The candidate nearest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::levenshtein(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_key_and_strangers_get_the_list() {
        let allowed = ["hosts", "roles", "apps_from"];
        assert_eq!(closest("hots", &allowed), Some("hosts"));
        assert_eq!(closest("apps_form", &allowed), Some("apps_from"));
        assert_eq!(closest("colour", &allowed), None);
        assert_eq!(
            unknown_key_hint("rolez", &allowed),
            "did you mean `roles`? allowed keys: hosts, roles, apps_from"
        );
        assert_eq!(suggest("x", &allowed, "one of: …"), "one of: …");
    }

    #[test]
    fn paths_join_keys_with_dots_and_indexes_without() {
        assert_eq!(join("", "tenants"), "tenants");
        assert_eq!(join("tenants.acme", "apps[x]"), "tenants.acme.apps[x]");
        assert_eq!(join("shared_apps", "[0]"), "shared_apps[0]");
        assert_eq!(join("a", ""), "a");
    }
}
