//! Backstage user tokens per portal session, reused until shortly before they expire.
//!
//! A service: it outlives requests and config reloads, and knows nothing of the server state.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::unix_now;

/// Renew a cached Backstage token this long before Backstage says it expires.
const TOKEN_MARGIN_SECS: u64 = 120;

/// Backstage user tokens per portal session, until shortly before they expire.
#[derive(Default)]
pub struct BackstageTokens {
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl BackstageTokens {
    pub(super) fn get(&self, session: &str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let (token, renew_at) = tokens.get(session)?;
        (*renew_at > unix_now()).then(|| token.clone())
    }

    pub(super) fn put(&self, session: &str, token: String, expires_in: u64) {
        if let Ok(mut tokens) = self.tokens.lock() {
            let now = unix_now();
            if tokens.len() > 20_000 {
                tokens.retain(|_, (_, renew_at)| *renew_at > now);
            }
            let renew_at = now + expires_in.saturating_sub(TOKEN_MARGIN_SECS.min(expires_in / 2));
            tokens.insert(session.to_owned(), (token, renew_at));
        }
    }

    pub(super) fn forget(&self, session: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(session);
        }
    }
}
