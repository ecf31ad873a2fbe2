//! Sign-in, sessions and sign-out on a tenant origin: the `/auth/*` endpoints and the `SignedIn`
//! extractor every protected handler uses.
//!
//! The browser only ever holds an opaque, HttpOnly, SameSite session cookie (BRIEF invariant 3); who the
//! user is lives in the server-side store. A session is bound to the tenant that created it and is
//! refused, and audited, on any other tenant's host (invariant 5). This module decides who the user is,
//! never what they may reach: that is `rbac`.
//!
//! This file is the façade only: the module list and what the rest of the server may name. Services
//! (`session::Sessions`, `oidc::OidcRegistry`) never see the app state; handlers (`routes`, `dev`) and
//! the extractor (`extract`) sit on top of them.

mod bearer_records;
pub mod cookies;
pub mod dev;
mod error;
mod extract;
pub mod oidc;
pub mod personal;
mod principal;
mod rate_limit;
mod return_path;
mod routes;
pub mod session;

pub use bearer_records::BearerRecords;
pub use cookies::{PORTAL_COOKIES, session_cookie};
pub use error::AuthError;
pub use extract::SignedIn;
pub use return_path::safe_return_path;
pub(crate) use routes::form_fields;
pub use routes::router;
