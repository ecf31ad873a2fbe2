//! A refused user is told whom to ask and how: the 403 of `/apps/<id>/…` (a page for a browser, JSON
//! for an API call) and the shell's `/shell/route.json` name the app's owner, each role that would
//! open the path with the groups that grant it, and the tenant's `request_access` links, filled per
//! group and percent-encoded. Nothing beyond that path: no other app, role, group or tenant.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, COOKIE};
use serde_json::{Value, json};

use crate::helpers::{Session, TestServer, json_error};

/// A browser's navigation to `path` as the holder of `session`: status and page.
async fn navigate(
    server: &TestServer,
    path: &str,
    session: &Session,
    language: &str,
) -> (StatusCode, String) {
    let response = server
        .get(path)
        .header(COOKIE, &session.cookie)
        .header(ACCEPT, "text/html")
        .header(ACCEPT_LANGUAGE, language)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// An API call to `path`: the JSON error.
async fn api(server: &TestServer, path: &str, session: &Session) -> Value {
    let response = server
        .get(path)
        .header(COOKIE, &session.cookie)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    json_error(response, 403, "forbidden").await
}

const TICKET: &str = "https://tickets.demo.example/new?summary=Access+to+";

#[tokio::test]
async fn the_403_page_and_its_json_name_the_owner_the_groups_and_the_request_link() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;

    let (status, page) = navigate(&server, "/apps/admin-console/", &dave, "en").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("App: Admin Console"), "{page}");
    assert!(page.contains("owned by team-platform"), "{page}");
    assert!(page.contains("<code>platform-admin</code>"), "{page}");
    assert!(
        page.contains("granted to members of <code>demo-platform-admins</code>"),
        "{page}"
    );
    assert!(
        page.contains("Request access below, or ask the app’s owner, team-platform,"),
        "{page}"
    );
    // The link as the HTML attribute holds it (`&` written `&#38;`), opening a new tab, no Referer.
    let href = format!(
        "href=\"{TICKET}Admin%20Console&#38;group=demo-platform-admins&#38;requester=dave%40demo.example&#38;path=%2Fapps%2Fadmin-console%2F\""
    );
    assert!(page.contains(&href), "{href} in {page}");
    assert!(
        page.contains(
            r#"target="_blank" rel="noopener noreferrer" data-testid="request-access">Request access to demo-platform-admins</a>"#
        ),
        "{page}"
    );
    // Only what opens this path: not the developer role dave has, nor its group.
    assert!(!page.contains("demo-eng"), "{page}");

    let body = api(&server, "/apps/admin-console/", &dave).await;
    assert!(
        body["message"].as_str().unwrap().contains("platform-admin"),
        "{body}"
    );
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(
        body["app"],
        json!({ "id": "admin-console", "label": "Admin Console", "owner": "team-platform" })
    );
    assert_eq!(body["page"], Value::Null);
    assert_eq!(
        body["needs"],
        json!([{ "role": "platform-admin", "groups": ["demo-platform-admins"] }])
    );
    assert_eq!(
        body["request_access"],
        json!([{
            "role": "platform-admin",
            "group": "demo-platform-admins",
            "url": format!("{TICKET}Admin%20Console&group=demo-platform-admins&requester=dave%40demo.example&path=%2Fapps%2Fadmin-console%2F"),
        }])
    );

    // A page of an app dave may open, refused by the page's rule: the page is named and filled in.
    let (status, page) =
        navigate(&server, "/apps/service-status/incidents/INC-7", &dave, "en").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("page Incident Review"), "{page}");
    let body = api(&server, "/apps/service-status/incidents/INC-7", &dave).await;
    assert_eq!(body["page"], "Incident Review", "{body}");
    assert_eq!(body["app"]["owner"], "team-sre", "{body}");

    // In German: the texts, and the label the link carries, are the page's language.
    let (_, german) = navigate(&server, "/apps/admin-console/", &dave, "de-DE").await;
    assert!(
        german.contains("Zugang zu demo-platform-admins beantragen"),
        "{german}"
    );
    assert!(german.contains("betreut von team-platform"), "{german}");
    assert!(
        german.contains(&format!("{TICKET}Verwaltung&#38;")),
        "{german}"
    );
}

#[tokio::test]
async fn route_json_offers_the_same_links_for_the_shell_path() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let response = server
        .get_as("/shell/route.json?path=%2Fhome%2Fadmin-console", &dave)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["kind"], "forbidden", "{answer}");
    assert_eq!(
        answer["request_access"],
        json!([{
            "role": "platform-admin",
            "group": "demo-platform-admins",
            "url": format!("{TICKET}Admin%20Console&group=demo-platform-admins&requester=dave%40demo.example&path=%2Fhome%2Fadmin-console"),
        }])
    );
    // An unknown path gets nothing to ask for.
    let unknown: Value = server
        .get_as("/shell/route.json?path=%2Fhome%2Fledger", &dave)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        unknown,
        json!({ "kind": "unknown", "path": "/home/ledger" })
    );
}

/// Two tenants on one portico: `acme` with a mailto: template and names full of URL and HTML syntax,
/// `globex` with none.
const TWO_TENANTS: &str = r#"
version: 1
tenants:
  acme:
    hosts: [127.0.0.1]
    request_access: "mailto:access@acme.example?subject=Access%20to%20{app_label}&body={group}%20for%20{user}"
    auth: { dev_sign_in: { users: [{ id: ann, groups: [eng] }] } }
    roles:
      developer: { groups: [eng] }
      finance: { groups: ["fin & ops", "ctrl#1"] }
    apps:
      - { id: open, label: Open, access: { roles: [developer] }, static: "embedded:demo" }
      - id: costs
        label: "Costs & \"<b>Budgets</b>\""
        access: { roles: [finance] }
        static: "embedded:demo"
  globex:
    hosts: [localhost]
    auth: { dev_sign_in: { users: [{ id: gus, groups: [staff] }] } }
    roles:
      staff: { groups: [staff] }
      boss: { groups: [globex-bosses] }
    apps:
      - { id: ledger, label: Ledger, owner: globex-finance, access: { roles: [boss] }, static: "embedded:demo" }
"#;

#[tokio::test]
async fn filled_values_cannot_break_the_link_or_the_page_and_a_tenant_without_a_template_names_the_owner()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::from_yaml(TWO_TENANTS, dir.path()).await;
    let ann = server.sign_in("ann").await;

    let body = api(&server, "/apps/costs/", &ann).await;
    // `{user}`: dev sign-in gives a user without an email address `<id>@example.invalid`.
    assert_eq!(
        body["request_access"],
        json!([
            {
                "role": "finance",
                "group": "fin & ops",
                "url": "mailto:access@acme.example?subject=Access%20to%20Costs%20%26%20%22%3Cb%3EBudgets%3C%2Fb%3E%22&body=fin%20%26%20ops%20for%20ann%40example.invalid",
            },
            {
                "role": "finance",
                "group": "ctrl#1",
                "url": "mailto:access@acme.example?subject=Access%20to%20Costs%20%26%20%22%3Cb%3EBudgets%3C%2Fb%3E%22&body=ctrl%231%20for%20ann%40example.invalid",
            }
        ]),
        "{body}"
    );
    assert_eq!(body["app"]["owner"], Value::Null);

    let (status, page) = navigate(&server, "/apps/costs/", &ann, "en").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        !page.contains("<b>"),
        "markup from config stays text: {page}"
    );
    assert!(
        page.contains("Costs &#38; &#34;&#60;b&#62;Budgets"),
        "{page}"
    );
    assert!(page.contains("Request access to fin &#38; ops"), "{page}");
    assert!(
        page.contains("Request access below, or ask your team lead or the platform team"),
        "{page}"
    );
    assert!(!page.contains("developer"), "{page}");

    // Globex has no template: no link, the owner by name. Its host is another tenant's origin.
    let gus = sign_in_at(&server, "localhost", "gus").await;
    let response = server
        .get("/apps/ledger/")
        .header("host", format!("localhost:{}", server.addr.port()))
        .header(COOKIE, &gus.cookie)
        .header(ACCEPT, "text/html")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(
            "Ask the app’s owner, globex-finance, or your team lead to add you to one of these groups."
        ),
        "{page}"
    );
    assert!(!page.contains("request-access"), "{page}");
    assert!(!page.contains("mailto:"), "nothing of acme's: {page}");
    // The heading does not repeat the roles the explanation below lists.
    assert!(
        page.contains("<h1>You do not have access to this.</h1>"),
        "{page}"
    );
    assert!(!page.contains("it needs one of the roles"), "{page}");
}

/// Dev sign-in on the tenant at `host`.
async fn sign_in_at(server: &TestServer, host: &str, user: &str) -> Session {
    let origin = format!("http://{host}:{}", server.addr.port());
    let response = server
        .post("/auth/dev-login")
        .header("host", format!("{host}:{}", server.addr.port()))
        .header("origin", origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user={user}&return_to=%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "sign-in as {user}"
    );
    crate::helpers::session_from(response.headers()).expect("a session cookie")
}
