//! Logins in flight: what portico remembers between sending a browser to the IdP and its callback, and
//! the bounds on how many there may be.
//!
//! Bounded per tenant and per client so that a flood of `/auth/login` from one place neither exhausts
//! memory nor evicts other people's sign-ins. A state is single-use: taking a login removes it.
//! [`PendingStore`] is what the sign-in code holds: this process's memory ([`PendingLogins`], plain
//! bookkeeping, no I/O) or Redis ([`super::pending_redis`], shared by every instance, so a callback may
//! land on another instance than the one that started the sign-in). Both keep the same rules; the
//! caller does not know which one it has.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::AuthError;
use super::pending_redis::RedisPending;
use crate::config::TenantId;
use crate::shared::StoreError;

/// A login that went to the IdP and has not come back yet.
pub(super) struct PendingLogin {
    pub(super) tenant: TenantId,
    /// Who started it, for the per-client bound.
    pub(super) client: ClientKey,
    pub(super) pkce_verifier: String,
    pub(super) nonce: String,
    pub(super) return_to: String,
    /// Also in a cookie of the browser that started the login: a callback from another browser fails.
    pub(super) browser_binding: String,
    /// Wall-clock time, so that another instance can tell the age of a login it did not start.
    pub(super) started: SystemTime,
}

impl PendingLogin {
    /// How long ago the login started (zero if the clock went back).
    pub(super) fn age(&self) -> Duration {
        self.started.elapsed().unwrap_or_default()
    }
}

/// How long a user may take at the IdP's login page.
pub(super) const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Who started a login, for the per-client bound: the peer's IPv4 address, or its IPv6 /64 (one
/// subscriber's whole prefix, which a single attacker can draw addresses from at will).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The address (or /64 prefix) that stands for the client.
    pub(super) fn address(self) -> IpAddr {
        self.0
    }

    pub fn of(address: IpAddr) -> ClientKey {
        match address {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => ClientKey(IpAddr::V6(std::net::Ipv6Addr::from(
                    u128::from(v6) & !((1u128 << 64) - 1),
                ))),
            },
        }
    }
}

/// How many logins may be in flight at once (from `sessions:` in the config).
#[derive(Clone, Copy, Debug)]
pub struct PendingLimits {
    pub per_client: usize,
    pub per_tenant: usize,
}

/// Where logins in flight are kept: one of the two stores, chosen at start by `sessions.store`.
pub(super) enum PendingStore {
    Memory(Mutex<PendingLogins>),
    Redis(RedisPending),
}

impl PendingStore {
    /// Remembers a login under its `state`, within the bounds: [`AuthError::TooManySignIns`] past them,
    /// [`AuthError::SignInStoreUnavailable`] when the shared store does not answer.
    pub(super) async fn insert(
        &self,
        state: &str,
        login: PendingLogin,
        limits: PendingLimits,
    ) -> Result<(), AuthError> {
        match self {
            PendingStore::Memory(logins) => logins.lock().insert(state.to_owned(), login, limits),
            PendingStore::Redis(redis) => redis.insert(state, login, limits).await,
        }
    }

    /// Takes the login out for good (on every instance), so a state can be used only once.
    pub(super) async fn take(&self, state: &str) -> Result<Option<PendingLogin>, StoreError> {
        match self {
            PendingStore::Memory(logins) => Ok(logins.lock().take(state)),
            PendingStore::Redis(redis) => redis.take(state).await,
        }
    }
}

/// Logins in flight, bounded per tenant and per client so that a flood of `/auth/login` from one place
/// neither exhausts memory nor evicts other people's sign-ins: a client at its share gets 429, and a
/// full tenant makes the client holding the most give up its oldest login, never someone with fewer.
#[derive(Default)]
pub(super) struct PendingLogins {
    by_state: HashMap<String, PendingLogin>,
    /// Per tenant: each client's states, oldest first, and how many the tenant holds.
    tenants: HashMap<TenantId, TenantLogins>,
}

#[derive(Default)]
struct TenantLogins {
    clients: HashMap<ClientKey, VecDeque<(SystemTime, String)>>,
    total: usize,
}

impl PendingLogins {
    pub(super) fn insert(
        &mut self,
        state: String,
        login: PendingLogin,
        limits: PendingLimits,
    ) -> Result<(), AuthError> {
        let tenant = self.tenants.entry(login.tenant.clone()).or_default();
        let queue = tenant.clients.entry(login.client).or_default();
        expire(queue, &mut tenant.total, &mut self.by_state);
        if queue.len() >= limits.per_client {
            // Retry when this client's oldest login times out (at most the login timeout).
            let retry_after = queue.front().map_or(LOGIN_TIMEOUT, |(started, _)| {
                LOGIN_TIMEOUT.saturating_sub(started.elapsed().unwrap_or_default())
            });
            return Err(AuthError::TooManySignIns {
                retry_after: retry_after.as_secs().max(1),
            });
        }
        let own = queue.len();
        if tenant.total >= limits.per_tenant {
            for queue in tenant.clients.values_mut() {
                expire(queue, &mut tenant.total, &mut self.by_state);
            }
            tenant
                .clients
                .retain(|client, queue| !queue.is_empty() || *client == login.client);
        }
        if tenant.total >= limits.per_tenant {
            // Fair share: the client with the most logins in flight gives up its oldest, but only if
            // it holds more than this one; otherwise this client is the one over its share.
            let largest = tenant
                .clients
                .iter_mut()
                .max_by_key(|(_, queue)| queue.len())
                .filter(|(_, queue)| queue.len() > own);
            let Some((_, queue)) = largest else {
                return Err(AuthError::TooManySignIns {
                    retry_after: LOGIN_TIMEOUT.as_secs(),
                });
            };
            if let Some((_, oldest)) = queue.pop_front() {
                self.by_state.remove(&oldest);
                tenant.total -= 1;
            }
        }
        tenant
            .clients
            .entry(login.client)
            .or_default()
            .push_back((login.started, state.clone()));
        tenant.total += 1;
        self.by_state.insert(state, login);
        Ok(())
    }

    /// Takes the login out for good, so a state can be used only once.
    pub(super) fn take(&mut self, state: &str) -> Option<PendingLogin> {
        let login = self.by_state.remove(state)?;
        if let Some(tenant) = self.tenants.get_mut(&login.tenant) {
            if let Some(queue) = tenant.clients.get_mut(&login.client) {
                if let Some(position) = queue.iter().position(|(_, s)| s == state) {
                    queue.remove(position);
                    tenant.total -= 1;
                }
                if queue.is_empty() {
                    tenant.clients.remove(&login.client);
                }
            }
        }
        Some(login)
    }
}

/// Drops a client's timed-out logins (its queue is oldest first).
fn expire(
    queue: &mut VecDeque<(SystemTime, String)>,
    total: &mut usize,
    by_state: &mut HashMap<String, PendingLogin>,
) {
    while let Some((started, state)) = queue.front() {
        if started.elapsed().unwrap_or_default() < LOGIN_TIMEOUT {
            break;
        }
        by_state.remove(state);
        queue.pop_front();
        *total -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(tenant: &str, client: &str) -> PendingLogin {
        PendingLogin {
            tenant: TenantId::new(tenant),
            client: ClientKey::of(client.parse().unwrap()),
            pkce_verifier: String::new(),
            nonce: String::new(),
            return_to: "/".into(),
            browser_binding: String::new(),
            started: SystemTime::now(),
        }
    }

    #[test]
    fn a_flood_from_one_client_neither_evicts_others_nor_grows() {
        let limits = PendingLimits {
            per_client: 3,
            per_tenant: 5,
        };
        let mut pending = PendingLogins::default();
        pending
            .insert("victim".into(), login("acme", "10.0.0.9"), limits)
            .unwrap();
        for n in 0..3 {
            pending
                .insert(format!("flood-{n}"), login("acme", "10.0.0.1"), limits)
                .unwrap();
        }
        let refused = pending.insert("flood-3".into(), login("acme", "10.0.0.1"), limits);
        assert!(
            matches!(refused, Err(AuthError::TooManySignIns { retry_after }) if retry_after > 0)
        );
        // Another tenant counts apart.
        pending
            .insert("other".into(), login("globex", "10.0.0.1"), limits)
            .unwrap();
        // The tenant fills up: a new client takes the place of the flooder's oldest, not the victim's.
        pending
            .insert("late".into(), login("acme", "10.0.0.7"), limits)
            .unwrap();
        pending
            .insert("later".into(), login("acme", "10.0.0.8"), limits)
            .unwrap();
        assert!(
            pending.take("flood-0").is_none(),
            "the biggest holder gave way"
        );
        assert!(pending.take("victim").is_some());
        assert!(pending.take("victim").is_none(), "a state is single-use");
        assert_eq!(pending.tenants["acme"].total, 4);
        assert_eq!(pending.by_state.len(), 5);
    }

    #[test]
    fn a_full_tenant_refuses_the_client_that_already_holds_the_most() {
        let limits = PendingLimits {
            per_client: 10,
            per_tenant: 2,
        };
        let mut pending = PendingLogins::default();
        pending
            .insert("a".into(), login("acme", "10.0.0.1"), limits)
            .unwrap();
        pending
            .insert("b".into(), login("acme", "10.0.0.2"), limits)
            .unwrap();
        assert!(
            pending
                .insert("c".into(), login("acme", "10.0.0.1"), limits)
                .is_err()
        );
        assert!(pending.take("a").is_some() && pending.take("b").is_some());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let key = |text: &str| ClientKey::of(text.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(key("10.0.0.1"), key("10.0.0.2"));
    }
}
