//! `${VAR}` in config values: who may read which variable, and the substitution itself.
//!
//! The main file is the platform's and reads any variable. A team's app file (`apps_from`) reads only
//! the variables its tenant allows (`apps_env`). Text shown in browsers reads none, in any file, so a
//! secret can never reach a page through config. `$${` writes a literal `${`. This module only
//! substitutes; it must not know which keys are shown (the raw structs' types say that).

use std::sync::Arc;

use super::source::Source;

/// What `${VAR}` may read in the file being shaped.
pub(crate) struct EnvRules<'s> {
    pub source: &'s dyn Source,
    /// Set while a team's app file is read.
    pub team: Option<&'s TeamEnv>,
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
) -> Result<String, Problem> {
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
            out.push_str(&lookup(name, rules, shown_in)?);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One variable's value, if this value may read it.
fn lookup(name: &str, rules: &EnvRules<'_>, shown_in: Option<&str>) -> Result<String, Problem> {
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
    rules.source.env(name).ok_or_else(|| {
        problem(
            format!("environment variable `{name}` is not set"),
            Some(format!(
                "export {name}=… before starting portico, or remove the reference"
            )),
        )
    })
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
        };
        let sub = |text: &str, shown: Option<&str>| substitute(text, &rules, shown);
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
        };
        let refused = substitute("${HOST}", &rules, None).unwrap_err();
        assert!(refused.message.contains("not available in an app file"));
    }
}
