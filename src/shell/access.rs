//! "My access": `GET /shell/access.json`, what the signed-in user's roles are, which of their groups
//! grant each, and what each role alone opens (apps and their pages), for `web/shell/access.js`.
//!
//! It tells the user about their own access only: the roles they hold and what those open, asked of
//! `rbac::decide` like the navigation. Nothing here names an app or a role the user does not have.

use std::collections::BTreeSet;

use serde::Serialize;

use super::luigi::{HOME_SEGMENT, reachable_pages, visible_apps};
use crate::auth::SignedIn;
use crate::config::{App, Tenant};
use crate::i18n::Locale;
use crate::rbac::Roles;

/// The document `/shell/access.json` returns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Access<'a> {
    pub user: AccessUser<'a>,
    pub tenant: AccessTenant<'a>,
    pub roles: Vec<RoleAccess<'a>>,
    /// The user's groups that grant no role on this tenant.
    pub unmapped_groups: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct AccessUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
}

#[derive(Debug, Serialize)]
pub(crate) struct AccessTenant<'a> {
    pub id: &'a str,
    pub title: &'a str,
}

/// One role the user holds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoleAccess<'a> {
    pub role: &'a str,
    pub description: Option<&'a str>,
    /// The user's groups that grant it.
    pub granted_by: Vec<&'a str>,
    /// What this role alone opens.
    pub opens: Vec<Opened<'a>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Opened<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub path: String,
    pub pages: Vec<Page<'a>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Page<'a> {
    pub label: &'a str,
    pub path: String,
}

/// `signed_in`'s access on `tenant`.
pub(crate) fn of<'a>(tenant: &'a Tenant, signed_in: &'a SignedIn, locale: Locale) -> Access<'a> {
    let user = &signed_in.session.user;
    let roles = tenant
        .roles
        .roles
        .iter()
        .filter(|(role, _)| signed_in.roles().0.contains(role))
        .map(|(role, groups)| {
            let alone = Roles(BTreeSet::from([role.clone()]));
            RoleAccess {
                role: role.0.as_str(),
                description: tenant
                    .roles
                    .descriptions
                    .get(role)
                    .map(|description| description.get(locale)),
                granted_by: groups
                    .iter()
                    .filter(|group| user.groups.contains(group))
                    .map(String::as_str)
                    .collect(),
                opens: visible_apps(tenant, &alone)
                    .into_iter()
                    .map(|app| opened(app, &alone, locale))
                    .collect(),
            }
        })
        .collect();
    let unmapped_groups = user
        .groups
        .iter()
        .filter(|group| {
            !tenant
                .roles
                .roles
                .iter()
                .any(|(_, granting)| granting.contains(group))
        })
        .map(String::as_str)
        .collect();
    Access {
        user: AccessUser {
            name: &user.name,
            email: &user.email,
            groups: &user.groups,
        },
        tenant: AccessTenant {
            id: tenant.id.as_str(),
            title: &tenant.branding.title,
        },
        roles,
        unmapped_groups,
    }
}

fn opened<'a>(app: &'a App, roles: &Roles, locale: Locale) -> Opened<'a> {
    let path = format!("/{HOME_SEGMENT}/{}", app.id);
    let pages = reachable_pages(app, roles)
        .into_iter()
        .map(|(node, below)| Page {
            label: node.label.get(locale),
            path: format!("{path}/{below}"),
        })
        .collect();
    Opened {
        id: app.id.as_str(),
        label: app.label.get(locale),
        path,
        pages,
    }
}
