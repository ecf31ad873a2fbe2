//! The catalog in the shell: the built-in Catalog app of a tenant with a Backstage, and an app's
//! `catalog_ref`, which the shell's home view and portico's error pages turn into the owner and links
//! of the app's catalog entity (read in the browser as the user: `e2e/catalog.test.mjs` follows it in
//! Chromium against the real Backstage).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Session, TestServer, app, app_nodes, config, tenant, user};
use crate::op::reserve_port;

/// `GET <path>` as the shell's iframe for an app loads it: a browser navigation inside a frame.
async fn in_frame(server: &TestServer, session: &Session, path: &str) -> reqwest::Response {
    server
        .get(path)
        .header("cookie", &session.cookie)
        .header("accept", "text/html")
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_with_a_backstage_gets_the_catalog_app_and_apps_carry_their_catalog_ref() {
    // An upstream nobody listens on: the app's error page is what the user gets.
    let down = format!("http://{}", reserve_port());
    let server = config()
        .tenant(
            tenant("acme", &["127.0.0.1"])
                .user(user("dev", &["eng"]))
                .user(user("olga", &["ops"]))
                .role("developer", &["eng"])
                .role("ops", &["ops"])
                .app(
                    app("payments", &["developer"])
                        .upstream(&down)
                        .key("owner", "team-payments")
                        .key("catalog_ref", "\"component:acme/payments-api\""),
                )
                .backstage(
                    "{ url: \"http://127.0.0.1:9\", identity: service, service_token: t, \
                     namespaces: [acme], shared_namespaces: [common] }",
                ),
        )
        .start()
        .await;
    let dev = server.sign_in("dev").await;
    let olga = server.sign_in("olga").await;

    // The Catalog app is there for every role; the home view's apps carry the catalog ref.
    let shell = server.shell_config(&dev).await;
    let ids: Vec<Value> = app_nodes(&shell)
        .iter()
        .map(|n| n["pathSegment"].clone())
        .collect();
    assert_eq!(ids, ["payments", "catalog"], "{shell:#}");
    let home_apps = &shell["luigi"]["navigation"]["nodes"][0]["context"]["apps"];
    let payments = home_apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "payments")
        .unwrap();
    assert_eq!(payments["catalogRef"], "component:acme/payments-api");
    assert_eq!(payments["owner"], "team-payments");
    let olga_shell = server.shell_config(&olga).await;
    let olga_ids: Vec<Value> = app_nodes(&olga_shell)
        .iter()
        .map(|n| n["pathSegment"].clone())
        .collect();
    assert_eq!(olga_ids, ["catalog"]);
    let bundle = server.get_as("/apps/catalog/", &olga).await;
    assert_eq!(bundle.status(), StatusCode::OK);
    assert!(bundle.text().await.unwrap().contains("catalog.js"));

    // The app's error page in its frame names the app and its catalog entity, for the script that
    // shows the owner and links; its policy lets that script read the catalog.
    let page = in_frame(&server, &dev, "/apps/payments/").await;
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("owned by team-payments"), "{html}");
    assert!(
        html.contains(r#"data-catalog-ref="component:acme/payments-api""#),
        "{html}"
    );
    assert!(html.contains("/shell/catalog-card.js"), "{html}");

    // A user who may not open the app is told whom to ask (its owner, issue 16), but nothing of its
    // catalog entity: no card is fetched for them.
    let refused = in_frame(&server, &olga, "/apps/payments/").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(html.contains("team-payments"), "{html}");
    assert!(
        !html.contains("payments-api") && !html.contains("catalog-card.js"),
        "{html}"
    );
}
