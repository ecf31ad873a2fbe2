//! `portico check` of one team's app file, through the binary: recognised as an app file, checked as
//! its tenant's app (found by the tenant's `apps_from`, or named with `--tenant`) by the loader's own
//! rules and confinement (BRIEF invariant 8), without the platform's secrets (an unset `${VAR}` is a
//! warning; `--strict` fails on it), from a file or standard input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
/// The secret the platform's config reads; never set in these tests, as in a team's CI.
const SECRET: &str = "PORTICO_TEST_ACME_OIDC_SECRET";

/// A platform config: acme signs in with OIDC (its secret from the environment) and reads its
/// teams' files and a shared directory; globex reads its own and the shared one too.
const MAIN: &str = "\
tenants:
  acme:
    hosts: [portal.acme.test]
    public_origin: https://portal.acme.test
    auth:
      oidc:
        issuer: https://idp.acme.test
        client_id: portico
        client_secret: ${PORTICO_TEST_ACME_OIDC_SECRET}
    roles:
      developer: { groups: [acme-eng] }
      platform-admin: { groups: [acme-admins] }
    apps_from: [apps.d/acme/*.yaml, apps.d/shared/*.yaml]
    apps:
      - { id: billing, access: { roles: [developer] }, upstream: http://billing.internal:3000 }
  globex:
    hosts: [portal.globex.test]
    auth: { dev_sign_in: { users: [{ id: gina, groups: [globex-eng] }] } }
    roles:
      engineer: { groups: [globex-eng] }
    apps_from: [apps.d/globex/*.yaml, apps.d/shared/*.yaml]
";

const COST: &str = "\
id: cost-insights
label: Cost Insights
access: { roles: [developer, platform-admin] }
upstream: http://cost-insights.internal:3000
";

/// A temporary checkout: the platform's config and one app file per tenant directory.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "portico.yaml", MAIN);
    write(dir.path(), "apps.d/acme/cost-insights.yaml", COST);
    write(
        dir.path(),
        "apps.d/globex/people.yaml",
        "id: people\naccess: { roles: [engineer] }\nupstream: http://people.internal:3000\n",
    );
    write(
        dir.path(),
        "apps.d/shared/wiki.yaml",
        "id: wiki\naccess: { roles: [developer] }\nupstream: http://wiki.internal:3000\n",
    );
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The `file:line:col: severity: message` line of the first diagnostic containing `words`,
    /// with the `key:` and `hint:` lines under it.
    fn diagnostic(&self, words: &str) -> String {
        let all = self.all();
        let lines: Vec<&str> = all.lines().collect();
        let Some(at) = lines
            .iter()
            .position(|line| line.contains(": error: ") || line.contains(": warning: "))
            .and_then(|first| {
                (first..lines.len()).find(|&i| {
                    (lines[i].contains(": error: ") || lines[i].contains(": warning: "))
                        && lines[i].contains(words)
                })
            })
        else {
            panic!("no diagnostic with {words:?} in:\n{all}");
        };
        let mut block = vec![lines[at]];
        block.extend(
            lines[at + 1..]
                .iter()
                .take_while(|line| line.starts_with("    ")),
        );
        block.join("\n")
    }

    fn last_line(&self, of: &str) -> String {
        of.lines().last().unwrap_or_default().to_owned()
    }
}

/// `portico <args>` in `dir`, with `stdin` piped in; the platform's secret and `PORTICO_CONFIG`
/// unset, as in a team's CI.
fn portico(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove(SECRET)
        .env_remove("PORTICO_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the portico binary");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Found by its path: the tenant is the one whose `apps_from` matches, the main config the nearest
/// `portico.yaml`, and the platform's unset secret is no concern of the team's file.
#[test]
fn a_valid_app_file_passes_as_its_tenants() {
    let dir = checkout();
    let run = portico(
        dir.path(),
        &["check", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.last_line(&run.stdout),
        "apps.d/acme/cost-insights.yaml: ok (app `cost-insights` of tenant `acme`)"
    );
    assert!(
        run.stdout
            .contains("note: not counted here: portico.yaml has 1 warning"),
        "{}",
        run.stdout
    );
    // --strict counts the app file's warnings only: the platform's secret is not the team's.
    let strict = portico(
        dir.path(),
        &["check", "--strict", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(strict.code, Some(0), "{}", strict.all());

    // From the app's own directory, the config is found above; --config names it anywhere.
    let inside = portico(
        &dir.path().join("apps.d/acme"),
        &["check", "cost-insights.yaml"],
        None,
    );
    assert_eq!(inside.code, Some(0), "{}", inside.all());
    assert!(
        inside.stdout.contains("../../portico.yaml has 1 warning"),
        "{}",
        inside.stdout
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let config = dir.path().join("portico.yaml");
    let app = dir.path().join("apps.d/acme/cost-insights.yaml");
    let named = portico(
        elsewhere.path(),
        &[
            "check",
            "--config",
            config.to_str().unwrap(),
            app.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(named.code, Some(0), "{}", named.all());
    assert!(named.stdout.contains("of tenant `acme`"), "{}", named.all());
}

#[test]
fn a_role_the_tenant_lacks_is_an_error_with_the_tenants_roles() {
    let dir = checkout();
    write(
        dir.path(),
        "apps.d/acme/cost-insights.yaml",
        &COST.replace("[developer, platform-admin]", "[developer, finance]"),
    );
    let run = portico(
        dir.path(),
        &["check", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.diagnostic("unknown role"),
        "apps.d/acme/cost-insights.yaml:3:30: error: unknown role `finance`\n    key: access.roles[1]\n    hint: roles of tenant `acme`: developer, platform-admin"
    );
    assert_eq!(
        run.last_line(&run.stderr),
        "1 error in apps.d/acme/cost-insights.yaml (app `cost-insights` of tenant `acme`)"
    );
}

/// The main config is checked without the platform's secrets too: an unset `${VAR}` is a warning,
/// and only `--strict` fails on it.
#[test]
fn a_main_config_with_an_unset_secret_warns_and_fails_only_when_strict() {
    let dir = checkout();
    // Without the shared directory, whose app names a role only acme has (an error here).
    write(
        dir.path(),
        "portico.yaml",
        &MAIN.replace(", apps.d/shared/*.yaml", ""),
    );
    let run = portico(dir.path(), &["check", "portico.yaml"], None);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(
        run.diagnostic(SECRET),
        format!(
            "portico.yaml:9:24: warning: `${{{SECRET}}}` is not set; the value is not checked without it\n    key: tenants.acme.auth.oidc.client_secret\n    hint: `portico serve` refuses the config until it is set where portico runs"
        )
    );
    assert_eq!(
        run.last_line(&run.stdout),
        "portico.yaml: ok (2 tenant(s), 3 app(s)), 1 warning"
    );

    let strict = portico(dir.path(), &["check", "--strict", "portico.yaml"], None);
    assert_eq!(strict.code, Some(1), "{}", strict.all());
    assert_eq!(
        strict.last_line(&strict.stderr),
        "1 warning in portico.yaml (2 tenant(s), 3 app(s)); --strict fails on warnings"
    );

    // `serve` has no such mode: the same config is refused while the secret is unset.
    let serve = portico(
        dir.path(),
        &[
            "serve",
            "--config",
            "portico.yaml",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(serve.code, Some(1), "{}", serve.all());
    assert!(
        serve
            .all()
            .contains(&format!("environment variable `{SECRET}` is not set")),
        "{}",
        serve.all()
    );
}

#[test]
fn standard_input_is_checked_and_named() {
    let dir = checkout();
    let broken = COST.replace("[developer, platform-admin]", "[finance]");
    // No path: the tenant must be named, and diagnostics say `<stdin>`.
    let unnamed = portico(dir.path(), &["check", "-"], Some(&broken));
    assert_eq!(unnamed.code, Some(1), "{}", unnamed.all());
    assert!(
        unnamed
            .stderr
            .contains("error: no `apps_from` pattern in portico.yaml matches <stdin>"),
        "{}",
        unnamed.all()
    );
    assert!(
        unnamed.stderr.contains("`--tenant <id>`") && unnamed.stderr.contains("--stdin-name"),
        "{}",
        unnamed.all()
    );
    let run = portico(
        dir.path(),
        &["check", "--tenant", "acme", "-"],
        Some(&broken),
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.diagnostic("unknown role")
            .starts_with("<stdin>:3:19: error: unknown role `finance`"),
        "{}",
        run.all()
    );
    assert_eq!(
        run.last_line(&run.stderr),
        "1 error in <stdin> (app `cost-insights` of tenant `acme`)"
    );

    // --stdin-name: the path it stands for names it and picks the tenant by its pattern, and its
    // text is checked instead of the file under that name.
    let named = portico(
        dir.path(),
        &["check", "--stdin-name", "apps.d/globex/people.yaml", "-"],
        Some("id: people\naccess: { roles: [engineer] }\nstatic: ./dist\n"),
    );
    assert_eq!(named.code, Some(1), "{}", named.all());
    assert!(
        named
            .diagnostic("not a directory")
            .starts_with("apps.d/globex/people.yaml:3:9: error:"),
        "{}",
        named.all()
    );
    assert!(
        named.stderr.contains("(app `people` of tenant `globex`)"),
        "{}",
        named.all()
    );
}

#[test]
fn the_tenant_comes_from_the_flag_when_patterns_do_not_decide() {
    let dir = checkout();
    let ambiguous = portico(dir.path(), &["check", "apps.d/shared/wiki.yaml"], None);
    assert_eq!(ambiguous.code, Some(1), "{}", ambiguous.all());
    assert_eq!(
        ambiguous.stderr.trim_end(),
        "error: apps.d/shared/wiki.yaml is read by several tenants of portico.yaml: acme, globex\n    hint: name the one to check it as: `portico check --tenant acme apps.d/shared/wiki.yaml`"
    );
    let acme = portico(
        dir.path(),
        &["check", "--tenant", "acme", "apps.d/shared/wiki.yaml"],
        None,
    );
    assert_eq!(acme.code, Some(0), "{}", acme.all());
    assert!(
        acme.stdout.contains("(app `wiki` of tenant `acme`)"),
        "{}",
        acme.all()
    );
    // Checked as globex's, the same file names a role globex does not have.
    let globex = portico(
        dir.path(),
        &["check", "--tenant", "globex", "apps.d/shared/wiki.yaml"],
        None,
    );
    assert_eq!(globex.code, Some(1), "{}", globex.all());
    assert!(
        globex
            .diagnostic("unknown role")
            .contains("hint: roles of tenant `globex`: engineer"),
        "{}",
        globex.all()
    );
    let unknown = portico(
        dir.path(),
        &["check", "--tenant", "initech", "apps.d/shared/wiki.yaml"],
        None,
    );
    assert_eq!(unknown.code, Some(1), "{}", unknown.all());
    assert_eq!(
        unknown.stderr.trim_end(),
        "error: portico.yaml has no tenant `initech`\n    hint: the tenants: acme, globex"
    );

    // No config anywhere: say how to name one.
    let lonely = tempfile::tempdir().unwrap();
    write(lonely.path(), "cost.yaml", COST);
    let none = portico(lonely.path(), &["check", "cost.yaml"], None);
    assert_eq!(none.code, Some(1), "{}", none.all());
    assert!(
        none.stderr.contains("no main config to check it against")
            && none.stderr.contains("--config path/to/portico.yaml"),
        "{}",
        none.all()
    );
}

/// BRIEF invariant 8, as in the full load: an app file reaches nothing outside its own directory.
#[test]
fn an_app_file_escaping_its_directory_is_refused() {
    let dir = checkout();
    std::fs::create_dir_all(dir.path().join("apps.d/other")).unwrap();
    write(
        dir.path(),
        "apps.d/acme/cost-insights.yaml",
        "id: cost-insights\naccess: { roles: [developer] }\nstatic: ../other\n",
    );
    let run = portico(
        dir.path(),
        &["check", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    let diagnostic = run.diagnostic("outside the app file's directory");
    assert!(
        diagnostic.starts_with(
            "apps.d/acme/cost-insights.yaml:3:9: error: `static: ../other` resolves to"
        ),
        "{diagnostic}"
    );
    // The full load of the platform's config (with its secret) says the same about the file.
    let full = Command::new(BIN)
        .args(["check", "portico.yaml"])
        .current_dir(dir.path())
        .env(SECRET, "s3cr3t")
        .env_remove("PORTICO_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&full.stderr);
    assert!(text.contains(&diagnostic), "{text}");
}

#[test]
fn a_duplicate_id_names_the_other_definition() {
    let dir = checkout();
    // Another team's file of the same tenant, read before this one.
    write(
        dir.path(),
        "apps.d/acme/budget.yaml",
        "\n\nid: cost-insights\naccess: { roles: [developer] }\nupstream: http://budget:1\n",
    );
    let run = portico(
        dir.path(),
        &["check", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.diagnostic("duplicate app id"),
        "apps.d/acme/cost-insights.yaml:1:1: error: duplicate app id `cost-insights`\n    key: id\n    hint: app ids must be unique within a tenant; `cost-insights` is first defined at apps.d/acme/budget.yaml:3:1"
    );
    // An id the platform's config has, inline.
    write(
        dir.path(),
        "apps.d/acme/cost-insights.yaml",
        &COST.replace("id: cost-insights", "id: billing"),
    );
    let run = portico(
        dir.path(),
        &["check", "apps.d/acme/cost-insights.yaml"],
        None,
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.diagnostic("duplicate app id")
            .ends_with("`billing` is first defined at portico.yaml:15:11"),
        "{}",
        run.all()
    );
}

#[test]
fn a_file_that_is_neither_kind_is_refused_with_what_each_looks_like() {
    let dir = checkout();
    write(dir.path(), "apps.d/acme/list.yaml", "- id: cost\n");
    let run = portico(dir.path(), &["check", "apps.d/acme/list.yaml"], None);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(
        run.diagnostic("neither"),
        "apps.d/acme/list.yaml:1:1: error: this is neither a main config nor an app file\n    hint: a main config is a mapping with `tenants:` (and `server:`, …); a team's app file is a mapping with the app's `id:` at the top (`portico schema --app` prints its schema)"
    );
}

/// A glob beside a main config named without a directory (`portico.yaml`, `apps_from: "*.app.yaml"`)
/// returns bare names, whose directory is `.`: an app file there is still confined to it (the empty
/// path it once was confined to is a prefix of every path).
#[test]
fn an_app_file_beside_the_main_config_is_confined_too() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "portico.yaml",
        "tenants:\n  acme:\n    hosts: [portal.acme.test]\n    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }\n    roles:\n      developer: { groups: [eng] }\n    apps_from: \"*.app.yaml\"\n",
    );
    write(
        dir.path(),
        "cost.app.yaml",
        "id: cost\naccess: { roles: [developer] }\nstatic: /etc\n",
    );
    for args in [&["check", "portico.yaml"][..], &["check", "cost.app.yaml"]] {
        let run = portico(dir.path(), args, None);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.all());
        assert!(
            run.diagnostic("outside the app file's directory")
                .starts_with("cost.app.yaml:3:9: error: `static: /etc` resolves to `/etc`"),
            "{args:?}: {}",
            run.all()
        );
    }
}
