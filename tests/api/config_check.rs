//! The `portico` binary: `check` reports every config problem with file:line:column, key path and hint;
//! `serve` refuses broken or unsafe configs with the same report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_portico");
const UNSET_VAR: &str = "PORTICO_TEST_SURELY_UNSET_VARIABLE";

/// A valid config; the broken ones below are small edits of it, so line numbers are easy to follow.
const VALID: &str = "\
version: 1
tenants:
  acme:
    hosts: [portal.acme.test]
    auth:
      dev_sign_in:
        users:
          - { id: ann, groups: [eng] }
    roles:
      developer: { groups: [eng] }
    apps:
      - id: billing
        access: { roles: [developer] }
        upstream: http://127.0.0.1:9000
";

/// One diagnostic as `portico check` prints it.
#[derive(Debug)]
struct Diagnostic {
    file: String,
    line: usize,
    column: usize,
    severity: String,
    message: String,
    key: Option<String>,
    hint: Option<String>,
}

/// What a run of the binary printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Parses `file:line:col: severity: message` blocks with their `key:` and `hint:` lines.
    fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut found: Vec<Diagnostic> = Vec::new();
        for line in self.all().lines() {
            if let Some(key) = line.strip_prefix("    key: ") {
                if let Some(last) = found.last_mut() {
                    last.key = Some(key.to_owned());
                }
                continue;
            }
            if let Some(hint) = line.strip_prefix("    hint: ") {
                if let Some(last) = found.last_mut() {
                    last.hint = Some(hint.to_owned());
                }
                continue;
            }
            if let Some(diagnostic) = parse_head(line) {
                found.push(diagnostic);
            }
        }
        found
    }

    fn errors(&self) -> Vec<Diagnostic> {
        self.diagnostics()
            .into_iter()
            .filter(|d| d.severity == "error")
            .collect()
    }
}

/// `"/tmp/x/a.yaml:12:7: error: message"`; the file name may itself contain `:` only on Windows.
fn parse_head(line: &str) -> Option<Diagnostic> {
    for severity in ["error", "warning"] {
        let marker = format!(": {severity}: ");
        let Some((location, message)) = line.split_once(&marker) else {
            continue;
        };
        let mut parts = location.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line_number = parts.next()?.parse().ok()?;
        let file = parts.next()?.to_owned();
        return Some(Diagnostic {
            file,
            line: line_number,
            column,
            severity: severity.to_owned(),
            message: message.to_owned(),
            key: None,
            hint: None,
        });
    }
    None
}

/// What one expected error looks like. `column: None` checks the line only.
struct Expect<'a> {
    line: usize,
    column: Option<usize>,
    message: &'a str,
    key: &'a str,
    hint: Option<&'a str>,
}

fn assert_reported(run: &Run, file: &Path, expect: &Expect<'_>) {
    let file = file.display().to_string();
    let errors = run.errors();
    let found = errors.iter().find(|d| d.message.contains(expect.message));
    let Some(found) = found else {
        panic!(
            "no error containing {:?}; output was:\n{}",
            expect.message,
            run.all()
        );
    };
    assert_eq!(found.file, file, "file of {found:?}");
    assert_eq!(found.line, expect.line, "line of {found:?}");
    if let Some(column) = expect.column {
        assert_eq!(found.column, column, "column of {found:?}");
    } else {
        assert!(found.column >= 1, "a 1-based column in {found:?}");
    }
    // Syntax errors have no key path: the report leaves the `key:` line out.
    let key = Some(expect.key).filter(|key| !key.is_empty());
    assert_eq!(found.key.as_deref(), key, "key of {found:?}");
    if let Some(hint) = expect.hint {
        assert!(
            found.hint.as_deref().is_some_and(|h| h.contains(hint)),
            "hint {hint:?} in {found:?}"
        );
    }
}

fn portico(args: &[&str]) -> Run {
    let output = Command::new(BIN)
        .args(args)
        .env_remove(UNSET_VAR)
        .env_remove("PORTICO_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run the portico binary");
    Run::from(output)
}

/// Runs `portico <args>` and kills it if it has not exited within `limit`.
fn portico_with_timeout(args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("PORTICO_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the portico binary");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("poll the child").is_some() {
            return Run::from(child.wait_with_output().expect("collect output"));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let run = Run::from(child.wait_with_output().expect("collect output"));
            panic!(
                "`portico {}` was still running after {limit:?}; output:\n{}",
                args.join(" "),
                run.all()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(file: &Path) -> Run {
    portico(&["check", path_arg(file)])
}

fn path_arg(file: &Path) -> &str {
    file.to_str().expect("temp paths are UTF-8")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Checks `text` as a config file and asserts it fails with exactly this error.
fn assert_single_error(text: &str, expect: Expect<'_>) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", text);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "exit code; output:\n{}", run.all());
    assert_reported(&run, &file, &expect);
    assert_eq!(run.errors().len(), 1, "exactly one error:\n{}", run.all());
    assert!(run.all().contains("error(s) found"), "{}", run.all());
}

/// `server.workers` takes `auto` or a count; anything else names the key and says what fits.
#[test]
fn a_worker_count_that_is_not_one_is_reported() {
    for bad in ["0", "many", "2000"] {
        let text = format!(
            "server: {{ workers: {bad} }}\n{}",
            VALID.trim_start_matches("version: 1\n")
        );
        let text = format!("version: 1\n{text}");
        assert_single_error(
            &text,
            Expect {
                line: 2,
                column: Some(20),
                message: &format!(
                    "`{bad}` is neither `auto` nor a number of workers from 1 to 1024"
                ),
                key: "server.workers",
                hint: Some("`auto` (one per CPU core) or e.g. 4"),
            },
        );
    }
}

#[test]
fn a_valid_config_passes() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", VALID);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        run.stdout.contains("ok (1 tenant(s), 1 app(s))"),
        "{}",
        run.stdout
    );
    assert!(run.errors().is_empty());
}

#[test]
fn unknown_keys_are_reported_with_a_did_you_mean_hint() {
    let text = VALID.replace(
        "        upstream: http://127.0.0.1:9000",
        "        upstrem: http://127.0.0.1:9000",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(1));
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 14,
            column: Some(9),
            message: "unknown key `upstrem`",
            key: "tenants.acme.apps[0].upstrem",
            hint: Some("did you mean `upstream`?"),
        },
    );

    let top = format!("defualt_tenant: acme\n{VALID}");
    let file = write(dir.path(), "top.yaml", &top);
    let run = check(&file);
    assert_eq!(run.code, Some(1));
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 1,
            column: Some(1),
            message: "unknown key `defualt_tenant`",
            key: "defualt_tenant",
            hint: Some("did you mean `default_tenant`?"),
        },
    );
}

#[test]
fn unknown_role_is_reported_where_it_is_used() {
    let text = VALID.replace("roles: [developer] }", "roles: [developr] }");
    assert_single_error(
        &text,
        Expect {
            line: 13,
            column: Some(27),
            message: "unknown role `developr`",
            key: "tenants.acme.apps[billing].access.roles[0]",
            hint: Some("did you mean `developer`?"),
        },
    );
}

#[test]
fn an_app_without_an_access_rule_is_refused() {
    let text = VALID.replace("        access: { roles: [developer] }\n", "");
    // The position is the app's entry; its column is not asserted (see the report on mapping marks).
    assert_single_error(
        &text,
        Expect {
            line: 12,
            column: None,
            message: "app `billing` has no access rule",
            key: "tenants.acme.apps[billing].access",
            hint: Some("default deny"),
        },
    );
}

/// `paths:` of an app takes two values; anything else is reported where it is written, with both.
#[test]
fn an_unknown_path_mode_is_refused() {
    for mode in ["case_sensitive", "case_insensitive"] {
        let text = VALID.replace(
            "        upstream: http://127.0.0.1:9000\n",
            &format!("        upstream: http://127.0.0.1:9000\n        paths: {mode}\n"),
        );
        let dir = tempfile::tempdir().unwrap();
        let run = check(&write(dir.path(), "portico.yaml", &text));
        assert_eq!(run.code, Some(0), "{mode}: {}", run.all());
    }
    let text = VALID.replace(
        "        upstream: http://127.0.0.1:9000\n",
        "        upstream: http://127.0.0.1:9000\n        paths: ignore_case\n",
    );
    assert_single_error(
        &text,
        Expect {
            line: 15,
            column: Some(16),
            message: "unknown path mode `ignore_case`",
            key: "tenants.acme.apps[billing].paths",
            hint: Some("`case_sensitive`"),
        },
    );
}

#[test]
fn duplicate_app_ids_are_refused() {
    let text = format!(
        "{VALID}      - id: billing\n        access: {{ roles: [developer] }}\n        upstream: http://127.0.0.1:9001\n"
    );
    assert_single_error(
        &text,
        Expect {
            line: 15,
            column: None,
            message: "duplicate app id `billing`",
            key: "tenants.acme.apps[1].id",
            hint: Some("unique"),
        },
    );
}

#[test]
fn reserved_app_ids_are_refused() {
    let text = VALID.replace("- id: billing", "- id: auth");
    assert_single_error(
        &text,
        Expect {
            line: 12,
            column: Some(13),
            message: "app id `auth` collides with the reserved path /auth",
            key: "tenants.acme.apps[auth].id",
            hint: Some("pick another id"),
        },
    );
}

#[test]
fn reserved_node_paths_are_refused() {
    let text = format!(
        "{VALID}        nodes:\n          - {{ path: shell, label: Shell, view: /shell }}\n"
    );
    assert_single_error(
        &text,
        Expect {
            line: 16,
            column: Some(21),
            message: "node path `shell` collides with the reserved path /shell",
            key: "tenants.acme.apps[billing].nodes[0].path",
            hint: Some("reserved"),
        },
    );
}

#[test]
fn a_role_no_group_grants_is_refused() {
    let text = VALID.replace(
        "      developer: { groups: [eng] }\n",
        "      developer: { groups: [eng] }\n      auditor: { groups: [] }\n",
    );
    assert_single_error(
        &text,
        Expect {
            line: 11,
            column: Some(7),
            message: "role `auditor` is not granted by any group",
            key: "tenants.acme.roles.auditor.groups",
            hint: Some("list the IdP groups"),
        },
    );
}

/// `check` reads no secrets: an unset variable is a warning there (exit 1 only with `--strict`);
/// `serve` refuses it (`serve_refuses_a_broken_config_with_the_same_report`).
#[test]
fn unset_environment_variables_are_reported() {
    let text = VALID.replace("http://127.0.0.1:9000", &format!("${{{UNSET_VAR}}}"));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.errors().is_empty(), "{}", run.all());
    let warning = run
        .diagnostics()
        .into_iter()
        .find(|d| d.message.contains(UNSET_VAR))
        .unwrap_or_else(|| panic!("no warning naming the variable:\n{}", run.all()));
    assert_eq!((warning.line, warning.column), (14, 19), "{warning:?}");
    assert_eq!(warning.severity, "warning");
    let strict = portico(&["check", "--strict", path_arg(&file)]);
    assert_eq!(strict.code, Some(1), "{}", strict.all());
}

#[test]
fn environment_variables_are_substituted_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace("http://127.0.0.1:9000", "${PORTICO_TEST_UPSTREAM}");
    let file = write(dir.path(), "portico.yaml", &text);
    let output = Command::new(BIN)
        .args(["check", path_arg(&file)])
        .env("PORTICO_TEST_UPSTREAM", "http://127.0.0.1:9000")
        .output()
        .unwrap();
    let run = Run::from(output);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn yaml_syntax_errors_are_positioned() {
    let text = VALID.replace(
        "    hosts: [portal.acme.test]",
        "    hosts: portal: acme.test",
    );
    assert_single_error(
        &text,
        Expect {
            line: 4,
            column: Some(18),
            message: "mapping values are not allowed",
            key: "",
            hint: Some("fix the YAML syntax"),
        },
    );
}

#[test]
fn errors_in_apps_from_files_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let main = VALID.replace(
        "    apps:\n      - id: billing\n        access: { roles: [developer] }\n        upstream: http://127.0.0.1:9000\n",
        "    apps_from: apps/*.yaml\n",
    );
    let main = write(dir.path(), "portico.yaml", &main);
    let billing = write(
        dir.path(),
        "apps/billing.yaml",
        "id: billing\naccess: { roles: [developr] }\nupstream: http://127.0.0.1:9000\n",
    );
    let broken = write(
        dir.path(),
        "apps/crm.yaml",
        "id: crm\naccess: { roles: [developer] }\nupstream: http: //x\n",
    );
    let good = write(
        dir.path(),
        "apps/wiki.yaml",
        "id: wiki\naccess: { roles: [developer] }\nupstream: http://127.0.0.1:9002\n",
    );
    let run = check(&main);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_reported(
        &run,
        &billing,
        &Expect {
            line: 2,
            column: Some(19),
            message: "unknown role `developr`",
            key: "access.roles[0]",
            hint: Some("roles of tenant `acme`"),
        },
    );
    assert_reported(
        &run,
        &broken,
        &Expect {
            line: 3,
            column: Some(15),
            message: "mapping values are not allowed",
            key: "",
            hint: None,
        },
    );
    assert_eq!(run.errors().len(), 2, "{}", run.all());
    assert!(
        !run.all().contains(&good.display().to_string()),
        "the good file is not blamed"
    );
    assert!(
        run.errors()
            .iter()
            .all(|d| d.file != main.display().to_string()),
        "errors name the app file, not the main file"
    );

    // Fixed, the same layout loads all apps from the directory.
    std::fs::write(
        &billing,
        "id: billing\naccess: { roles: [developer] }\nupstream: http://127.0.0.1:9000\n",
    )
    .unwrap();
    std::fs::remove_file(&broken).unwrap();
    let run = check(&main);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.stdout.contains("2 app(s)"), "{}", run.stdout);
}

#[test]
fn an_apps_from_pattern_matching_nothing_is_only_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{VALID}    apps_from: teams/*.yaml\n");
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let warnings: Vec<Diagnostic> = run
        .diagnostics()
        .into_iter()
        .filter(|d| d.severity == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.all());
    assert!(warnings[0].message.contains("matches no files"));
    assert_eq!(warnings[0].line, 15);
}

/// Every mistake in one file, each at its own place.
const MANY_ERRORS: &str = "\
version: 1
defualt_tenant: acme
tenants:
  acme:
    hosts: [portal.acme.test]
    auth:
      dev_sign_in:
        users:
          - { id: ann, groups: [eng] }
    roles:
      developer: { groups: [eng] }
      auditor: { description: Reads logs }
    apps:
      - id: billing
        access: { roles: [developer] }
        upstream: http://127.0.0.1:9000
      - id: ledger
        access: { roles: [developr] }
        upstream: http://127.0.0.1:9001
      - id: no-rule
        upstream: http://127.0.0.1:9002
      - id: auth
        access: { roles: [developer] }
        upstream: http://127.0.0.1:9003
      - id: reports
        access: { roles: [developer] }
        upstream: ${PORTICO_TEST_SURELY_UNSET_VARIABLE}
        nodes:
          - { path: shell, label: Shell, view: /shell }
      - id: billing
        access: { roles: [developer] }
        static: embedded:demo
";

fn many_errors_expected() -> Vec<Expect<'static>> {
    vec![
        Expect {
            line: 2,
            column: Some(1),
            message: "unknown key `defualt_tenant`",
            key: "defualt_tenant",
            hint: Some("did you mean `default_tenant`?"),
        },
        Expect {
            line: 12,
            column: Some(7),
            message: "role `auditor` is not granted by any group",
            key: "tenants.acme.roles.auditor.groups",
            hint: None,
        },
        Expect {
            line: 18,
            column: Some(27),
            message: "unknown role `developr`",
            key: "tenants.acme.apps[ledger].access.roles[0]",
            hint: Some("did you mean `developer`?"),
        },
        Expect {
            line: 20,
            column: None,
            message: "app `no-rule` has no access rule",
            key: "tenants.acme.apps[no-rule].access",
            hint: None,
        },
        Expect {
            line: 22,
            column: Some(13),
            message: "app id `auth` collides with the reserved path /auth",
            key: "tenants.acme.apps[auth].id",
            hint: None,
        },
        Expect {
            line: 27,
            column: Some(19),
            message: "environment variable `PORTICO_TEST_SURELY_UNSET_VARIABLE` is not set",
            key: "tenants.acme.apps[reports].upstream",
            hint: None,
        },
        Expect {
            line: 29,
            column: Some(21),
            message: "node path `shell` collides with the reserved path /shell",
            key: "tenants.acme.apps[reports].nodes[0].path",
            hint: None,
        },
        Expect {
            line: 30,
            column: None,
            message: "duplicate app id `billing`",
            key: "tenants.acme.apps[5].id",
            hint: None,
        },
    ]
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", MANY_ERRORS);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    // `check` reads no secrets: the unset variable is a warning there (`serve` refuses it, below).
    let expected: Vec<_> = many_errors_expected()
        .into_iter()
        .filter(|expect| !expect.message.contains(UNSET_VAR))
        .collect();
    for expect in &expected {
        assert_reported(&run, &file, expect);
    }
    assert_eq!(run.errors().len(), expected.len(), "{}", run.all());
    assert!(
        run.stderr
            .contains(&format!("{} error(s) found", expected.len())),
        "{}",
        run.stderr
    );
    // In file order, so a reader can work top to bottom.
    let lines: Vec<usize> = run.errors().iter().map(|d| d.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

const DUPLICATE_HOSTS: &str = "\
version: 1
tenants:
  acme:
    hosts: [portal.test]
    auth: { dev_sign_in: { users: [ { id: a } ] } }
    roles: { dev: { groups: [g] } }
  globex:
    hosts: [portal.test]
    auth: { dev_sign_in: { users: [ { id: a } ] } }
    roles: { dev: { groups: [g] } }
";

#[test]
fn a_host_listed_by_two_tenants_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", DUPLICATE_HOSTS);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.all());
    assert_eq!(
        errors[0].message,
        "host `portal.test` is also listed by tenant `acme` (line 4)"
    );
    assert_eq!(errors[0].key.as_deref(), Some("tenants.globex.hosts[0]"));
}

#[test]
fn a_duplicate_host_is_reported_where_it_is_listed_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", DUPLICATE_HOSTS);
    let run = check(&file);
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 8,
            column: Some(13),
            message: "host `portal.test` is also listed by tenant `acme` (line 4)",
            key: "tenants.globex.hosts[0]",
            hint: None,
        },
    );
}

#[test]
fn check_reports_each_file_and_fails_if_any_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", VALID);
    let bad = write(
        dir.path(),
        "bad.yaml",
        &VALID.replace("- id: billing", "- id: apps"),
    );
    let run = portico(&["check", path_arg(&good), path_arg(&bad)]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stdout.contains(&format!("{}: ok", good.display())));
    assert!(
        run.stderr
            .contains(&format!("{}:12:13: error", bad.display()))
    );

    let missing = dir.path().join("nope.yaml");
    let run = check(&missing);
    assert_eq!(run.code, Some(1));
    assert!(
        run.all().contains("cannot read config file"),
        "{}",
        run.all()
    );
}

#[test]
fn serve_refuses_a_broken_config_with_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", MANY_ERRORS);
    let run = portico_with_timeout(
        &[
            "serve",
            "--config",
            path_arg(&file),
            "--listen",
            "127.0.0.1:0",
        ],
        Duration::from_secs(10),
    );
    assert_ne!(run.code, Some(0), "{}", run.all());
    assert!(run.code.is_some(), "exited rather than being killed");
    for expect in &many_errors_expected() {
        assert_reported(&run, &file, expect);
    }
    assert!(
        run.stderr.contains("portico did not start"),
        "{}",
        run.stderr
    );
}

#[test]
fn dev_sign_in_refuses_to_start_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", VALID);
    let run = portico_with_timeout(
        &[
            "serve",
            "--config",
            path_arg(&file),
            "--listen",
            "0.0.0.0:0",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(run.stderr.contains("loopback"), "{}", run.stderr);
    assert!(run.stderr.contains("dev sign-in"), "{}", run.stderr);
}

#[tokio::test]
async fn dev_sign_in_on_a_non_loopback_address_is_refused_by_app_build() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::compile(VALID, dir.path());
    config.server.listen = "0.0.0.0:0".parse().unwrap();
    config.server.admin_listen = None;
    match portico::app::App::build(config).await {
        Ok(_) => panic!("a dev sign-in config must not start on 0.0.0.0"),
        Err(error) => assert!(error.to_string().contains("loopback"), "{error}"),
    }
}

/// `portico config --embedded` prints the demo config `serve` runs, and that text checks clean: a
/// start for one's own config.
#[test]
fn the_embedded_demo_config_can_be_printed_and_checked() {
    let printed = portico(&["config", "--embedded"]);
    assert_eq!(printed.code, Some(0), "{}", printed.all());
    assert!(printed.stdout.contains("tenants:"), "{}", printed.stdout);
    assert!(printed.stdout.contains("globex"), "{}", printed.stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &printed.stdout);
    let checked = portico(&["check", path_arg(&file)]);
    assert_eq!(checked.code, Some(0), "{}", checked.all());
    assert!(checked.stdout.contains("2 tenant(s)"), "{}", checked.stdout);
    let bare = portico(&["config"]);
    assert_eq!(bare.code, Some(2), "{}", bare.all());
    assert!(bare.stderr.contains("--embedded"), "{}", bare.stderr);
}

#[test]
fn version_and_help_work() {
    let version = portico(&["--version"]);
    assert_eq!(version.code, Some(0));
    assert_eq!(
        version.stdout.trim(),
        format!("portico {}", env!("CARGO_PKG_VERSION"))
    );

    let help = portico(&["--help"]);
    assert_eq!(help.code, Some(0));
    for word in ["serve", "check", "Usage"] {
        assert!(help.stdout.contains(word), "{word} in {}", help.stdout);
    }
    let check_help = portico(&["check", "--help"]);
    assert_eq!(check_help.code, Some(0));
    assert!(check_help.stdout.contains("file:line:column"));

    let no_files = portico(&["check"]);
    assert_eq!(no_files.code, Some(2), "usage error: {}", no_files.all());
}

/// Two tenants with one shared app, overridden for globex.
const SHARED_APPS: &str = "\
version: 1
tenants:
  acme:
    hosts: [acme.test]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
  globex:
    hosts: [globex.test]
    auth: { dev_sign_in: { users: [{ id: gil, groups: [staff] }] } }
    roles:
      engineer: { groups: [staff] }
shared_apps:
  - id: wiki
    label: Wiki
    tenants: [acme, globex]
    access: { roles: [developer] }
    upstream: http://127.0.0.1:9000
    overrides:
      globex: { label: Globex Wiki, access: { roles: [engineer] } }
";

#[test]
fn a_shared_app_compiles_for_every_tenant_that_enables_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", SHARED_APPS);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
    // One app definition, two tenants' copies.
    assert!(
        run.stdout.contains("ok (2 tenant(s), 2 app(s))"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_shared_app_for_an_unknown_tenant_is_refused() {
    let text = SHARED_APPS.replace("tenants: [acme, globex]", "tenants: [acme, globx]");
    let text = text.replace(
        "    overrides:\n      globex: { label: Globex Wiki, access: { roles: [engineer] } }\n",
        "",
    );
    assert_single_error(
        &text,
        Expect {
            line: 16,
            column: Some(21),
            message: "unknown tenant `globx`",
            key: "shared_apps[0].tenants",
            hint: Some("did you mean `globex`? tenants: acme, globex"),
        },
    );
}

#[test]
fn a_shared_app_role_is_checked_against_each_tenants_role_map() {
    // Without its override, globex's copy asks for `developer`, a role globex does not define.
    let text = SHARED_APPS.replace(
        "      globex: { label: Globex Wiki, access: { roles: [engineer] } }",
        "      globex: { label: Globex Wiki }",
    );
    assert_single_error(
        &text,
        Expect {
            line: 17,
            column: Some(23),
            message: "unknown role `developer`",
            key: "shared_apps[wiki].access.roles[0]",
            hint: Some("roles of tenant `globex`: engineer"),
        },
    );
}

#[test]
fn overrides_are_limited_to_label_access_and_upstream() {
    let text = SHARED_APPS.replace(
        "globex: { label: Globex Wiki,",
        "globex: { label: Globex Wiki, owner: team-x,",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let errors = run.errors();
    assert_eq!(errors.len(), 1, "{}", run.all());
    assert_eq!(errors[0].line, 20, "{}", run.all());
    assert_eq!(
        errors[0].key.as_deref(),
        Some("shared_apps[0].overrides.globex.owner")
    );
    assert!(
        errors[0]
            .hint
            .as_deref()
            .is_some_and(|hint| hint.contains("label, access, upstream")),
        "{}",
        run.all()
    );
}

#[test]
fn overrides_for_a_tenant_that_does_not_enable_the_app_are_refused() {
    let text = SHARED_APPS.replace("tenants: [acme, globex]", "tenants: [acme]");
    assert_single_error(
        &text,
        Expect {
            line: 20,
            column: Some(7),
            message: "overrides for tenant `globex`, which does not enable this app",
            key: "shared_apps[0].overrides.globex",
            hint: Some("add the tenant to `tenants`, or remove these overrides"),
        },
    );
}

/// Two tenants on one Backstage; globex claims acme's namespace (in other case) on line 16.
const SHARED_BACKSTAGE: &str = "\
version: 1
tenants:
  acme:
    hosts: [acme.test]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    backstage: { url: http://127.0.0.1:7007, identity: user, namespaces: [acme], shared_namespaces: [common] }
  globex:
    hosts: [globex.test]
    auth: { dev_sign_in: { users: [{ id: gil, groups: [staff] }] } }
    roles:
      engineer: { groups: [staff] }
    backstage:
      url: http://127.0.0.1:7007/
      namespaces: [globex, ACME]
      shared_namespaces: [common]
";

#[test]
fn a_namespace_claimed_by_two_tenants_of_one_backstage_is_refused() {
    assert_single_error(
        SHARED_BACKSTAGE,
        Expect {
            line: 16,
            column: Some(28),
            message: "Backstage namespace `acme` is also claimed by tenant `acme` (line 8) on the same backend",
            key: "tenants.globex.backstage.namespaces",
            hint: Some(
                "each tenant owns its namespaces; a namespace several tenants may read goes in `shared_namespaces` of every one of them",
            ),
        },
    );
}

#[test]
fn a_namespace_shared_by_every_tenant_that_lists_it_is_accepted() {
    let text = SHARED_BACKSTAGE.replace("namespaces: [globex, ACME]", "namespaces: [globex]");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.diagnostics().is_empty(), "{}", run.all());
    // The same name on another Backstage instance is no conflict either.
    let text =
        SHARED_BACKSTAGE.replace("url: http://127.0.0.1:7007/", "url: http://127.0.0.1:7008");
    let file = write(dir.path(), "other.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

#[test]
fn an_unscoped_tenant_next_to_scoped_ones_is_warned_about() {
    let text = SHARED_BACKSTAGE.replace(
        "      namespaces: [globex, ACME]\n      shared_namespaces: [common]\n",
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "a warning only:\n{}", run.all());
    let warnings: Vec<Diagnostic> = run
        .diagnostics()
        .into_iter()
        .filter(|d| d.severity == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.all());
    assert_eq!(warnings[0].line, 15, "{}", run.all());
    assert_eq!(
        warnings[0].key.as_deref(),
        Some("tenants.globex.backstage.namespaces")
    );
    assert!(warnings[0].message.contains("reads every namespace"));
}

#[test]
fn branding_luigi_and_backstage_scoping_values_are_checked() {
    let text = VALID.replace(
        "    hosts: [portal.acme.test]\n",
        "    hosts: [portal.acme.test]
    branding:
      theme:
        shell_color: #354a5f
        accent_color: blue
    luigi: { responsive_navigation: semiColapsible }
    backstage:
      url: http://127.0.0.1:7007
      namespaces: [acme, \"no/slash\"]
      allow_unscoped: [locations]
",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let errors = run.errors();
    let by_key = |key: &str| {
        errors
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no error at {key}:\n{}", run.all()))
    };
    // An unquoted `#` starts a YAML comment: the hint says to quote it.
    let shell = by_key("tenants.acme.branding.theme.shell_color");
    assert_eq!(shell.message, "the colour is empty");
    assert!(
        shell.hint.as_deref().unwrap_or("").contains("quote")
            || shell.hint.as_deref().unwrap_or("").contains("\"#0a6ed1\""),
        "{}",
        run.all()
    );
    assert_eq!(
        by_key("tenants.acme.branding.theme.accent_color").message,
        "`blue` is not a hex colour"
    );
    let navigation = by_key("tenants.acme.luigi.responsive_navigation");
    assert_eq!(
        navigation.message,
        "unknown navigation mode `semiColapsible`"
    );
    assert_eq!(
        navigation.hint.as_deref(),
        Some(
            "did you mean `semiCollapsible`? one of: semiCollapsible, simple, simpleMobileOnly, Fiori3"
        )
    );
    assert_eq!(
        by_key("tenants.acme.backstage.namespaces").message,
        "`no/slash` is not a Backstage namespace"
    );
    assert_eq!(
        by_key("tenants.acme.backstage.allow_unscoped").message,
        "`locations` is not a path glob"
    );
    assert_eq!(errors.len(), 5, "{}", run.all());
}

/// A main config whose tenant reads its apps from `apps/*.yaml`; `extra` is added to the tenant.
fn team_main(extra: &str) -> String {
    VALID.replace(
        "    apps:\n      - id: billing\n        access: { roles: [developer] }\n        upstream: http://127.0.0.1:9000\n",
        &format!("    apps_from: apps/*.yaml\n{extra}"),
    )
}

/// Invariant 8: a team's app file serves nothing outside its own directory tree, however it spells
/// the way out (`..`, an absolute path, a symlink), unless the platform allows the directory.
#[test]
fn a_team_app_file_cannot_serve_files_outside_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "portico.yaml", &team_main(""));
    std::fs::create_dir_all(dir.path().join("apps/dist")).unwrap();
    std::fs::create_dir_all(dir.path().join("bundles/billing")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("apps/dist/etc")).unwrap();
    let app =
        |target: &str| format!("id: billing\naccess: {{ roles: [developer] }}\nstatic: {target}\n");
    let file = dir.path().join("apps/billing.yaml");
    for escape in ["../bundles/billing", "/etc", "./dist/etc", "dist/../.."] {
        std::fs::write(&file, app(escape)).unwrap();
        let run = check(&main);
        assert_eq!(run.code, Some(1), "{escape}: {}", run.all());
        assert_reported(
            &run,
            &file,
            &Expect {
                line: 3,
                column: Some(9),
                message: "outside the app file's directory",
                key: "static",
                hint: Some("apps_static_roots` in tenant `acme`"),
            },
        );
        assert_eq!(run.errors().len(), 1, "{}", run.all());
    }
    // Its own bundle is fine, and so is a directory the platform allows.
    std::fs::write(&file, app("./dist")).unwrap();
    let run = check(&main);
    assert_eq!(run.code, Some(0), "{}", run.all());
    std::fs::write(&file, app("../bundles/billing")).unwrap();
    std::fs::write(&main, team_main("    apps_static_roots: [bundles]\n")).unwrap();
    let run = check(&main);
    assert_eq!(run.code, Some(0), "{}", run.all());
}

/// Invariant 8: an app file that is a link out of its directory is not read (its content would be a
/// file of the host, quoted back in diagnostics).
#[test]
fn an_app_file_linking_out_of_its_directory_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "portico.yaml", &team_main(""));
    let outside = write(
        dir.path(),
        "host-secrets.yaml",
        "id: billing\naccess: { roles: [developer] }\nupstream: http://127.0.0.1:9000\nlabel: top-secret-label\n",
    );
    std::fs::create_dir_all(dir.path().join("apps")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.path().join("apps/billing.yaml")).unwrap();
    let run = check(&main);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_reported(
        &run,
        &main,
        &Expect {
            line: 11,
            column: Some(16),
            message: "is a link to",
            key: "tenants.acme.apps_from",
            hint: Some("regular files"),
        },
    );
    assert!(!run.all().contains("top-secret-label"), "{}", run.all());
}

/// Invariant 8: a team's app file reads only the environment variables its tenant allows.
#[test]
fn a_team_app_file_cannot_read_environment_variables_the_platform_did_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "portico.yaml", &team_main(""));
    let file = write(
        dir.path(),
        "apps/billing.yaml",
        "id: billing\naccess: { roles: [developer] }\nupstream: \"http://${ACME_OIDC_SECRET}@127.0.0.1:9000\"\nowner: team-billing\nrules:\n  - { path: \"/${HOME}/**\", roles: [developer] }\n",
    );
    let run_with_env = || {
        let output = Command::new(BIN)
            .args(["check", path_arg(&main)])
            .env("ACME_OIDC_SECRET", "s3cr3t-value")
            .env("HOME", "/root")
            .env("REGION", "eu")
            .output()
            .unwrap();
        Run::from(output)
    };
    let run = run_with_env();
    assert_eq!(run.code, Some(1), "{}", run.all());
    for (line, column, name, key) in [
        (3, 11, "ACME_OIDC_SECRET", "upstream"),
        (6, 13, "HOME", "rules[0].path"),
    ] {
        assert_reported(
            &run,
            &file,
            &Expect {
                line,
                column: Some(column),
                message: &format!("`${{{name}}}` is not available in an app file"),
                key,
                hint: Some(&format!("`apps_env: [{name}]` to tenant `acme`")),
            },
        );
    }
    assert_eq!(run.errors().len(), 2, "{}", run.all());
    assert!(!run.all().contains("s3cr3t-value"), "{}", run.all());

    // What the platform allows is read.
    std::fs::write(
        &file,
        "id: billing\naccess: { roles: [developer] }\nupstream: \"http://127.0.0.1:9000/${REGION}\"\n",
    )
    .unwrap();
    std::fs::write(&main, team_main("    apps_env: [REGION]\n")).unwrap();
    let run = run_with_env();
    assert_eq!(run.code, Some(0), "{}", run.all());
}

/// Invariant 8: the user's access token is good beyond one app, so a team's file cannot ask for it.
#[test]
fn a_team_app_file_cannot_ask_for_the_users_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "portico.yaml", &team_main(""));
    let file = write(
        dir.path(),
        "apps/billing.yaml",
        "id: billing\naccess: { roles: [developer] }\nupstream: http://127.0.0.1:9000\nidentity: [assertion, access_token]\n",
    );
    let run = check(&main);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 4,
            column: Some(23),
            message: "an app file may not forward the user's access token",
            key: "identity",
            hint: Some("portico.yaml"),
        },
    );
}

/// Invariant 8: values the browser shows (labels, branding, …) never come from the environment, so a
/// secret cannot reach a page by a slip of the keyboard, even in the platform's own file.
#[test]
fn browser_visible_values_cannot_take_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let text = VALID.replace(
        "      - id: billing\n",
        "      - id: billing\n        label: \"Billing ${ACME_OIDC_SECRET}\"\n",
    ) + "    branding: { title: \"${ACME_OIDC_SECRET}\" }\n";
    let file = write(dir.path(), "portico.yaml", &text);
    let output = Command::new(BIN)
        .args(["check", path_arg(&file)])
        .env("ACME_OIDC_SECRET", "s3cr3t-value")
        .output()
        .unwrap();
    let run = Run::from(output);
    assert_eq!(run.code, Some(1), "{}", run.all());
    for (line, key, name) in [
        (13, "tenants.acme.apps[billing].label", "label"),
        (16, "tenants.acme.branding.title", "title"),
    ] {
        assert_reported(
            &run,
            &file,
            &Expect {
                line,
                column: None,
                message: &format!(
                    "`${{ACME_OIDC_SECRET}}` cannot be used in `{name}`: it is shown in users' browsers"
                ),
                key,
                hint: Some("write the text itself"),
            },
        );
    }
    assert!(!run.all().contains("s3cr3t-value"), "{}", run.all());
}

/// A 342-byte "billion laughs" would expand to 9^9 nodes; `check` refuses it with a position and
/// exits normally, even with its address space capped at 400 MB.
#[test]
fn a_yaml_alias_bomb_is_refused_quickly_and_in_bounded_memory() {
    const BOMB: &str = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
";
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", BOMB);
    let script = format!("ulimit -v 400000; exec '{BIN}' check '{}'", path_arg(&file));
    let run = portico_in_shell(&script);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 5,
            column: None,
            message: "a YAML alias bomb",
            key: "",
            hint: Some("aliases of aliases multiply"),
        },
    );
    // The same in a team's app file names that file.
    let main = write(dir.path(), "main.yaml", &team_main(""));
    let app = write(dir.path(), "apps/bomb.yaml", BOMB);
    let run = check(&main);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert!(
        run.errors()
            .iter()
            .any(|d| d.file == path_arg(&app) && d.message.contains("alias bomb")),
        "{}",
        run.all()
    );
}

#[test]
fn a_config_file_over_one_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let padding = "# padding to make the file large\n".repeat(40_000);
    let file = write(dir.path(), "portico.yaml", &format!("{VALID}{padding}"));
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_reported(
        &run,
        &file,
        &Expect {
            line: 1,
            column: Some(1),
            message: "larger than 1 MiB",
            key: "",
            hint: Some("apps_from"),
        },
    );
}

/// Browsers scope cookies by host name, not port: two tenants on one name share cookies.
#[test]
fn tenants_that_differ_only_by_port_are_warned_about() {
    let text = format!(
        "{}  globex:\n    hosts: [\"portal.acme.test:9090\"]\n    auth: {{ dev_sign_in: {{ users: [{{ id: gil, groups: [eng] }}] }} }}\n    roles: {{ developer: {{ groups: [eng] }} }}\n",
        VALID.replace("[portal.acme.test]", "[\"portal.acme.test:8080\"]")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", &text);
    let run = check(&file);
    assert_eq!(run.code, Some(0), "a warning does not fail: {}", run.all());
    let warnings: Vec<Diagnostic> = run
        .diagnostics()
        .into_iter()
        .filter(|d| d.severity == "warning")
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.all());
    assert_eq!(warnings[0].line, 16);
    assert!(
        warnings[0].message.contains(
            "host `portal.acme.test:9090` differs from `portal.acme.test:8080` of tenant `acme` (line 4) only by port"
        ),
        "{}",
        run.all()
    );
    assert!(
        warnings[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("its own host name")),
        "{}",
        run.all()
    );
}

/// Runs a shell script (for `ulimit`), with the same environment rules as [`portico`].
fn portico_in_shell(script: &str) -> Run {
    let output = Command::new("sh")
        .args(["-c", script])
        .env_remove("PORTICO_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    Run::from(output)
}

/// A broken tenant key that used to end the tenant's walk (`?` on `backstage.url`, `public_origin`,
/// `hosts`) must not hide a later mistake in the same tenant: review §4.8's `a.yaml`, then each key.
#[test]
fn a_broken_tenant_key_does_not_hide_later_errors_in_the_tenant() {
    const A_YAML: &str = "\
tenants:
  acme:
    hosts: [portal.acme.example]
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    backstage: { url: \"ftp://nope\" }
    apps:
      - { id: x, static: \"embedded:demo\", access: { roles: [admin] } }
";
    let cases = [
        (
            A_YAML.to_owned(),
            7,
            "`ftp://nope` is not an http:// or https:// URL",
        ),
        (
            A_YAML.replace(
                "    backstage: { url: \"ftp://nope\" }\n",
                "    public_origin: \"ftp://x\"\n",
            ),
            7,
            "`ftp://x` is not an http(s) origin",
        ),
        (
            A_YAML.replace(
                "    backstage: { url: \"ftp://nope\" }\n",
                "    public_origin: { url: x }\n",
            ),
            7,
            "expected a single value",
        ),
        (
            A_YAML.replace("hosts: [portal.acme.example]", "hosts: { a: b }"),
            3,
            "expected a list",
        ),
    ];
    for (text, line, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "portico.yaml", &text);
        let run = check(&file);
        assert_eq!(run.code, Some(1), "{}", run.all());
        let errors = run.errors();
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.message.contains(message)),
            "`{message}` at line {line}:\n{}",
            run.all()
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 9 && e.message == "unknown role `admin`"),
            "the unknown role on line 9 is reported too:\n{}",
            run.all()
        );
    }
}

/// `server.listen` used to end the `server` section: `admin_listen` and the tenant's origin were not read.
#[test]
fn a_broken_listen_address_does_not_hide_the_other_server_errors() {
    let text = "\
server: { listen: \"nope\", admin_listen: \"also-nope\", max_connections: 0 }
tenants:
  acme:
    hosts: [portal.acme.example]
    public_origin: \"ftp://x\"
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
    apps:
      - { id: x, static: \"embedded:demo\", access: { roles: [admin] } }
";
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "portico.yaml", text);
    let run = check(&file);
    assert_eq!(run.code, Some(1), "{}", run.all());
    let keys: Vec<String> = run
        .errors()
        .iter()
        .map(|e| e.key.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "server.listen",
            "server.admin_listen",
            "server.max_connections",
            "tenants.acme.public_origin",
            "tenants.acme.apps[x].access.roles[0]",
        ],
        "{}",
        run.all()
    );
}

/// The README's annotated config example is what operators copy: every key in it must be a key of
/// the section it is written in (a key under the wrong section, as `signing_keys` once was under
/// `sessions`, is an "unknown key" error). Its files do not exist here, so only those errors may show.
#[test]
fn the_readme_config_example_puts_every_key_in_its_section() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let reference = &readme[readme.find("## Configuration reference").unwrap()..];
    let start = reference.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &reference[start..start + reference[start..].find("```").unwrap()];
    assert!(example.contains("signing_keys") && example.contains("key_file"));
    let dir = tempfile::tempdir().unwrap();
    let report = match portico::config::load_str(
        &portico::config::OsSource,
        "README.md",
        example,
        dir.path(),
    ) {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    };
    assert!(!report.contains("unknown key"), "{report}");
    assert!(
        !report.contains("expected"),
        "a value of the wrong shape:\n{report}"
    );
}

/// The demo with a Backstage (`make demo-backstage`) is a config of its own beside the embedded one:
/// it must stay valid, with the built-in Catalog app in both tenants.
#[test]
fn the_demo_with_backstage_checks() {
    let dir = tempfile::tempdir().unwrap();
    let key = crate::scale_out::write_signing_key(dir.path());
    let output = Command::new(BIN)
        .args(["check", "demo/backstage/portico.yaml"])
        .env("PORTICO_DEMO_BACKSTAGE", "http://127.0.0.1:7007")
        .env("PORTICO_DEMO_SIGNING_KEY", &key)
        .output()
        .unwrap();
    let run = Run::from(output);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains("2 tenant(s), 7 app(s)"), "{}", run.all());
}

/// `portico schema` prints the committed JSON Schemas (the main file's, and with --app an app
/// file's), for editors and CI; a reader that stops early (`| head`) ends it without a panic.
#[test]
fn the_schemas_are_printed_and_a_closed_pipe_is_no_panic() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (args, file) in [
        (&["schema"][..], "portico.schema.json"),
        (&["schema", "--app"][..], "portico-app.schema.json"),
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(output.status.success());
        let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(docs.join(file)).unwrap()).unwrap();
        assert_eq!(printed, committed, "{args:?}");
    }
    let app: serde_json::Value = serde_json::from_str(portico::config::APP_SCHEMA).unwrap();
    assert!(
        app["properties"]["access"].is_object(),
        "an app file's keys at its root"
    );

    let mut child = Command::new(BIN)
        .args(["schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
