//! What tenants must not share, checked across tenants: a host belongs to one tenant (and two tenants
//! on one host name share cookies, which is warned about), and a Backstage namespace on one backend
//! belongs to one tenant unless every tenant listing it marks it shared. Tenants record their claims
//! as they are read; namespace conflicts are reported once all tenants are in.

use super::values::host_name;
use crate::config::Severity;
use crate::config::diagnose::{Cx, join};
use crate::config::yaml::Mark;

/// Everything claimed so far.
#[derive(Default)]
pub(super) struct Claims {
    /// `(tenant, host, where)` for every host listed so far.
    hosts: Vec<(String, String, Mark)>,
    namespaces: Vec<NamespaceClaim>,
    /// Backstage mounts that list no namespaces.
    unscoped: Vec<Unscoped>,
}

/// One Backstage namespace listed by one tenant.
pub(super) struct NamespaceClaim {
    pub tenant: String,
    /// The Backstage backend URL, normalised: the same name on two Backstage instances is no conflict.
    pub backend: String,
    pub namespace: String,
    pub shared: bool,
    pub mark: Mark,
    pub path: String,
}

/// A tenant's Backstage mount that reads every namespace.
pub(super) struct Unscoped {
    pub tenant: String,
    pub backend: String,
    pub mark: Mark,
    pub path: String,
}

impl Claims {
    /// Records that `tenant` lists `host` at `key` (below the current key), reporting a host listed
    /// twice where it is listed the second time.
    pub(super) fn host(
        &mut self,
        cx: &mut Cx<'_>,
        tenant: &str,
        host: &str,
        mark: Mark,
        key: &str,
    ) {
        if let Some((owner, _, first)) = self.hosts.iter().find(|(_, claimed, _)| claimed == host) {
            let message = if owner == tenant {
                format!(
                    "host `{host}` is listed twice (first at line {})",
                    first.line
                )
            } else {
                format!(
                    "host `{host}` is also listed by tenant `{owner}` (line {})",
                    first.line
                )
            };
            cx.error_at(
                mark,
                key,
                message,
                Some("each host belongs to exactly one tenant".into()),
            );
            return;
        }
        // Cookies are scoped to a host name, not to a port: two tenants on one name share every
        // cookie (each sign-in replaces the other's session cookie, app cookies cross over).
        let name = host_name(host);
        let sibling = self
            .hosts
            .iter()
            .find(|(owner, claimed, _)| owner != tenant && host_name(claimed) == name);
        if let Some((owner, claimed, first)) = sibling {
            let path = join(cx.path(), key);
            cx.report_path(
                Severity::Warning,
                mark,
                &path,
                format!(
                    "host `{host}` differs from `{claimed}` of tenant `{owner}` (line {}) only by port, so the two tenants share cookies",
                    first.line
                ),
                Some("browsers send a host's cookies to every port of it: give each tenant its own host name, e.g. `acme.portal.example` and `globex.portal.example`".into()),
            );
        }
        self.hosts.push((tenant.to_owned(), host.to_owned(), mark));
    }

    pub(super) fn namespace(&mut self, claim: NamespaceClaim) {
        self.namespaces.push(claim);
    }

    pub(super) fn unscoped(&mut self, unscoped: Unscoped) {
        self.unscoped.push(unscoped);
    }

    /// A Backstage namespace listed by two tenants of the same Backstage backend: both would read it.
    /// Allowed only when every tenant that lists it marks it shared (`shared_namespaces`). And a tenant
    /// without namespaces next to scoped tenants of the same Backstage is almost certainly an oversight.
    pub(super) fn check(self, cx: &mut Cx<'_>) {
        let claims = &self.namespaces;
        for (index, claim) in claims.iter().enumerate() {
            let earlier = claims[..index].iter().find(|other| {
                other.backend == claim.backend
                    && other.namespace == claim.namespace
                    && other.tenant != claim.tenant
            });
            let Some(other) = earlier else { continue };
            if claim.shared && other.shared {
                continue;
            }
            cx.report_path(
                Severity::Error,
                claim.mark,
                &claim.path,
                format!(
                    "Backstage namespace `{}` is also claimed by tenant `{}` (line {}) on the same backend",
                    claim.namespace, other.tenant, other.mark.line
                ),
                Some("each tenant owns its namespaces; a namespace several tenants may read goes in `shared_namespaces` of every one of them".into()),
            );
        }
        for unscoped in &self.unscoped {
            if claims.iter().any(|claim| claim.backend == unscoped.backend) {
                cx.report_path(
                Severity::Warning,
                    unscoped.mark,
                    &unscoped.path,
                    format!("tenant `{}` lists no namespaces, so it reads every namespace of a Backstage that other tenants scope", unscoped.tenant),
                    Some("list its catalog namespaces in `namespaces`".into()),
                );
            }
        }
    }
}
