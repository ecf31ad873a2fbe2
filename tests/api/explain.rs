//! `portico explain` and the admin listener's `GET /explain`: what a user with given groups sees on a
//! tenant and why, and the rule that decides a path. The explanation must never disagree with the
//! proxy: every path it calls allowed or refused is sent through the real proxy as that user.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestServer, client};

const BIN: &str = env!("CARGO_BIN_EXE_portico");

fn explain_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_says_what_a_user_sees_and_why() {
    // dave of the embedded demo: his groups come from the dev sign-in listing.
    let (ok, out, err) = explain_cli(&[
        "--tenant",
        "demo",
        "--user",
        "dave",
        "--path",
        "/apps/service-status/incidents/INC-7",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("tenant demo: dave, groups demo-eng\nrole developer (from demo-eng)\n"),
        "{out}"
    );
    assert!(
        out.contains("visible app service-status (Service Status, owned by team-sre)\n"),
        "{out}"
    );
    assert!(
        out.contains("    hidden  page /home/service-status/incidents (Incident Review) — needs role platform-admin (granted by demo-platform-admins)\n"),
        "{out}"
    );
    assert!(
        out.contains("hidden  app admin-console (Admin Console, owned by team-platform) — needs role platform-admin (granted by demo-platform-admins)\n"),
        "{out}"
    );
    assert!(
        out.ends_with("GET /apps/service-status/incidents/INC-7: refused by the node rule for /incidents (and everything below it) — needs role platform-admin (granted by demo-platform-admins)\n"),
        "{out}"
    );

    // Groups given outright; one of them gives no role here, which is worth saying.
    let (ok, out, _) = explain_cli(&[
        "--tenant",
        "demo",
        "--groups",
        "demo-platform-admins,demo-eng-typo",
    ]);
    assert!(ok);
    assert!(
        out.contains("groups that give no role here: demo-eng-typo\n"),
        "{out}"
    );
    assert!(out.contains("visible app admin-console"), "{out}");

    // JSON for programs.
    let (ok, out, _) = explain_cli(&[
        "--tenant", "demo", "--groups", "demo-eng", "--format", "json",
    ]);
    assert!(ok);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["roles"][0]["role"], "developer");
    assert_eq!(json["apps"][1]["id"], "admin-console");
    assert_eq!(json["apps"][1]["visible"], false);

    // Mistakes get a clear error and a hint.
    let (ok, _, err) = explain_cli(&["--tenant", "nope", "--groups", "a"]);
    assert!(!ok);
    assert!(
        err.contains("there is no tenant `nope`") && err.contains("the tenants: demo, globex"),
        "{err}"
    );
    let (ok, _, err) = explain_cli(&["--tenant", "demo", "--user", "someone-else"]);
    assert!(!ok);
    assert!(err.contains("say which groups the user has"), "{err}");
    let (ok, _, err) = explain_cli(&[
        "--tenant",
        "demo",
        "--groups",
        "a",
        "--path",
        "/apps/x",
        "--method",
        "NOT A METHOD",
    ]);
    assert!(!ok);
    assert!(err.contains("is not an HTTP method"), "{err}");
}

#[tokio::test]
async fn the_admin_listener_explains_and_never_disagrees_with_the_proxy() {
    let config = portico::config::load_embedded().unwrap().config;
    let (server, admin) = TestServer::start_with_admin(config).await;
    let dave = server.sign_in("dave").await;
    let admin_get = |query: String| {
        let url = format!("http://{admin}/explain?{query}");
        async move { client().get(url).send().await.unwrap() }
    };

    let answer: Value = admin_get("tenant=demo&groups=demo-eng".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["tenant"], "demo");
    let visible: Vec<&str> = answer["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|app| app["visible"] == true)
        .map(|app| app["id"].as_str().unwrap())
        .collect();
    assert_eq!(visible, ["service-status", "team-directory"]);

    // For each path: what /explain says, and what the proxy does for dave (who has exactly demo-eng).
    for (method, path) in [
        ("GET", "/apps/service-status/"),
        ("GET", "/apps/service-status/overview"),
        ("GET", "/apps/service-status/incidents"),
        ("GET", "/apps/service-status/Incidents/INC-7"),
        ("GET", "/apps/admin-console/"),
        ("GET", "/apps/team-directory/people/42"),
        ("POST", "/apps/service-status/incidents"),
    ] {
        let answer: Value = admin_get(format!(
            "tenant=demo&groups=demo-eng&method={method}&path={path}"
        ))
        .await
        .json()
        .await
        .unwrap();
        let verdict = &answer["path"];
        assert_eq!(verdict["app"], path.split('/').nth(2).unwrap(), "{answer}");
        let proxied = client()
            .request(method.parse().unwrap(), server.url(path))
            .header("cookie", &dave.cookie)
            .send()
            .await
            .unwrap()
            .status();
        let refused = proxied == StatusCode::FORBIDDEN;
        assert_eq!(
            verdict["allowed"] == true,
            !refused,
            "{method} {path}: explain says {verdict}, the proxy answered {proxied}"
        );
    }

    let unknown = admin_get("tenant=nope&groups=a".into()).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = admin_get("groups=a".into()).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    // A tenant origin has no such route: there it is a shell path, which needs a session.
    let on_tenant = server
        .get("/explain?tenant=demo&groups=demo-eng")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(on_tenant.status(), StatusCode::UNAUTHORIZED);
}
