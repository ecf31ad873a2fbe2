//! `${VAR}` in config values: who may read which variable, and the substitution itself.
//!
//! The main file is the platform's and reads any variable. A team's app file (`apps_from`) reads only
//! the variables its tenant allows (`apps_env`). Text shown in browsers reads none, in any file, so a
//! secret can never reach a page through config. `$${` writes a literal `${`. This module only
//! substitutes; it must not know which keys are shown (the raw structs' types say that).
//!
//! An unset variable is an error, except under `portico check`, which checks a config without the
//! platform's secrets ([`Unset::Placeholder`]): there it reads as a placeholder and is reported as a
//! warning. Only the check path asks for that, and it never hands out the config it compiles.

use std::sync::Arc;

use super::source::Source;

/// What `${VAR}` may read in the file being shaped.
pub(crate) struct EnvRules<'s> {
    pub source: &'s dyn Source,
    /// Set while a team's app file is read.
    pub team: Option<&'s TeamEnv>,
    /// What an unset variable does.
    pub unset: Unset,
}

/// What an unset `${VAR}` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unset {
    /// It is an error: the config cannot be used (what `serve` and a reload load).
    Refuse,
    /// It reads as a placeholder and is noted in [`Substituted::unset`], for `portico check`
    /// without the platform's secrets. The value is never served: the check path compiles
    /// (`compile::check`) but hands out only what it found.
    Placeholder,
}

/// A value with its `${VAR}`s replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Substituted {
    pub text: String,
    /// Variables that were unset and read as a placeholder ([`Unset::Placeholder`] only).
    pub unset: Vec<String>,
    /// The value was one unset variable and nothing else: nothing of it is known.
    pub unknown: bool,
}

/// What an unset variable reads as under [`Unset::Placeholder`], within a value: a word that is a
/// valid host name label, path segment and secret, so the text around it is still checked
/// (`http://${HOST}:3000` still makes a URL). A whole value reads as an https URL in the reserved
/// `.invalid` domain, which most whole values are (issuers, upstreams, origins), so the rules that
/// build on it still run. Never a value anyone configured, and never served.
fn placeholder(name: &str, whole: bool) -> String {
    let word = format!("unset-{}", name.to_ascii_lowercase().replace('_', "-"));
    if whole {
        format!("https://{word}.invalid")
    } else {
        word
    }
}

/// The warning for a variable read as a placeholder: the value it is all of is not checked (an
/// error there is about the placeholder, `portico check` leaves it out: [`value_unknown`]), one it
/// is part of is checked with the placeholder in its place.
pub(crate) fn unset_message(name: &str, unknown: bool) -> String {
    if unknown {
        format!("`${{{name}}}` is not set; {UNKNOWN}")
    } else {
        format!(
            "`${{{name}}}` is not set; the value is checked with `{}` in its place",
            placeholder(name, false)
        )
    }
}

const UNKNOWN: &str = "the value is not checked without it";

/// The hint of [`unset_message`].
pub(crate) const UNSET_HINT: &str =
    "`portico serve` refuses the config until it is set where portico runs";

/// Whether `message` is [`unset_message`]'s for a whole value, whose errors are the placeholder's.
pub(crate) fn value_unknown(message: &str) -> bool {
    message
        .strip_prefix("`${")
        .and_then(|rest| rest.strip_suffix(&format!("}}` is not set; {UNKNOWN}")))
        .is_some_and(valid_name)
}

/// The variables a tenant lets its teams' app files read.
#[derive(Debug, Clone, Default)]
pub(crate) struct TeamEnv {
    pub tenant: String,
    /// `apps_env`.
    pub allowed: Vec<String>,
    /// The main config file, named in hints (the team cannot fix these in its own file).
    pub main_file: Arc<str>,
}

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

fn problem(message: String, hint: Option<String>) -> Problem {
    Problem { message, hint }
}

/// Whether `name` is a valid environment variable name (letters, digits, `_`, not starting with a digit).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Replaces `${NAME}` with the variable's value (`$${` is a literal `${`). `shown_in` names the key of a
/// value shown to users, where any `${NAME}` is refused.
pub(crate) fn substitute(
    text: &str,
    rules: &EnvRules<'_>,
    shown_in: Option<&str>,
) -> Result<Substituted, Problem> {
    let mut unset = Vec::new();
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
                return Err(problem(
                    "unclosed `${` in value".into(),
                    Some("write `${NAME}`, or `$${` for a literal `${`".into()),
                ));
            };
            let name = &inner[..end];
            match lookup(name, rules, shown_in)? {
                Some(value) => out.push_str(&value),
                None => {
                    out.push_str(&placeholder(name, text == format!("${{{name}}}")));
                    unset.push(name.to_owned());
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    let unknown = matches!(unset.as_slice(), [name] if text == format!("${{{name}}}"));
    Ok(Substituted {
        text: out,
        unset,
        unknown,
    })
}

/// One variable's value, if this value may read it; `None` when it is unset and the rules read
/// unset variables as a placeholder.
fn lookup(
    name: &str,
    rules: &EnvRules<'_>,
    shown_in: Option<&str>,
) -> Result<Option<String>, Problem> {
    if !valid_name(name) {
        return Err(problem(
            format!("`${{{name}}}` is not a valid environment variable name"),
            None,
        ));
    }
    if let Some(key) = shown_in {
        return Err(problem(
            format!("`${{{name}}}` cannot be used in `{key}`: it is shown in users' browsers"),
            Some("write the text itself; environment variables are read only in settings the browser never receives (secrets, upstream URLs, listen addresses); `$${` is a literal `${`".into()),
        ));
    }
    if let Some(team) = rules.team {
        if !team.allowed.iter().any(|allowed| allowed == name) {
            return Err(problem(
                format!("`${{{name}}}` is not available in an app file"),
                Some(format!(
                    "a team's app file reads only the variables its tenant allows: the platform can add `apps_env: [{name}]` to tenant `{}` in {}; otherwise write the value itself",
                    team.tenant, team.main_file
                )),
            ));
        }
    }
    match (rules.source.env(name), rules.unset) {
        (Some(value), _) => Ok(Some(value)),
        (None, Unset::Placeholder) => Ok(None),
        (None, Unset::Refuse) => Err(problem(
            format!("environment variable `{name}` is not set"),
            Some(format!(
                "export {name}=… before starting portico, or remove the reference"
            )),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemorySource;

    #[test]
    fn variables_are_substituted_escaped_and_refused_where_shown() {
        let mut source = MemorySource::default();
        source.env.insert("HOST".into(), "h".into());
        let rules = EnvRules {
            source: &source,
            team: None,
            unset: Unset::Refuse,
        };
        let sub = |text: &str, shown: Option<&str>| {
            substitute(text, &rules, shown).map(|substituted| substituted.text)
        };
        assert_eq!(
            sub("http://${HOST}:1/$${x}$", None).unwrap(),
            "http://h:1/${x}$"
        );
        assert!(
            sub("${HOST", None)
                .unwrap_err()
                .message
                .contains("unclosed")
        );
        assert!(
            sub("${1X}", None)
                .unwrap_err()
                .message
                .contains("not a valid")
        );
        assert!(
            sub("${NOPE}", None)
                .unwrap_err()
                .message
                .contains("is not set")
        );
        let shown = sub("${HOST}", Some("label")).unwrap_err();
        assert_eq!(
            shown.message,
            "`${HOST}` cannot be used in `label`: it is shown in users' browsers"
        );
        assert_eq!(sub("$${HOST}", Some("label")).unwrap(), "${HOST}");
        let team = TeamEnv {
            tenant: "acme".into(),
            allowed: vec!["REGION".into()],
            main_file: Arc::from("portico.yaml"),
        };
        let rules = EnvRules {
            source: &source,
            team: Some(&team),
            unset: Unset::Refuse,
        };
        let refused = substitute("${HOST}", &rules, None).unwrap_err();
        assert!(refused.message.contains("not available in an app file"));
    }

    /// `portico check` without the platform's secrets: an unset variable reads as a placeholder
    /// and is named, a set one is still read, and every other rule still refuses.
    #[test]
    fn unset_variables_read_as_placeholders_only_when_checking() {
        let mut source = MemorySource::default();
        source.env.insert("HOST".into(), "h".into());
        let rules = EnvRules {
            source: &source,
            team: None,
            unset: Unset::Placeholder,
        };
        assert_eq!(
            substitute("http://${HOST}:1/${ACME_OIDC_SECRET}${X}", &rules, None).unwrap(),
            Substituted {
                text: "http://h:1/unset-acme-oidc-secretunset-x".into(),
                unset: vec!["ACME_OIDC_SECRET".into(), "X".into()],
                unknown: false,
            }
        );
        assert_eq!(
            substitute("${ACME_ISSUER}", &rules, None).unwrap(),
            Substituted {
                text: "https://unset-acme-issuer.invalid".into(),
                unset: vec!["ACME_ISSUER".into()],
                unknown: true,
            }
        );
        assert!(substitute("${NOPE}", &rules, Some("label")).is_err());
        assert!(substitute("${1X}", &rules, None).is_err());
        let team = TeamEnv {
            tenant: "acme".into(),
            allowed: vec!["REGION".into()],
            main_file: Arc::from("portico.yaml"),
        };
        let team_rules = EnvRules {
            team: Some(&team),
            ..rules
        };
        // A team's file still reads only what its tenant allows, set or not.
        assert!(substitute("${NOPE}", &team_rules, None).is_err());
        assert_eq!(
            substitute("${REGION}", &team_rules, None).unwrap().unset,
            ["REGION"]
        );
        assert!(value_unknown(&unset_message("REGION", true)));
        assert!(!value_unknown(&unset_message("REGION", false)));
        assert!(!value_unknown("`${REGION}` is not set"));
    }
}
