//! Typed ids: [`TenantId`] and [`AppId`]. They make "a session belongs to one tenant" a comparison of two
//! tenant ids, and keep an app id from being passed where a tenant id is expected.
//!
//! Both are `Arc<str>`: a request clones them (sessions, pending sign-ins, logs) for the price of a
//! reference count. They are made only where an id is established: config compilation, which has
//! validated the text, and tests. Nothing here parses or validates; that stays in `compile`.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an id that config compilation has accepted (or a test's literal).
            pub(crate) fn new(id: &str) -> Self {
                $name(Arc::from(id))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Prints like the `String` it replaces, so log lines and `{:?}` output do not change.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        /// Serialises as the plain string, so JSON answers and the Luigi config keep their shape.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant's id as the config names it (`tenants[].id`).
    TenantId
);

id_type!(
    /// An app's id as the config names it (`apps[].id`), unique within its tenant.
    AppId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_serialise_and_compare_as_their_text() {
        let id = TenantId::new("acme");
        assert_eq!(id.to_string(), "acme");
        assert_eq!(format!("{id:?}"), "\"acme\"");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"acme\""));
        assert_eq!(id, "acme");
        assert_eq!(id.clone(), id);
        assert_eq!(AppId::new("wiki").as_str(), "wiki");
    }
}
