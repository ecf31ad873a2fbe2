//! The scoping rules, case by case (the real Backstage runs in tests/api/backstage.rs).

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::utf8_percent_encode;
use serde_json::{Value, json};

use super::cursor::rescope_cursor;
use super::plan::{Endpoint, endpoint};
use super::query::{encode_query, parse_query, scope_filters};
use super::*;
use crate::backstage::BackstageError;
use crate::rbac::PathGlob;

fn acme() -> Scope {
    Scope::new(["acme", "common"])
}

fn filters(query: &str) -> Vec<String> {
    parse_query(query)
        .unwrap()
        .into_iter()
        .filter(|(name, _)| name == "filter")
        .map(|(_, value)| value)
        .collect()
}

fn decode_cursor(encoded: &str) -> Value {
    serde_json::from_slice(&STANDARD.decode(encoded).unwrap()).unwrap()
}

fn encode_cursor(cursor: &Value) -> String {
    STANDARD.encode(cursor.to_string())
}

fn get(path: &str, query: Option<&str>) -> Result<Plan, BackstageError> {
    plan(&acme(), &[], &Method::GET, path, query)
}

#[test]
fn no_filter_gets_the_scope() {
    let plan = get("/entities", Some("fields=metadata.name")).unwrap();
    assert_eq!(
        plan.query.as_deref(),
        Some("filter=metadata.namespace%3Dacme%2Cmetadata.namespace%3Dcommon&fields=metadata.name")
    );
    assert_eq!(plan.answer, AnswerRule::Stream);
}

#[test]
fn each_filter_is_narrowed_and_kept_in_order() {
    let plan = get(
        "/entities",
        Some("filter=kind=component&filter=kind=group,spec.type=team&limit=2"),
    )
    .unwrap();
    let query = plan.query.unwrap();
    assert_eq!(
        filters(&query),
        [
            "kind=component,metadata.namespace=acme,metadata.namespace=common",
            "kind=group,spec.type=team,metadata.namespace=acme,metadata.namespace=common",
        ]
    );
    assert!(query.ends_with("&limit=2"), "{query}");
}

#[test]
fn a_filter_cannot_widen_the_namespaces_by_merging_with_the_scope() {
    // Same key: Backstage would merge `globex` into portico's own statement.
    let scope = acme();
    assert_eq!(
        scope_filters(&scope, &["kind=component,metadata.namespace=globex".into()]),
        [MATCH_NOTHING]
    );
    // Other spellings of the key, padded with what JavaScript's trim removes.
    for key in [
        "Metadata.Namespace",
        " metadata.namespace ",
        "\u{feff}metadata.namespace",
        "METADATA.NAMESPACE\u{3000}",
    ] {
        let filter = format!("{key}=globex,kind=component");
        assert_eq!(scope_filters(&scope, &[filter]), [MATCH_NOTHING], "{key:?}");
    }
    // Asking for a namespace in scope narrows to it alone, case-insensitively.
    assert_eq!(
        scope_filters(&scope, &["metadata.namespace=ACME, kind=api".into()]),
        ["kind=api,metadata.namespace=acme"]
    );
    // Several values of one key are "any of"; different keys are "all of".
    assert_eq!(
        scope_filters(
            &scope,
            &["metadata.namespace=globex,metadata.namespace=common".into()]
        ),
        ["metadata.namespace=common"]
    );
    assert_eq!(
        scope_filters(
            &scope,
            &["metadata.namespace=acme,Metadata.Namespace=common".into()]
        ),
        [MATCH_NOTHING]
    );
    // A key alone (exists) does not restrict the namespace.
    assert_eq!(
        scope_filters(&scope, &["metadata.namespace,kind=api".into()]),
        ["kind=api,metadata.namespace=acme,metadata.namespace=common"]
    );
    // `\u{85}` is not a JavaScript space, but it is a Unicode one: portico takes the statement for a
    // namespace condition anyway, which can only narrow (found by fuzz/backstage_scope).
    assert_eq!(
        scope_filters(&scope, &["\u{85}metadata.namespace=globex".into()]),
        [MATCH_NOTHING]
    );
    assert_eq!(
        scope_filters(&scope, &["\u{85} metadata.namespace=acme,kind=api".into()]),
        ["kind=api,metadata.namespace=acme"]
    );
}

#[test]
fn empty_filters_are_ignored_as_backstage_ignores_them() {
    let scope = acme();
    assert_eq!(
        scope_filters(&scope, &[" , ".into(), String::new()]),
        ["metadata.namespace=acme,metadata.namespace=common"]
    );
    assert_eq!(
        scope_filters(&scope, &[" ,".into(), "kind=api".into()]),
        ["kind=api,metadata.namespace=acme,metadata.namespace=common"]
    );
    // Values keep their `=`.
    assert_eq!(
        scope_filters(&scope, &["metadata.annotations.x=a=b".into()]),
        ["metadata.annotations.x=a=b,metadata.namespace=acme,metadata.namespace=common"]
    );
}

#[test]
fn queries_are_parsed_strictly_and_re_encoded() {
    assert_eq!(
        parse_query("filter=kind%3Dapi+x&&fields=a,b&flag").unwrap(),
        [
            ("filter".to_owned(), "kind=api x".to_owned()),
            ("fields".to_owned(), "a,b".to_owned()),
            ("flag".to_owned(), String::new()),
        ]
    );
    for bad in [
        "filter[]=metadata.namespace=globex",
        "filter%5B0%5D=x",
        "filter=%zz",
        "filter=%e9",
        "filter=%4",
    ] {
        assert!(
            matches!(parse_query(bad), Err(BackstageError::BadCatalogRequest(_))),
            "{bad}"
        );
    }
    let many = vec!["a=1"; MAX_QUERY_PARAMS + 1].join("&");
    assert!(parse_query(&many).is_err());
    assert_eq!(
        encode_query([("a b".to_owned(), "x=y,z/é~".to_owned())]),
        "a%20b=x%3Dy%2Cz%2F%C3%A9~"
    );
}

#[test]
fn a_cursor_gets_the_scope_whatever_it_carried() {
    let scope = acme();
    let forged = json!({
        "orderFields": [], "isPrevious": false, "query": { "kind": "component" },
        "orderFieldValues": ["x"], "totalItems": 99,
    });
    let rescoped = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&forged)).unwrap());
    assert_eq!(
        rescoped["query"],
        json!({ "$all": [scope.predicate(), { "kind": "component" }] })
    );
    assert_eq!(rescoped["orderFieldValues"], json!(["x"]));
    // No query at all: the scope alone.
    let bare = json!({ "orderFields": [], "isPrevious": false });
    let rescoped = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&bare)).unwrap());
    assert_eq!(rescoped["query"], json!({ "$all": [scope.predicate()] }));
    // A cursor portico already scoped is kept as it is, so paging does not grow it.
    let again = rescope_cursor(&scope, &encode_cursor(&rescoped)).unwrap();
    assert_eq!(decode_cursor(&again), rescoped);
    // The scope must be the first member of a lone `$all`; anything else is wrapped again.
    for sneaky in [
        json!({ "$all": [{ "kind": "x" }, scope.predicate()] }),
        json!({ "$all": [scope.predicate()], "$any": [] }),
        json!({ "$any": [scope.predicate(), { "metadata.namespace": "globex" }] }),
    ] {
        let cursor = json!({ "orderFields": [], "isPrevious": false, "query": sneaky });
        let out = decode_cursor(&rescope_cursor(&scope, &encode_cursor(&cursor)).unwrap());
        assert_eq!(out["query"], json!({ "$all": [scope.predicate(), sneaky] }));
    }
    // URL-safe base64 without padding decodes too.
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(rescope_cursor(&scope, &url_safe).is_ok());
    for bad in ["not base64!", "bnVsbA==", "WzFd"] {
        assert!(rescope_cursor(&scope, bad).is_err(), "{bad}");
    }
}

#[test]
fn by_query_get_rescopes_its_cursor() {
    let cursor = encode_cursor(&json!({ "orderFields": [], "isPrevious": false }));
    let query = format!(
        "cursor={}&limit=1",
        utf8_percent_encode(&cursor, QUERY_VALUE)
    );
    let plan = get("/entities/by-query", Some(&query)).unwrap();
    let pairs = parse_query(plan.query.as_deref().unwrap()).unwrap();
    let sent = &pairs.iter().find(|(name, _)| name == "cursor").unwrap().1;
    assert_eq!(
        decode_cursor(sent)["query"],
        json!({ "$all": [acme().predicate()] })
    );
    let twice = format!("{query}&{query}");
    assert!(get("/entities/by-query", Some(&twice)).is_err());
}

#[test]
fn bodies_get_the_scope() {
    let scope = acme();
    let body = |rule, text: &str| -> Value {
        serde_json::from_slice(&scope_body(&scope, rule, text.as_bytes()).unwrap()).unwrap()
    };
    let query = body(
        BodyRule::EntityQuery,
        r#"{"query":{"kind":"api"},"limit":2}"#,
    );
    assert_eq!(
        query,
        json!({ "query": { "$all": [scope.predicate(), { "kind": "api" }] }, "limit": 2 })
    );
    assert_eq!(
        body(BodyRule::EntityQuery, ""),
        json!({ "query": { "$all": [scope.predicate()] } })
    );
    assert_eq!(
        body(BodyRule::FacetQuery, r#"{"facets":["kind"],"query":null}"#),
        json!({ "facets": ["kind"], "query": { "$all": [scope.predicate()] } })
    );
    let forged = encode_cursor(&json!({ "orderFields": [], "isPrevious": false }));
    let with_cursor = body(
        BodyRule::EntityQuery,
        &json!({ "cursor": forged, "limit": 1 }).to_string(),
    );
    assert_eq!(
        decode_cursor(with_cursor["cursor"].as_str().unwrap())["query"],
        json!({ "$all": [scope.predicate()] })
    );
    for bad in [r#"{"cursor":""}"#, r#"{"cursor":5}"#, "[1]", "query=x"] {
        assert!(
            scope_body(&scope, BodyRule::EntityQuery, bad.as_bytes()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn refresh_is_limited_to_refs_in_scope() {
    let scope = acme();
    let refresh = |text: &str| scope_body(&scope, BodyRule::Refresh, text.as_bytes());
    let sent: Value = serde_json::from_slice(
        &refresh(r#"{"entityRef":"component:acme/a","authorizationToken":"t"}"#).unwrap(),
    )
    .unwrap();
    assert_eq!(sent, json!({ "entityRef": "component:acme/a" }));
    for outside in [
        r#"{"entityRef":"component:globex/a"}"#,
        r#"{"entityRef":"component:a"}"#,
        r#"{"entityRef":"acme/a"}"#,
    ] {
        assert!(
            matches!(refresh(outside), Err(BackstageError::EntityNotFound)),
            "{outside}"
        );
    }
    assert!(matches!(
        refresh(r#"{"entityRef":["component:acme/a"]}"#),
        Err(BackstageError::BadCatalogRequest(_))
    ));
}

#[test]
fn routes_are_matched_as_express_matches_them() {
    assert_eq!(endpoint("/entities/"), Endpoint::Entities);
    assert_eq!(endpoint("/ENTITIES/By-Query"), Endpoint::ByQuery);
    assert_eq!(
        endpoint("/entities/by-name/component/globex/x/"),
        Endpoint::ByName {
            namespace: "globex"
        }
    );
    assert_eq!(
        endpoint("/Entities/BY-NAME/component/Globex/x/Ancestry"),
        Endpoint::Ancestry {
            namespace: "Globex"
        }
    );
    assert_eq!(endpoint("/entities/by-name/component/x"), Endpoint::Other);
    assert_eq!(
        endpoint("/entities/by-name/component/acme/x/other"),
        Endpoint::Other
    );
    assert_eq!(endpoint("/locations"), Endpoint::Other);
    assert_eq!(endpoint("/"), Endpoint::Other);
}

#[test]
fn plans_by_method_and_endpoint() {
    let scope = acme();
    let plan_of = |method: Method, path: &str| plan(&scope, &[], &method, path, None);
    assert!(matches!(
        plan_of(Method::GET, "/entities/by-name/component/globex/x"),
        Err(BackstageError::EntityNotFound)
    ));
    assert_eq!(
        plan_of(Method::HEAD, "/entities/by-name/component/ACME/x").unwrap(),
        Plan::pass()
    );
    assert!(matches!(
        plan_of(Method::GET, "/locations/by-entity/component/globex/x"),
        Err(BackstageError::EntityNotFound)
    ));
    assert_eq!(
        plan_of(Method::GET, "/entities/by-uid/u1").unwrap().answer,
        AnswerRule::Entity
    );
    assert!(
        plan_of(Method::DELETE, "/entities/by-uid/u1")
            .unwrap()
            .check_first
    );
    assert_eq!(
        plan_of(Method::GET, "/entities/by-name/component/acme/x/ancestry")
            .unwrap()
            .answer,
        AnswerRule::Ancestry
    );
    assert_eq!(
        plan_of(Method::POST, "/refresh").unwrap().body,
        BodyRule::Refresh
    );
    for (method, path) in [
        (Method::GET, "/locations"),
        (Method::POST, "/locations"),
        (Method::GET, "/locations/1"),
        (Method::POST, "/analyze-location"),
        (Method::POST, "/validate-entity"),
        (Method::GET, "/openapi.json"),
        (
            Method::POST,
            "/.backstage/actions/v1/actions/catalog:x/invoke",
        ),
        (Method::HEAD, "/entities/by-uid/u1"),
        (Method::POST, "/entities"),
        (Method::DELETE, "/entities/by-name/component/acme/x"),
        (Method::GET, "/"),
    ] {
        assert!(
            matches!(
                plan_of(method.clone(), path),
                Err(BackstageError::CatalogUnscoped(_))
            ),
            "{method} {path}"
        );
    }
    let allowed = [PathGlob::new("/locations/**")];
    assert_eq!(
        plan(&scope, &allowed, &Method::GET, "/locations", None).unwrap(),
        Plan::pass()
    );
    // A scopable endpoint stays scoped even when a glob matches it.
    let everything = [PathGlob::new("/**")];
    assert!(
        plan(&scope, &everything, &Method::GET, "/entities", None)
            .unwrap()
            .query
            .is_some()
    );
}

#[test]
fn answers_are_checked_and_filtered() {
    let scope = acme();
    let entity = |namespace: Value| {
        json!({ "kind": "Component", "metadata": { "name": "x", "namespace": namespace } })
            .to_string()
    };
    assert!(check_entity(&scope, entity(json!("ACME")).as_bytes()).is_ok());
    assert!(check_entity(&scope, entity(json!("globex")).as_bytes()).is_err());
    assert!(check_entity(&scope, entity(json!(7)).as_bytes()).is_err());
    // No namespace: Backstage's `default`, not in this scope.
    let no_namespace = json!({ "kind": "User", "metadata": { "name": "x" } }).to_string();
    assert!(check_entity(&scope, no_namespace.as_bytes()).is_err());
    assert!(check_entity(&Scope::new(["default"]), no_namespace.as_bytes()).is_ok());
    assert!(matches!(
        check_entity(&scope, b"not json"),
        Err(BackstageError::UnexpectedAnswer(_))
    ));

    let ancestry = json!({
        "rootEntityRef": "component:acme/x",
        "items": [
            { "entity": { "kind": "Component", "metadata": { "name": "x", "namespace": "acme" } },
              "parentEntityRefs": ["location:default/generated-1", "location:common/l"] },
            { "entity": { "kind": "Location", "metadata": { "name": "generated-1", "namespace": "default" } },
              "parentEntityRefs": [] },
            { "entity": { "kind": "Location", "metadata": { "name": "l", "namespace": "common" } },
              "parentEntityRefs": ["location:globex/y"] },
        ],
    });
    let filtered: Value =
        serde_json::from_slice(&filter_ancestry(&scope, ancestry.to_string().as_bytes()).unwrap())
            .unwrap();
    assert_eq!(
        filtered,
        json!({
            "rootEntityRef": "component:acme/x",
            "items": [
                { "entity": { "kind": "Component", "metadata": { "name": "x", "namespace": "acme" } },
                  "parentEntityRefs": ["location:common/l"] },
                { "entity": { "kind": "Location", "metadata": { "name": "l", "namespace": "common" } },
                  "parentEntityRefs": [] },
            ],
        })
    );
}
