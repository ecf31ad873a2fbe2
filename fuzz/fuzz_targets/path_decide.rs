//! Path normalisation plus the access decision, as the proxy runs them on `/apps/<id>/<rest>`.
//!
//! Properties: a normalised path starts with `/`, has no `//` and no `.`/`..` segment (raw or decoded),
//! no `;` parameter, normalising it again changes nothing, and a user without `admin` is never allowed
//! below `/admin` nor to DELETE below `/api` in any letter case or with any suffix (`/ADMIN`,
//! `/admin.json`), as the canonical form promises (ARCHITECTURE.md, "Canonical paths"). Kept small on purpose: it calls only
//! `normalise` and `rbac::decide`, whose inputs and outputs are the contract.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use portico::fuzzing::normalise;
use portico::rbac::{
    AccessPolicy, AccessRule, PathCase, PathGlob, RequestRule, RoleName, Roles, decide,
};

fn rule(roles: &[&str]) -> AccessRule {
    AccessRule {
        roles: roles.iter().map(|r| RoleName((*r).to_owned())).collect(),
    }
}

/// `path` is at or below `/<first>` as a framework would route it: any letter case, and a suffix on the
/// first segment (`/admin.json`) counts as `/admin`.
fn below(path: &str, first: &str) -> bool {
    let segment = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let stem = segment.split('.').next().unwrap_or("");
    stem.to_lowercase() == first
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(path) = normalise(raw) else {
        return;
    };
    for form in [&path.raw, &path.decoded] {
        assert!(form.starts_with('/'), "{path:?}");
        assert!(!form.contains("//"), "{path:?}");
        assert!(!form.split('/').any(|s| s == "." || s == ".."), "{path:?}");
        assert!(!path.raw.contains(';'), "{path:?}");
    }
    let again = normalise(&path.raw).expect("a normalised path normalises");
    assert_eq!(again, path, "normalise is idempotent");

    let policy = AccessPolicy {
        app: rule(&["dev", "admin"]),
        paths: vec![("/admin".to_owned(), rule(&["admin"]))],
        case: PathCase::Insensitive,
        requests: vec![RequestRule {
            methods: vec![http::Method::DELETE],
            path: PathGlob::new("/api/**"),
            rule: rule(&["admin"]),
        }],
    };
    let mut held = BTreeSet::new();
    if flags & 1 != 0 {
        held.insert(RoleName("dev".to_owned()));
    }
    if flags & 2 != 0 {
        held.insert(RoleName("admin".to_owned()));
    }
    let admin = flags & 2 != 0;
    let roles = Roles(held);
    let name = ["GET", "DELETE", "delete", "POST"][usize::from(flags >> 2) % 4];
    // `delete` is an extension method to `http`, but Express routes it as DELETE: rules compare
    // methods ignoring case.
    let Ok(method) = http::Method::from_bytes(name.as_bytes()) else {
        return;
    };
    let decision = decide(&roles, &policy, &method, &path.decoded);
    if roles.0.is_empty() {
        assert!(!decision.is_allowed(), "default deny");
    }
    if !admin && decision.is_allowed() {
        assert!(!below(&path.decoded, "admin"), "{path:?}");
        if name.eq_ignore_ascii_case("DELETE") {
            assert!(!below(&path.decoded, "api"), "{path:?}");
        }
    }
});
