//! `portico check NEW --diff-against OLD`: who gains and who loses which app, page or rule, as text
//! (a snapshot), as GitHub workflow commands with a step summary, and as JSON; an old config that does
//! not load is an error, named with its file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portico");

const OLD_MAIN: &str = "\
version: 1
tenants:
  acme:
    hosts: [portal.acme.test]
    auth:
      dev_sign_in:
        users:
          - { id: ann, groups: [acme-eng] }
    roles:
      developer: { groups: [acme-eng] }
      finops: { groups: [acme-finops] }
      platform-admin: { groups: [acme-platform] }
    apps_from: apps.d/*.yaml
";

const OLD_APP: &str = "\
id: cost-insights
label: Cost Insights
owner: team-finops
access: { roles: [developer, finops] }
upstream: http://127.0.0.1:9000
rules:
  - { methods: [POST], path: /admin/*, roles: [finops] }
nodes:
  - { path: overview, label: Overview, view: /overview }
  - { path: reports, label: Reports, view: /reports, access: { roles: [finops] } }
";

/// The change under review: a group more for finops, a new tenant, and in the team's app file a new
/// upstream, a label with `%` and `,` (escaped in annotations), and POST on /admin/* for
/// platform admins instead of finops.
const NEW_MAIN: &str = "\
version: 1
tenants:
  acme:
    hosts: [portal.acme.test]
    auth:
      dev_sign_in:
        users:
          - { id: ann, groups: [acme-eng] }
    roles:
      developer: { groups: [acme-eng] }
      finops: { groups: [acme-finops, acme-controllers] }
      platform-admin: { groups: [acme-platform] }
    apps_from: apps.d/*.yaml
  globex:
    hosts: [portal.globex.test]
    auth:
      dev_sign_in:
        users:
          - { id: gina, groups: [gx-staff] }
    roles:
      employee: { groups: [gx-staff] }
    apps:
      - { id: ledger, label: Ledger, owner: gx-finance, access: { roles: [employee] }, upstream: http://127.0.0.1:9200 }
";

const NEW_APP: &str = "\
id: cost-insights
label: Cost Insights, 100%
owner: team-finops
access: { roles: [developer, finops] }
upstream: http://127.0.0.1:9100
rules:
  - { methods: [POST], path: /admin/*, roles: [platform-admin] }
nodes:
  - { path: overview, label: Overview, view: /overview }
  - { path: reports, label: Reports, view: /reports, access: { roles: [finops] } }
";

/// Two checkouts side by side, `old/` and `new/`, each a main file and a team's app file.
struct Checkouts {
    dir: tempfile::TempDir,
}

impl Checkouts {
    fn new(old_main: &str) -> Checkouts {
        let dir = tempfile::tempdir().unwrap();
        for (side, main, app) in [("old", old_main, OLD_APP), ("new", NEW_MAIN, NEW_APP)] {
            let root = dir.path().join(side);
            std::fs::create_dir_all(root.join("apps.d")).unwrap();
            std::fs::write(root.join("portico.yaml"), main).unwrap();
            std::fs::write(root.join("apps.d/cost-insights.yaml"), app).unwrap();
        }
        Checkouts { dir }
    }

    fn new_dir(&self) -> PathBuf {
        self.dir.path().join("new")
    }

    /// `portico check portico.yaml --diff-against ../old <extra>`, run in `new/` as CI runs it in
    /// the repository's root; `summary` is `$GITHUB_STEP_SUMMARY`.
    fn run(&self, extra: &[&str], summary: Option<&Path>) -> Run {
        let mut command = Command::new(BIN);
        command
            .args(["check", "portico.yaml", "--diff-against", "../old"])
            .args(extra)
            .current_dir(self.new_dir())
            .env_remove("GITHUB_STEP_SUMMARY")
            .stdin(Stdio::null());
        if let Some(summary) = summary {
            command.env("GITHUB_STEP_SUMMARY", summary);
        }
        let output = command.output().expect("run the portico binary");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

#[test]
fn the_text_report_says_who_gains_and_loses_what_per_group() {
    let checkouts = Checkouts::new(OLD_MAIN);
    let run = checkouts.run(&[], None);
    assert_eq!(run.code, Some(0), "a diff is no failure:\n{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn an_unchanged_config_says_nobody_gains_or_loses_anything() {
    let checkouts = Checkouts::new(OLD_MAIN);
    let old = checkouts.dir.path().join("old/portico.yaml");
    let run = checkouts.run(&[], None);
    assert_eq!(run.code, Some(0));
    // The new config against itself, given as a file this time.
    let same = Command::new(BIN)
        .args(["check", "portico.yaml", "--diff-against", "portico.yaml"])
        .current_dir(checkouts.new_dir())
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&same.stdout),
        "portico.yaml compared with portico.yaml:\nNo change in who can reach what.\n"
    );
    assert!(old.exists());
}

#[test]
fn github_format_annotates_the_changed_lines_and_writes_the_step_summary() {
    let checkouts = Checkouts::new(OLD_MAIN);
    let summary_dir = tempfile::tempdir().unwrap();
    let summary = summary_dir.path().join("summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let run = checkouts.run(&["--format", "github"], Some(&summary));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .all(|line| line.starts_with("::notice ") || line.starts_with("::warning ")),
        "only workflow commands on stdout when the summary goes to its file:\n{}",
        run.stdout
    );
    // The lost POST points at the rule's line in the team's file; `:` in the title and `%` in the
    // message are escaped as GitHub's toolkit does.
    let lost = lines
        .iter()
        .find(|line| line.contains("loses POST"))
        .expect("a lost POST");
    assert_eq!(
        *lost,
        "::warning file=apps.d/cost-insights.yaml,line=7,title=portico%3A access lost (acme)::acme: group acme-finops loses POST on /apps/cost-insights/admin/* (now needs role platform-admin: group acme-platform)"
    );
    let upstream = lines
        .iter()
        .find(|line| line.contains("upstream changes"))
        .expect("the upstream change");
    assert!(
        upstream.starts_with("::warning file=apps.d/cost-insights.yaml,line=1,"),
        "{upstream}"
    );
    assert!(upstream.contains("\"Cost Insights, 100%25\""), "{upstream}");
    let role = lines
        .iter()
        .find(|line| line.contains("role finops"))
        .expect("the role change");
    assert!(
        role.starts_with("::warning file=portico.yaml,line=11,"),
        "{role}"
    );
    let tenant = lines
        .iter()
        .find(|line| line.contains("tenant added"))
        .expect("the new tenant");
    assert!(
        tenant.starts_with("::notice file=portico.yaml,line=14,"),
        "{tenant}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(
        written.starts_with("earlier step\n## Config change"),
        "appended:\n{written}"
    );
    assert!(written.contains("### Tenant `acme`"), "{written}");
    assert!(
        written.contains("- ⚠️ group acme-finops loses POST on /apps/cost-insights/admin/\\* "),
        "Markdown punctuation escaped:\n{written}"
    );

    // Without $GITHUB_STEP_SUMMARY the summary follows the annotations.
    let run = checkouts.run(&["--format", "github"], None);
    let (annotations, markdown) = run.stdout.split_once("\n\n").expect("a blank line between");
    assert!(annotations.lines().all(|line| line.starts_with("::")));
    assert!(markdown.starts_with("## Config change"), "{markdown}");
}

#[test]
fn json_format_has_the_documented_fields() {
    let checkouts = Checkouts::new(OLD_MAIN);
    let run = checkouts.run(&["--format", "json"], None);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(report["old"], "../old/portico.yaml");
    assert_eq!(report["new"], "portico.yaml");
    assert_eq!(report["access_changed"], true);
    let tenants = report["tenants"].as_array().unwrap();
    let ids: Vec<&str> = tenants.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["acme", "globex"], "sorted by id");
    assert_eq!(tenants[1]["added"], true);
    assert_eq!(tenants[1]["removed"], false);
    let changes = tenants[0]["changes"].as_array().unwrap();
    let lost = changes
        .iter()
        .find(|c| c["kind"] == "loses")
        .expect("a loss");
    assert_eq!(lost["level"], "warning");
    assert_eq!(lost["groups"], serde_json::json!(["acme-finops"]));
    assert_eq!(lost["app"], "cost-insights");
    assert_eq!(lost["methods"], serde_json::json!(["POST"]));
    assert_eq!(lost["path"], "/apps/cost-insights/admin/*");
    assert_eq!(lost["needs"][0]["role"], "platform-admin");
    assert_eq!(
        lost["needs"][0]["groups"],
        serde_json::json!(["acme-platform"])
    );
    assert_eq!(lost["file"], "apps.d/cost-insights.yaml");
    assert_eq!(lost["line"], 7);
    assert!(
        lost["text"]
            .as_str()
            .unwrap()
            .starts_with("acme: group acme-finops loses POST")
    );
    let gained = changes
        .iter()
        .find(|c| c["kind"] == "gains" && c["groups"] == serde_json::json!(["acme-controllers"]))
        .expect("the new group's gain");
    assert_eq!(gained["app_label"], "Cost Insights, 100%");
    let pages: Vec<&str> = gained["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(pages, ["Overview", "Reports"]);
    let upstream = changes
        .iter()
        .find(|c| c["kind"] == "upstream_changed")
        .unwrap();
    assert_eq!(upstream["before"], "http://127.0.0.1:9000");
    assert_eq!(upstream["after"], "http://127.0.0.1:9100");
}

#[test]
fn an_old_config_that_does_not_load_is_an_error_named_with_its_file() {
    let broken = OLD_MAIN.replace(
        "developer: { groups: [acme-eng] }",
        "developer: { grops: [acme-eng] }",
    );
    let checkouts = Checkouts::new(&broken);
    let run = checkouts.run(&[], None);
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("../old/portico.yaml:10:"),
        "the old file and line:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the old (--diff-against) config does not load"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no report:\n{}", run.stdout);
}
