//! Personal tokens in this process (`sessions.store: memory`): gone at restart, like its sessions.

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{PersonalToken, TokenStore};
use crate::clock::unix_now;
use crate::shared::StoreError;

/// Every token by id. Lists scan them all: a store in memory serves one instance's users, and a list
/// is asked for only when someone opens their tokens page.
#[derive(Default)]
pub struct MemoryTokens {
    tokens: Mutex<HashMap<String, PersonalToken>>,
}

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn insert(&self, token: PersonalToken, limit: usize) -> Result<bool, StoreError> {
        let mut tokens = self.tokens.lock();
        let now = unix_now();
        tokens.retain(|_, held| held.is_live(now));
        let held = tokens
            .values()
            .filter(|held| held.tenant == token.tenant && held.subject == token.subject)
            .count();
        if held >= limit {
            return Ok(false);
        }
        tokens.insert(token.id.clone(), token);
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<PersonalToken>, StoreError> {
        Ok(self.tokens.lock().get(id).cloned())
    }

    async fn list(&self, tenant: &str, subject: &str) -> Result<Vec<PersonalToken>, StoreError> {
        let now = unix_now();
        Ok(self
            .tokens
            .lock()
            .values()
            .filter(|held| held.tenant == tenant && held.subject == subject && held.is_live(now))
            .cloned()
            .collect())
    }

    async fn remove(&self, id: &str) -> Result<Option<PersonalToken>, StoreError> {
        Ok(self.tokens.lock().remove(id))
    }

    async fn remove_for_subject(&self, tenant: &str, subject: &str) -> Result<usize, StoreError> {
        let mut tokens = self.tokens.lock();
        let before = tokens.len();
        tokens.retain(|_, held| !(held.tenant == tenant && held.subject == subject));
        Ok(before - tokens.len())
    }

    async fn touch(&self, id: &str, now: u64) -> Result<(), StoreError> {
        if let Some(held) = self.tokens.lock().get_mut(id) {
            held.last_used_at = Some(now);
        }
        Ok(())
    }
}
