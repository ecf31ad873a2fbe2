//! `portico doctor` through the built binary, against a real Express upstream
//! (tests/support/express-doctor.mjs) with one page broken per rule and a clean one, and against the
//! embedded demo. The doctor goes through portico's real proxy path in its own process, so what it
//! reports is what a user's frame would get.

use std::process::Command;

use serde_json::Value;

use crate::canonical_paths::Framework;

const BIN: &str = env!("CARGO_BIN_EXE_portico");

fn doctor(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(BIN).arg("doctor").args(args).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn express_doctor() -> Framework {
    let mut command = Command::new("node");
    command.arg("tests/support/express-doctor.mjs");
    Framework::spawn(command, "the doctor's Express app (run `npm ci`)")
}

/// One app on the Express upstream with a page per rule; another app ann may not open.
fn config(upstream: &str) -> String {
    format!(
        "\
version: 1
tenants:
  acme:
    hosts: [portal.acme.test]
    auth:
      dev_sign_in:
        users:
          - {{ id: ann, groups: [eng] }}
    roles:
      developer: {{ groups: [eng] }}
      admin: {{ groups: [admins] }}
    apps:
      - id: cost-insights
        owner: team-finops
        access: {{ roles: [developer, admin] }}
        upstream: {upstream}
        luigi_client: true
        nodes:
          - {{ path: clean, label: Clean, view: /clean }}
          - {{ path: broken, label: Broken, view: /broken }}
          - {{ path: no-client, label: No client, view: /no-client }}
          - {{ path: absolute, label: Absolute, view: /absolute }}
          - {{ path: deny, label: Deny, view: /deny }}
          - {{ path: cookie, label: Cookie, view: /cookie }}
          - {{ path: moved, label: Moved, view: /moved }}
          - path: reports
            label: Reports
            view: /reports
            access: {{ roles: [admin] }}
          - path: items
            label: Items
            view: /clean
            nodes:
              - {{ path: ':item', label: Item, view: '/items/:item' }}
      - id: ledger
        owner: team-money
        access: {{ roles: [admin] }}
        upstream: {upstream}
"
    )
}

/// The Express app with a page broken per rule, and a config naming it in a temporary directory.
fn broken_upstream() -> (Framework, tempfile::TempDir, String) {
    let upstream = express_doctor();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portico.yaml");
    std::fs::write(&file, config(&upstream.url())).unwrap();
    let file = file.to_str().unwrap().to_owned();
    (upstream, dir, file)
}

#[test]
fn every_broken_rule_is_reported_with_app_owner_and_fix() {
    let (upstream, _dir, file) = broken_upstream();
    let file = file.as_str();

    let (code, out, err) = doctor(&["--config", file, "--tenant", "acme", "--user", "ann"]);
    assert_eq!(
        code,
        Some(1),
        "an error finding fails the run\n{out}\n{err}"
    );
    let url = upstream.url();
    let head = "acme/cost-insights (owner team-finops)";
    let expected = [
        format!(
            "{head} /apps/cost-insights/broken: error: answers 500 Internal Server Error; fix: make the upstream ({url}) answer this view with 2xx for a GET (its own logs say why it did not), or correct the page's `view`"
        ),
        format!(
            "{head} /apps/cost-insights/no-client: warning: `luigi_client` is on, but the page loads no Luigi Client"
        ),
        format!(
            "{head} /apps/cost-insights/absolute: error: <script src=\"/static/main.js\"> is root-absolute: in the portal it points outside the app, at /static/main.js of the portal itself; fix: make the URL relative or prefix /apps/cost-insights/"
        ),
        format!(
            "{head} /apps/cost-insights/absolute: error: <link href=\"/static/main.css\"> is root-absolute"
        ),
        format!(
            "{head} /apps/cost-insights/deny: warning: the upstream sends X-Frame-Options: DENY, which would keep the shell from framing it; portico must override it (it sends SAMEORIGIN), so the app works only behind portico; fix: send no X-Frame-Options (or SAMEORIGIN) on pages the shell frames"
        ),
        format!(
            "{head} /apps/cost-insights/cookie: warning: the upstream sets cookie `session` with Path=/: in a browser it would be sent to every app on the portal's origin; portico keeps it in the session's cookie jar (`cookies: jar`), so no browser gets it; fix: set the cookie's Path"
        ),
    ];
    let lines: Vec<&str> = out.lines().collect();
    for want in &expected {
        assert!(
            lines.iter().any(|line| line.starts_with(want.as_str())),
            "missing {want:?} in\n{out}"
        );
    }
    assert!(
        out.contains("/apps/cost-insights/no-client: warning: ")
            && out.contains("fix: add <script src=\"/shell/luigi-client/2.31.0/luigi-client.js\"></script> (portico serves it), or set `luigi_client: false` for this app"),
        "{out}"
    );
    // Clean pages (also the entry view and /moved, which redirect to /clean) have no finding.
    for clean in [
        "/apps/cost-insights/clean:",
        "/apps/cost-insights/moved:",
        "/apps/cost-insights/:",
    ] {
        assert!(!out.contains(clean), "{clean} has a finding:\n{out}");
    }
    // What ann may not open is skipped, said so, and never probed.
    assert!(
        out.contains("acme/cost-insights (owner team-finops) /apps/cost-insights/reports: skipped: not visible to this user (needs one of the roles: admin)\n"),
        "{out}"
    );
    assert!(
        out.contains("acme/cost-insights (owner team-finops) /apps/cost-insights/items/:item: skipped: a path parameter (`:item`): no value to probe it with\n"),
        "{out}"
    );
    assert!(
        out.contains("acme/ledger (owner team-money): skipped: not visible to this user (needs one of the roles: admin)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("doctor acme as ann: 8 view(s) of 1 app(s) probed, 3 error(s), 3 warning(s), 3 skipped\n"),
        "{out}"
    );
}

#[test]
fn the_json_report_names_each_page_and_rule_and_an_app_can_be_chosen() {
    let (_upstream, _dir, file) = broken_upstream();
    let file = file.as_str();
    // The same as JSON, per page and rule.
    let (code, out, err) = doctor(&[
        "--config", file, "--tenant", "acme", "--user", "ann", "--format", "json",
    ]);
    assert_eq!(code, Some(1), "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let rules = |page: &str| -> Vec<String> {
        json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["page"] == page)
            .map(|f| {
                assert_eq!(f["app"], "cost-insights");
                assert_eq!(f["owner"], "team-finops");
                assert!(!f["fix"].as_str().unwrap().is_empty());
                format!(
                    "{}:{}",
                    f["severity"].as_str().unwrap(),
                    f["rule"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(rules("/apps/cost-insights/broken"), ["error:status"]);
    assert_eq!(
        rules("/apps/cost-insights/no-client"),
        ["warning:luigi_client"]
    );
    assert_eq!(
        rules("/apps/cost-insights/absolute"),
        ["error:root_absolute_url", "error:root_absolute_url"]
    );
    assert_eq!(rules("/apps/cost-insights/deny"), ["warning:framing"]);
    assert_eq!(rules("/apps/cost-insights/cookie"), ["warning:cookie_path"]);
    for clean in [
        "/apps/cost-insights/",
        "/apps/cost-insights/clean",
        "/apps/cost-insights/moved",
    ] {
        assert!(rules(clean).is_empty(), "{clean}: {:?}", rules(clean));
    }
    let statuses: Vec<(String, u64)> = json["probed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["page"].as_str().unwrap().to_owned(),
                p["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("/apps/cost-insights/broken".to_owned(), 500)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&("/apps/cost-insights/moved".to_owned(), 200)),
        "{statuses:?}"
    );
    assert_eq!(
        (json["errors"].as_u64(), json["warnings"].as_u64()),
        (Some(3), Some(3))
    );

    // Only the clean page's app view: nothing wrong, exit 0 (`--app` and `--groups` instead of a
    // demo user).
    let (code, out, err) = doctor(&[
        "--config", file, "--tenant", "acme", "--groups", "admins", "--app", "ledger",
    ]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        out,
        "doctor acme as doctor: 1 view(s) of 1 app(s) probed, 0 error(s), 0 warning(s), 0 skipped\n"
    );
}

#[test]
fn an_upstream_that_is_down_is_an_error_that_names_it() {
    // A port nobody listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portico.yaml");
    std::fs::write(&file, config(&format!("http://127.0.0.1:{port}"))).unwrap();
    let (code, out, err) = doctor(&[
        "--config",
        file.to_str().unwrap(),
        "--tenant",
        "acme",
        "--user",
        "ann",
        "--app",
        "cost-insights",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.starts_with(&format!(
            "acme/cost-insights (owner team-finops) /apps/cost-insights/: error: answers 502 Bad Gateway: portico got no answer from the upstream: http://127.0.0.1:{port}"
        )),
        "{out}"
    );
    assert!(
        out.contains("fix: start the upstream, or correct its URL or `tls:` in the app's config"),
        "{out}"
    );
}

#[test]
fn the_embedded_demo_is_healthy_and_bad_input_is_refused() {
    // alice opens every demo app and page; the one parameter route is skipped with a note.
    let (code, out, err) = doctor(&["--tenant", "demo", "--user", "alice"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(
        out,
        "demo/service-status (owner team-sre) /apps/service-status/incidents/:incident: skipped: a path parameter (`:incident`): no value to probe it with\n\
         doctor demo as alice: 5 view(s) of 3 app(s) probed, 0 error(s), 0 warning(s), 1 skipped\n"
    );
    let (code, out, _) = doctor(&["--tenant", "globex", "--user", "gina"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.ends_with("0 error(s), 0 warning(s), 0 skipped\n"),
        "{out}"
    );

    // As `explain` does: an unknown tenant, no groups, an unknown app.
    let (code, _, err) = doctor(&["--tenant", "nope", "--user", "alice"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("there is no tenant `nope`"), "{err}");
    let (code, _, err) = doctor(&["--tenant", "demo", "--user", "somebody"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("say which groups the user has"), "{err}");
    let (code, _, err) = doctor(&["--tenant", "demo", "--user", "alice", "--app", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("tenant `demo` has no app `nope`"), "{err}");
}
