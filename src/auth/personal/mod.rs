//! Personal access tokens: bearer tokens portico mints for a signed-in user (tenant `tokens.personal`),
//! for the scripts, CI jobs and agents that act for them (README, "Personal access tokens").
//!
//! A token reads `portico_pat_<id>_<secret>`. The id is public (it names the token in lists, audit
//! lines and the assertion); the secret is shown once, at creation, and stored only as its SHA-256, so
//! the store (this process, or Redis shared by every instance) never holds a usable token. A token
//! carries its user as they were at creation (groups included: the roles they grant are derived from
//! the tenant's current role map on every use, like a session's), its tenant (it is worthless on
//! another), an expiry no later than the tenant allows, and optional narrowing (some apps, read-only
//! methods) that applies on top of the access decision, never instead of it. It dies when revoked (by
//! its user, or an operator on the admin listener) and when the IdP ends the user's sessions by
//! back-channel logout for their subject.
//!
//! This module keeps and checks tokens, and serves their JSON API (`routes`); it never decides what a
//! token's user may reach (`rbac`), and the bearer request itself is `auth::extract`'s.

mod memory;
mod redis;
mod routes;

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use memory::MemoryTokens;
pub use redis::RedisTokens;
pub use routes::router;

use crate::auth::session::User;
use crate::clock::unix_now;
use crate::config::{Tenant, TenantId};
use crate::http::csrf::constant_time_eq;
use crate::http::{Class, Problem};
use crate::shared::StoreError;
use crate::token::{hex, random_bytes, random_token};

/// What every personal token starts with: secret scanners and people recognise it, and `auth::extract`
/// tells it from an IdP's access token by it.
pub const PREFIX: &str = "portico_pat_";

/// Live tokens one user may hold in one tenant: enough for every script, few enough that a runaway
/// loop cannot fill the store.
pub const PER_USER: usize = 50;

/// How stale `last_used_at` may be before a use writes it again: one write a minute per busy token,
/// not one per request.
const TOUCH_EVERY_SECS: u64 = 60;

/// A personal access token as the store keeps it: everything but the secret, which only its hash
/// stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonalToken {
    /// Public: 16 hex digits.
    pub id: String,
    pub tenant: String,
    /// The user as they were at creation.
    pub subject: String,
    pub user_name: String,
    pub email: String,
    pub groups: Vec<String>,
    /// What its user called it ("release script").
    pub name: String,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: u64,
    pub last_used_at: Option<u64>,
    pub scope: TokenScope,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
}

impl PersonalToken {
    /// Who the token speaks for: its user at creation.
    pub fn user(&self) -> User {
        User {
            subject: self.subject.clone(),
            name: self.user_name.clone(),
            email: self.email.clone(),
            groups: self.groups.clone(),
        }
    }

    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }
}

/// How a token is narrowed, on top of what its user may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenScope {
    /// Only these apps (ids); `None`: every app its user may open, and the Backstage API.
    pub apps: Option<Vec<String>>,
    /// With `apps`, whether `/backstage/api/…` is reachable too.
    #[serde(default)]
    pub backstage: bool,
    /// Only methods that change nothing: GET, HEAD, OPTIONS.
    #[serde(default)]
    pub read_only: bool,
}

impl TokenScope {
    /// Whether a request to `app` (an app id; `None` for the Backstage API) with `method` is inside
    /// the narrowing.
    pub fn allows(&self, app: Option<&str>, method: &Method) -> bool {
        let place = match (&self.apps, app) {
            (None, _) => true,
            (Some(apps), Some(app)) => apps.iter().any(|allowed| allowed == app),
            (Some(_), None) => self.backstage,
        };
        let method_ok =
            !self.read_only || matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        place && method_ok
    }
}

/// Why a token could not be made, listed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    /// 404: the tenant lets nobody mint personal tokens (`tokens.personal` is off).
    #[error("this portal does not issue personal access tokens")]
    Disabled,
    /// 400: what was asked for cannot be made (what is wrong is shown).
    #[error("{0}")]
    BadRequest(String),
    /// 409: the user already holds [`PER_USER`] live tokens.
    #[error("you hold {PER_USER} tokens already; revoke one you no longer use")]
    TooMany,
    /// 404: no such token of this user (or none at all: the two look the same).
    #[error("there is no such token")]
    NotFound,
    /// 503: the store did not answer; nothing was made or revoked.
    #[error("personal tokens are unavailable right now: the portal cannot reach its store")]
    Store(#[from] StoreError),
}

impl Problem for PersonalError {
    fn classify(&self) -> Class {
        match self {
            PersonalError::Disabled => Class::new(StatusCode::NOT_FOUND, "tokens_disabled"),
            PersonalError::BadRequest(_) => {
                Class::new(StatusCode::BAD_REQUEST, "bad_token_request")
            }
            PersonalError::TooMany => Class::new(StatusCode::CONFLICT, "too_many_tokens"),
            PersonalError::NotFound => Class::new(StatusCode::NOT_FOUND, "token_not_found"),
            PersonalError::Store(error) => {
                Class::new(StatusCode::SERVICE_UNAVAILABLE, "token_store_unavailable")
                    .detail(error.to_string())
            }
        }
    }
}

/// Where tokens live. Implementations must be safe to share between instances of portico.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores a new token unless its user already holds `limit` live ones in its tenant (then
    /// `false`, nothing written), in one step so concurrent creations cannot both slip under it.
    async fn insert(&self, token: PersonalToken, limit: usize) -> Result<bool, StoreError>;
    /// The token with this id, while the store has it (an expired one may be gone already).
    async fn get(&self, id: &str) -> Result<Option<PersonalToken>, StoreError>;
    /// The live tokens of one user in one tenant, any order.
    async fn list(&self, tenant: &str, subject: &str) -> Result<Vec<PersonalToken>, StoreError>;
    /// Removes the token; returns it if it was there.
    async fn remove(&self, id: &str) -> Result<Option<PersonalToken>, StoreError>;
    /// Removes every token of one user in one tenant; returns how many went.
    async fn remove_for_subject(&self, tenant: &str, subject: &str) -> Result<usize, StoreError>;
    /// Records a use at `now` (a token removed meanwhile stays removed).
    async fn touch(&self, id: &str, now: u64) -> Result<(), StoreError>;
}

/// What a user asks for when minting a token.
#[derive(Debug, Clone, Deserialize)]
pub struct NewToken {
    pub name: String,
    /// Days it lives; at most the tenant's `tokens.personal`, which is also the default.
    pub expires_in_days: Option<u64>,
    #[serde(default)]
    pub scope: TokenScope,
}

/// The personal tokens of every tenant, in the configured store.
#[derive(Clone)]
pub struct PersonalTokens {
    store: Arc<dyn TokenStore>,
}

impl PersonalTokens {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        PersonalTokens { store }
    }

    /// In this process only (no Redis).
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryTokens::default()))
    }

    /// Mints a token for `user` in `tenant`: the token text, shown once, and its record.
    pub async fn mint(
        &self,
        tenant: &Tenant,
        user: &User,
        request: NewToken,
    ) -> Result<(String, PersonalToken), PersonalError> {
        let max = tenant.tokens.personal.ok_or(PersonalError::Disabled)?;
        let name = request.name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(PersonalError::BadRequest(
                "name the token in 1 to 80 characters, e.g. \"release script\"".into(),
            ));
        }
        let max_days = (max.as_secs() / 86_400).max(1);
        let lifetime = match request.expires_in_days {
            None => max.as_secs(),
            Some(0) => {
                return Err(PersonalError::BadRequest(
                    "a token lives at least one day".into(),
                ));
            }
            Some(days) if days > max_days => {
                return Err(PersonalError::BadRequest(format!(
                    "this portal's tokens live at most {max_days} days"
                )));
            }
            Some(days) => days * 86_400,
        };
        let mut scope = request.scope;
        if let Some(apps) = &mut scope.apps {
            apps.sort();
            apps.dedup();
            if let Some(unknown) = apps
                .iter()
                .find(|id| !tenant.apps.iter().any(|app| app.id.as_str() == id.as_str()))
            {
                return Err(PersonalError::BadRequest(format!(
                    "there is no app `{unknown}` in this portal"
                )));
            }
            if apps.is_empty() && !scope.backstage {
                return Err(PersonalError::BadRequest(
                    "a token narrowed to no app and not to the Backstage API could open nothing"
                        .into(),
                ));
            }
        }
        let secret = random_token::<32>();
        let id = hex(&random_bytes::<8>());
        let now = unix_now();
        let token = PersonalToken {
            id: id.clone(),
            tenant: tenant.id.to_string(),
            subject: user.subject.clone(),
            user_name: user.name.clone(),
            email: user.email.clone(),
            groups: user.groups.clone(),
            name: name.to_owned(),
            created_at: now,
            expires_at: now + lifetime,
            last_used_at: None,
            scope,
            secret_hash: secret_hash(&secret),
        };
        if !self.store.insert(token.clone(), PER_USER).await? {
            return Err(PersonalError::TooMany);
        }
        Ok((format!("{PREFIX}{id}_{secret}"), token))
    }

    /// The token `presented` is, if it is a live token of `tenant` whose secret matches; the reason
    /// otherwise (for the audit, never for the caller). A use is recorded at most once a minute.
    pub async fn verify(
        &self,
        tenant: &TenantId,
        presented: &str,
    ) -> Result<PersonalToken, Refused> {
        let (id, secret) = presented
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .filter(|(id, _)| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(Refused::Invalid("not a personal token"))?;
        let token = self
            .store
            .get(id)
            .await
            .map_err(Refused::Store)?
            .ok_or(Refused::Invalid("unknown, revoked or expired"))?;
        let matches =
            constant_time_eq(secret_hash(secret).as_bytes(), token.secret_hash.as_bytes());
        if !matches {
            return Err(Refused::Invalid("wrong secret"));
        }
        if token.tenant != tenant.as_str() {
            return Err(Refused::Invalid("a token of another tenant"));
        }
        let now = unix_now();
        if !token.is_live(now) {
            return Err(Refused::Invalid("expired"));
        }
        if token
            .last_used_at
            .is_none_or(|last| now.saturating_sub(last) >= TOUCH_EVERY_SECS)
        {
            if let Err(error) = self.store.touch(id, now).await {
                tracing::warn!(%error, token = id, "could not record a personal token's use");
            }
        }
        Ok(token)
    }

    /// The live tokens of `user` in `tenant`, newest first.
    pub async fn list(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<Vec<PersonalToken>, PersonalError> {
        let mut tokens = self.store.list(tenant.as_str(), subject).await?;
        tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(tokens)
    }

    /// Revokes token `id` of `subject` in `tenant` (a user revoking their own).
    pub async fn revoke_own(
        &self,
        tenant: &TenantId,
        subject: &str,
        id: &str,
    ) -> Result<PersonalToken, PersonalError> {
        let token = self.store.get(id).await?.ok_or(PersonalError::NotFound)?;
        if token.tenant != tenant.as_str() || token.subject != subject {
            return Err(PersonalError::NotFound);
        }
        self.store.remove(id).await?.ok_or(PersonalError::NotFound)
    }

    /// Revokes token `id` of `tenant` whoever holds it (an operator, on the admin listener); another
    /// tenant's token stays, and looks absent.
    pub async fn revoke(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<PersonalToken>, StoreError> {
        match self.store.get(id).await? {
            Some(token) if token.tenant == tenant.as_str() => self.store.remove(id).await,
            _ => Ok(None),
        }
    }

    /// Revokes every token of `subject` in `tenant` (back-channel logout, an operator); how many went.
    pub async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &str,
    ) -> Result<usize, StoreError> {
        self.store
            .remove_for_subject(tenant.as_str(), subject)
            .await
    }
}

/// Why a presented personal token was refused.
#[derive(Debug)]
pub enum Refused {
    /// Not a token of this tenant that is live and whose secret matches; the reason is for the audit.
    Invalid(&'static str),
    /// The store did not answer.
    Store(StoreError),
}

fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The behaviour every [`TokenStore`] must show, run against each of them.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    pub(crate) fn token(id: &str, tenant: &str, subject: &str, expires_at: u64) -> PersonalToken {
        PersonalToken {
            id: id.to_owned(),
            tenant: tenant.to_owned(),
            subject: subject.to_owned(),
            user_name: subject.to_owned(),
            email: String::new(),
            groups: vec!["eng".into()],
            name: format!("token {id}"),
            created_at: 1,
            expires_at,
            last_used_at: None,
            scope: TokenScope::default(),
            secret_hash: "00".repeat(32),
        }
    }

    pub(crate) async fn check(store: &dyn TokenStore) {
        let far = unix_now() + 3600;
        assert!(
            store
                .insert(token("a1", "acme", "dev", far), 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert(token("a2", "acme", "dev", far), 2)
                .await
                .unwrap()
        );
        // The limit counts live tokens of this user in this tenant only.
        assert!(
            !store
                .insert(token("a3", "acme", "dev", far), 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert(token("g1", "globex", "dev", far), 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .insert(token("o1", "acme", "ops", far), 2)
                .await
                .unwrap()
        );
        assert_eq!(store.get("a3").await.unwrap(), None);
        assert_eq!(store.get("a1").await.unwrap().unwrap().subject, "dev");

        let mut listed: Vec<String> = store
            .list("acme", "dev")
            .await
            .unwrap()
            .into_iter()
            .map(|token| token.id)
            .collect();
        listed.sort();
        assert_eq!(listed, ["a1", "a2"]);

        store.touch("a1", 1234).await.unwrap();
        assert_eq!(
            store.get("a1").await.unwrap().unwrap().last_used_at,
            Some(1234)
        );
        // A use recorded after a revocation does not bring the token back.
        assert_eq!(store.remove("a2").await.unwrap().unwrap().id, "a2");
        store.touch("a2", 1235).await.unwrap();
        assert_eq!(store.get("a2").await.unwrap(), None);
        assert_eq!(store.remove("a2").await.unwrap(), None);

        // Expired tokens neither list nor count towards the limit.
        assert!(
            store
                .insert(token("x1", "acme", "dev", 5), 2)
                .await
                .unwrap()
        );
        assert_eq!(store.list("acme", "dev").await.unwrap().len(), 1);
        assert!(
            store
                .insert(token("a4", "acme", "dev", far), 2)
                .await
                .unwrap()
        );

        // The expired one may be gone already (Redis drops it at its expiry).
        assert_eq!(store.remove_for_subject("acme", "dev").await.unwrap(), 2);
        assert!(store.list("acme", "dev").await.unwrap().is_empty());
        assert_eq!(store.get("a1").await.unwrap(), None);
        assert!(
            store.get("g1").await.unwrap().is_some(),
            "another tenant's stay"
        );
        assert!(
            store.get("o1").await.unwrap().is_some(),
            "another user's stay"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_applies_to_apps_backstage_and_methods() {
        let all = TokenScope::default();
        assert!(all.allows(Some("costs"), &Method::DELETE));
        assert!(all.allows(None, &Method::POST));
        let narrow = TokenScope {
            apps: Some(vec!["costs".into()]),
            backstage: false,
            read_only: true,
        };
        assert!(narrow.allows(Some("costs"), &Method::GET));
        assert!(!narrow.allows(Some("costs"), &Method::POST));
        assert!(!narrow.allows(Some("admin"), &Method::GET));
        assert!(!narrow.allows(None, &Method::GET));
    }

    #[tokio::test]
    async fn the_memory_store_conforms() {
        conformance::check(&MemoryTokens::default()).await;
    }
}
