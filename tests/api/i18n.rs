//! Languages: a browser that asks for German (`Accept-Language`) gets portico's own pages and texts in
//! German, and the labels config writes per language in German; one that asks for anything else gets
//! English. The user's own pick (`/shell/language`, a cookie) beats the browser's. Against the
//! embedded demo portal, whose labels are written in English and German.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ACCEPT_LANGUAGE, COOKIE, LOCATION, REFERER, SET_COOKIE};
use serde_json::Value;

use crate::helpers::{Session, TestServer, app_nodes};

const GERMAN: &str = "de-DE,de;q=0.9,en;q=0.8";

async fn json_as(server: &TestServer, path: &str, session: &Session, language: &str) -> Value {
    let response = server
        .get(path)
        .header(COOKIE, &session.cookie)
        .header(ACCEPT_LANGUAGE, language)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

fn labels(nodes: &[Value]) -> Vec<&str> {
    nodes
        .iter()
        .filter_map(|node| node["label"].as_str())
        .collect()
}

#[tokio::test]
async fn a_german_browser_gets_the_navigation_in_german_and_others_get_english() {
    let server = TestServer::embedded().await;
    let alice = server.sign_in("alice").await;

    let german = json_as(&server, "/shell/config.json", &alice, GERMAN).await;
    assert_eq!(german["portico"]["locale"], "de");
    let home = &german["luigi"]["navigation"]["nodes"][0];
    assert_eq!(home["label"], "Startseite");
    let apps = app_nodes(&german);
    assert_eq!(
        labels(&apps),
        ["Dienststatus", "Verwaltung", "Teamverzeichnis"]
    );
    assert_eq!(apps[0]["category"], "Betrieb");
    let profile = &german["luigi"]["navigation"]["profile"];
    assert_eq!(profile["logout"]["label"], "Abmelden");
    assert_eq!(profile["items"][0]["label"], "Mein Zugriff");
    assert_eq!(profile["items"][1]["label"], "Zugriffstoken");
    // The switch to the other language, named in that language.
    assert_eq!(profile["items"][2]["label"], "English");
    assert_eq!(
        profile["items"][2]["externalLink"]["url"],
        "/shell/language?set=en"
    );
    let launchpad = &home["context"]["apps"][0];
    assert_eq!(
        launchpad["description"],
        "Wie es den Diensten geht, die Sie betreiben, und was zuletzt schiefging."
    );

    for other in ["en-US,en;q=0.9", "fr-FR,fr;q=0.9", "*"] {
        let english = json_as(&server, "/shell/config.json", &alice, other).await;
        assert_eq!(english["portico"]["locale"], "en", "{other}");
        assert_eq!(
            labels(&app_nodes(&english)),
            ["Service Status", "Admin Console", "Team Directory"],
            "{other}"
        );
    }
}

#[tokio::test]
async fn my_access_and_route_explanations_follow_the_language() {
    let server = TestServer::embedded().await;
    let dave = server.sign_in("dave").await;
    let access = json_as(&server, "/shell/access.json", &dave, GERMAN).await;
    assert_eq!(access["roles"][0]["description"], "Baut Software");
    assert_eq!(access["roles"][0]["opens"][0]["label"], "Dienststatus");
    assert_eq!(
        access["roles"][0]["opens"][0]["pages"][0]["label"],
        "Übersicht"
    );
    let route = json_as(
        &server,
        "/shell/route.json?path=/home/service-status/incidents",
        &dave,
        GERMAN,
    )
    .await;
    assert_eq!(route["kind"], "forbidden");
    assert_eq!(route["app"]["label"], "Dienststatus");
    assert_eq!(route["page"], "Störungsanalyse");
}

#[tokio::test]
async fn the_users_pick_of_language_beats_the_browsers_and_returns_to_the_page() {
    let server = TestServer::embedded().await;
    let alice = server.sign_in("alice").await;

    // From the shell's profile menu: no return_to, the shell page is the Referer.
    let picked = server
        .get("/shell/language?set=de")
        .header(COOKIE, &alice.cookie)
        .header(REFERER, server.url("/home/service-status/overview?tab=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(picked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        picked.headers()[LOCATION],
        "/home/service-status/overview?tab=1"
    );
    let cookie = picked.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("portico_lang=de; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );

    // With the cookie, an English browser gets German; an unknown pick is ignored.
    let both = Session {
        cookie: format!("{}; portico_lang=de", alice.cookie),
        id: alice.id.clone(),
    };
    let german = json_as(&server, "/shell/config.json", &both, "en-US").await;
    assert_eq!(german["portico"]["locale"], "de");
    let odd = Session {
        cookie: format!("{}; portico_lang=xx", alice.cookie),
        id: alice.id.clone(),
    };
    let english = json_as(&server, "/shell/config.json", &odd, "en-US").await;
    assert_eq!(english["portico"]["locale"], "en");

    // Another site's page as Referer, or an absolute return_to, never becomes the way back.
    for (referer, return_to) in [
        ("https://evil.example/home", None),
        ("http://evil.example/x", Some("https://evil.example/")),
    ] {
        let mut request = server.get("/shell/language").header(REFERER, referer);
        request = match return_to {
            Some(return_to) => request.query(&[("set", "en"), ("return_to", return_to)]),
            None => request.query(&[("set", "en")]),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "/", "{referer}");
    }

    // The sign-in and signed-out pages offer the switch and get their page back; no other `/auth`
    // path does (a link could otherwise send someone to sign out).
    for (return_to, back) in [
        ("/auth/signed-out", "/auth/signed-out"),
        (
            "/auth/login?return_to=%2Fhome",
            "/auth/login?return_to=%2Fhome",
        ),
        ("/auth/logout", "/"),
        ("/auth/login/../logout", "/"),
    ] {
        let response = server
            .get("/shell/language")
            .query(&[("set", "de"), ("return_to", return_to)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()[LOCATION], back, "{return_to}");
    }

    // A language portico does not speak is a clear error, not a silent switch.
    let unknown = server
        .get("/shell/language?set=fr")
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("set=de"),
        "{body}"
    );
}

/// A browser's navigation to `path` (with `session`, in `language`): status and page.
async fn navigate(
    server: &TestServer,
    path: &str,
    session: Option<&Session>,
    language: Option<&str>,
) -> (StatusCode, String) {
    let mut request = server
        .get(path)
        .header(ACCEPT, "text/html")
        .header("sec-fetch-mode", "navigate");
    if let Some(session) = session {
        request = request.header(COOKIE, &session.cookie);
    }
    if let Some(language) = language {
        request = request.header(ACCEPT_LANGUAGE, language);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_pages_portico_renders_speak_the_browsers_language() {
    let server = TestServer::embedded().await;

    let (status, page) = navigate(&server, "/auth/login", None, Some(GERMAN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<html lang="de">"#), "{page}");
    assert!(page.contains("Bei Portico Demo Portal anmelden"), "{page}");
    assert!(page.contains("Als alice anmelden"), "{page}");
    assert!(
        page.contains(r#"href="/shell/language?set=en&#38;return_to=%2Fauth%2Flogin%3F"#),
        "a link to the English page: {page}"
    );

    let (_, signed_out) = navigate(&server, "/auth/signed-out", None, Some(GERMAN)).await;
    assert!(
        signed_out.contains("Sie sind von Portico Demo Portal abgemeldet"),
        "{signed_out}"
    );

    // An error page: the status, the message (by its code) and the request id in German.
    let dave = server.sign_in("dave").await;
    let (status, page) = navigate(&server, "/apps/admin-console/", Some(&dave), Some(GERMAN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains(r#"<html lang="de">"#), "{page}");
    assert!(page.contains("Fehler 403 · Kein Zugriff"), "{page}");
    assert!(page.contains("Sie haben keinen Zugriff darauf."), "{page}");
    assert!(page.contains("Anfrage-ID:"), "{page}");

    // The same page for an English browser keeps the error's own words.
    let (_, english) = navigate(&server, "/apps/admin-console/", Some(&dave), None).await;
    assert!(english.contains(r#"<html lang="en">"#), "{english}");
    assert!(english.contains("Error 403 · Forbidden"), "{english}");

    // JSON errors stay in English: they are for programs and logs.
    let json = server
        .get("/apps/admin-console/")
        .header(COOKIE, &dave.cookie)
        .header(ACCEPT, "application/json")
        .header(ACCEPT_LANGUAGE, GERMAN)
        .send()
        .await
        .unwrap();
    let body: Value = json.json().await.unwrap();
    assert_eq!(body["error"], "forbidden");
    assert!(
        !body["message"].as_str().unwrap().contains("Zugriff"),
        "{body}"
    );

    // The shell page itself names its language, which the bootstrap hands to Luigi.
    let (_, shell) = navigate(&server, "/home", Some(&dave), Some(GERMAN)).await;
    assert!(shell.contains(r#"<html lang="de">"#), "{shell}");
    assert!(shell.contains("Das Portal braucht JavaScript."), "{shell}");
}
