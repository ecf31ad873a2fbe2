//! Branding without hacks: a tenant's logo and favicon are image files next to the config, served by
//! portico, shown in the shell, on the sign-in and signed-out pages and, for a user of two portals,
//! in the product switcher (whose CSP then allows the other portal's origin for images, and only
//! for that user).

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG};
use serde_json::Value;

use crate::helpers::{TestServer, compile};

const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#8b1a1a"/></svg>"##;

fn config(dir: &Path) -> String {
    std::fs::write(dir.join("acme-logo.svg"), LOGO).unwrap();
    std::fs::write(dir.join("acme.ico"), [0u8, 0, 1, 0, 1, 0]).unwrap();
    std::fs::write(
        dir.join("globex-logo.svg"),
        LOGO.replace("8b1a1a", "1a4d2e"),
    )
    .unwrap();
    r#"version: 1
default_tenant: acme
tenants:
  acme:
    hosts: [127.0.0.1]
    branding: { title: Acme Portal, logo: acme-logo.svg, favicon: acme.ico }
    auth:
      dev_sign_in:
        users:
          - { id: bo, name: Bo, email: bo@example.com, groups: [eng] }
          - { id: cy, name: Cy, email: cy@example.com, groups: [acme-only] }
    roles:
      developer: { groups: [eng, acme-only] }
    apps:
      - { id: tools, label: Tools, access: { roles: [developer] }, static: embedded:demo }
  globex:
    hosts: [globex.test]
    public_origin: http://globex.test:8443
    branding: { title: Globex Portal, logo: globex-logo.svg }
    auth:
      dev_sign_in:
        users:
          - { id: bo, name: Bo, email: bo@example.com, groups: [eng] }
    roles:
      staff: { groups: [eng] }
    apps:
      - { id: ledger, label: Ledger, access: { roles: [staff] }, static: embedded:demo }
"#
    .to_owned()
}

#[tokio::test]
async fn logo_and_favicon_files_next_to_the_config_are_served_and_used_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(compile(&config(dir.path()), dir.path())).await;
    let bo = server.sign_in("bo").await;
    let shell: Value = server.shell_config(&bo).await;
    let header = &shell["luigi"]["settings"]["header"];
    let logo = header["logo"].as_str().unwrap().to_owned();
    assert!(logo.starts_with("/shell/brand/logo?v="), "{header}");
    assert!(
        header["favicon"]
            .as_str()
            .unwrap()
            .starts_with("/shell/brand/favicon?v=")
    );

    // The versioned URL is cached for good; the bare one is revalidated; both are the file.
    let served = server.get(&logo).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()[CONTENT_TYPE], "image/svg+xml");
    assert_eq!(
        served.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    // Opened on its own, an SVG runs nothing.
    assert!(
        served.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    let etag = served.headers()[ETAG].clone();
    assert_eq!(served.text().await.unwrap(), LOGO);
    let bare = server.get("/shell/brand/logo").send().await.unwrap();
    assert_eq!(bare.headers()[CACHE_CONTROL], "no-cache");
    let again = server
        .get("/shell/brand/logo")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let favicon = server.get("/shell/brand/favicon").send().await.unwrap();
    assert_eq!(favicon.headers()[CONTENT_TYPE], "image/x-icon");
    assert_eq!(
        server
            .get("/shell/brand/other")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // Each tenant's own image on its own host.
    let globex_logo = server
        .get("/shell/brand/logo")
        .header("host", "globex.test")
        .send()
        .await
        .unwrap();
    assert!(globex_logo.text().await.unwrap().contains("1a4d2e"));

    // The sign-in and signed-out pages show the logo and favicon before anyone is signed in.
    for page in ["/auth/login", "/auth/signed-out"] {
        let html = server.get(page).send().await.unwrap().text().await.unwrap();
        assert!(
            html.contains(&format!("<img src=\"{logo}\"")),
            "{page}: {html}"
        );
        assert!(
            html.contains("rel=\"icon\" href=\"/shell/brand/favicon?v="),
            "{page}: {html}"
        );
    }

    // bo is in both portals: the switcher shows each one's logo, the other's from its own origin,
    // and the shell page's CSP lets that origin's images in.
    let items = &shell["luigi"]["navigation"]["productSwitcher"]["items"];
    assert_eq!(items[0]["icon"], Value::String(logo.clone()), "{items}");
    let other = items[1]["icon"].as_str().unwrap();
    assert!(
        other.starts_with("http://globex.test:8443/shell/brand/logo?v="),
        "{items}"
    );
    let page = server.get_as("/home", &bo).await;
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("img-src 'self' data: http://globex.test:8443"),
        "{csp}"
    );
    // cy is in acme only: no switcher, and no other origin in the policy.
    let cy = server.sign_in("cy").await;
    let page = server.get_as("/home", &cy).await;
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.ends_with("img-src 'self' data:"), "{csp}");
}

#[test]
fn a_logo_that_is_missing_or_not_an_image_is_a_config_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(dir.path())
        .replace("logo: acme-logo.svg", "logo: missing.svg")
        .replace("logo: globex-logo.svg", "logo: notes.txt");
    let Err(error) =
        portico::config::load_str(&portico::config::OsSource, "test.yaml", &yaml, dir.path())
    else {
        panic!("a missing logo file must be refused");
    };
    let text = error.to_string();
    assert!(text.contains("test.yaml:6"), "{text}");
    assert!(text.contains("missing.svg"), "{text}");
    assert!(text.contains("tenants.globex.branding.logo"), "{text}");
    assert!(text.contains("neither a URL nor an image file"), "{text}");
}
