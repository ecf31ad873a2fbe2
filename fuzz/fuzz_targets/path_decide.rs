//! Path normalisation plus the access decision, as the proxy runs them on `/apps/<id>/<rest>`.
//!
//! Properties: a normalised path starts with `/`, has no `//` and no `.`/`..` segment (raw or decoded),
//! normalising it again changes nothing, and a user without `admin` is never allowed below `/admin`
//! (node rule) nor to DELETE below `/admin` (request rule). Kept small on purpose: it calls only
//! `normalise` and `rbac::decide`, whose inputs and outputs are the contract.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use portico::fuzzing::normalise;
use portico::rbac::{AccessPolicy, AccessRule, PathGlob, RequestRule, RoleName, Roles, decide};

fn rule(roles: &[&str]) -> AccessRule {
    AccessRule {
        roles: roles.iter().map(|r| RoleName((*r).to_owned())).collect(),
    }
}

fn below(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}/"))
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
    }
    let again = normalise(&path.raw).expect("a normalised path normalises");
    assert_eq!(again, path, "normalise is idempotent");

    let policy = AccessPolicy {
        app: rule(&["dev", "admin"]),
        paths: vec![("/admin".to_owned(), rule(&["admin"]))],
        requests: vec![RequestRule {
            methods: vec!["DELETE".to_owned()],
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
    let method = ["GET", "DELETE", "delete", "POST"][usize::from(flags >> 2) % 4];
    let decision = decide(&roles, &policy, method, &path.decoded);
    if roles.0.is_empty() {
        assert!(!decision.is_allowed(), "default deny");
    }
    if !admin && decision.is_allowed() {
        // Exact spelling for now; once the canonical-path work (issue 9) lands, compare ignoring ASCII
        // case and `;` parameters too.
        assert!(!below(&path.decoded, "/admin"), "{path:?}");
        if method.eq_ignore_ascii_case("DELETE") {
            assert!(!below(&path.decoded, "/api"), "{path:?}");
        }
    }
});
