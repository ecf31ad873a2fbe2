//! What the server's health watch (`doctor::watch`) knows about each app: up, failing (not
//! shown yet) or degraded, per tenant, read by the shell with one lock-free load and by `/metrics`.
//!
//! The rule, in one place ([`AppHealth::next`]): an app is degraded after [`DEGRADED_AFTER`] failed
//! probes in a row (one failure is often a restart or a deploy, and would make the navigation
//! flicker), and up again after one good probe (a user trying it now would get an answer). `since` is
//! the time of the first failure of the run, which is when users started to be affected as far as
//! portico knows. A [`Reason`] is a fixed word and at most a status code, safe to show anyone who
//! can see the app: never the upstream's address or body (the full reason goes to the log only).
//!
//! Pure, apart from the board's swap: no IO, no clock (the caller says when).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::{AppId, TenantId};

/// Failed probes in a row before an app shows as degraded.
pub const DEGRADED_AFTER: u32 = 2;

/// Why a probe failed, as users may be told: a fixed kind and, for an answer, its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason {
    pub kind: ReasonKind,
    /// The status the view answered with (`Status`, `Redirect`).
    pub status: Option<u16>,
}

/// The kinds of failure, each a stable word (`code`) that the shell translates
/// (`health.reason.<code>` in web/shell/i18n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonKind {
    /// The upstream refused the connection (nothing listens).
    Refused,
    /// It could not be connected to otherwise (name, route, connect timeout).
    Unreachable,
    /// TLS with it failed.
    Tls,
    /// No answer within the proxy's response timeout or the probe's timeout.
    Timeout,
    /// It broke the exchange before a whole answer.
    Broken,
    /// It answered with a status that is not 2xx.
    Status,
    /// It answered with a redirect out of the app (or too many redirects).
    Redirect,
}

impl ReasonKind {
    pub fn code(self) -> &'static str {
        match self {
            ReasonKind::Refused => "refused",
            ReasonKind::Unreachable => "unreachable",
            ReasonKind::Tls => "tls",
            ReasonKind::Timeout => "timeout",
            ReasonKind::Broken => "broken",
            ReasonKind::Status => "status",
            ReasonKind::Redirect => "redirect",
        }
    }
}

impl Reason {
    pub fn of(kind: ReasonKind) -> Reason {
        Reason { kind, status: None }
    }

    /// The reason in English words (the shell shows its own translation of `kind`).
    pub fn text(&self) -> String {
        let status = self
            .status
            .map_or_else(|| "an error".to_owned(), |s| s.to_string());
        match self.kind {
            ReasonKind::Refused => "no answer: connection refused".to_owned(),
            ReasonKind::Unreachable => "no answer: cannot connect".to_owned(),
            ReasonKind::Tls => "no answer: the secure connection failed".to_owned(),
            ReasonKind::Timeout => "no answer in time".to_owned(),
            ReasonKind::Broken => "the answer broke off".to_owned(),
            ReasonKind::Status => format!("answers {status}"),
            ReasonKind::Redirect => format!("answers {status}, away from the app"),
        }
    }
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Up,
    Failed(Reason),
}

/// One app's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppHealth {
    Up,
    /// Failed fewer than [`DEGRADED_AFTER`] times in a row: not shown yet.
    Failing {
        since: SystemTime,
        failures: u32,
        reason: Reason,
    },
    Degraded(Degraded),
}

/// A degraded app: since when, why (the latest failure), and how many probes in a row failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degraded {
    pub since: SystemTime,
    /// `since` in RFC 3339 (UTC, seconds), written once for every document that shows it.
    pub since_text: Arc<str>,
    pub reason: Reason,
    pub failures: u32,
}

/// A change worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It now shows as degraded.
    Degraded,
    /// It answers again after being degraded since `since`.
    Recovered { since: SystemTime },
}

impl AppHealth {
    /// The state after `outcome` at `now`, from `previous` (`None`: never probed), and the change to
    /// report, if any.
    pub fn next(
        previous: Option<&AppHealth>,
        outcome: Outcome,
        now: SystemTime,
    ) -> (AppHealth, Option<Change>) {
        match (previous, outcome) {
            (Some(AppHealth::Degraded(degraded)), Outcome::Up) => (
                AppHealth::Up,
                Some(Change::Recovered {
                    since: degraded.since,
                }),
            ),
            (_, Outcome::Up) => (AppHealth::Up, None),
            (Some(AppHealth::Degraded(degraded)), Outcome::Failed(reason)) => (
                AppHealth::Degraded(Degraded {
                    reason,
                    failures: degraded.failures.saturating_add(1),
                    ..degraded.clone()
                }),
                None,
            ),
            (previous, Outcome::Failed(reason)) => {
                let (since, failures) = match previous {
                    Some(AppHealth::Failing {
                        since, failures, ..
                    }) => (*since, failures.saturating_add(1)),
                    _ => (now, 1),
                };
                if failures >= DEGRADED_AFTER {
                    let degraded = Degraded {
                        since,
                        since_text: humantime::format_rfc3339_seconds(since).to_string().into(),
                        reason,
                        failures,
                    };
                    (AppHealth::Degraded(degraded), Some(Change::Degraded))
                } else {
                    (
                        AppHealth::Failing {
                            since,
                            failures,
                            reason,
                        },
                        None,
                    )
                }
            }
        }
    }

    /// What `portico_app_up` says: only a degraded app is down (one failure is not shown yet).
    pub fn is_up(&self) -> bool {
        !matches!(self, AppHealth::Degraded(_))
    }

    pub fn degraded(&self) -> Option<&Degraded> {
        match self {
            AppHealth::Degraded(degraded) => Some(degraded),
            _ => None,
        }
    }
}

/// The probed apps of one tenant.
pub type TenantHealth = HashMap<AppId, AppHealth>;

/// Every watched tenant's apps, swapped whole by the watch (rarely: once per probe round) and read
/// without a lock by every `/shell/config.json`.
#[derive(Debug, Default)]
pub struct HealthBoard {
    tenants: ArcSwap<HashMap<TenantId, Arc<TenantHealth>>>,
}

impl HealthBoard {
    /// The apps of `tenant` the watch has probed; `None` when it watches none (one atomic load, no
    /// lookup, when no tenant is watched).
    pub fn tenant(&self, tenant: &TenantId) -> Option<Arc<TenantHealth>> {
        let tenants = self.tenants.load();
        if tenants.is_empty() {
            return None;
        }
        tenants.get(tenant).cloned()
    }

    /// Puts `apps` in as `tenant`'s (the apps it no longer probes go).
    pub(crate) fn set(&self, tenant: &TenantId, apps: TenantHealth) {
        let apps = Arc::new(apps);
        self.tenants.rcu(|tenants| {
            let mut next = HashMap::clone(tenants);
            next.insert(tenant.clone(), apps.clone());
            next
        });
    }

    /// Forgets `tenant` (its watch stopped: no longer configured, or removed).
    pub(crate) fn forget(&self, tenant: &TenantId) {
        self.tenants.rcu(|tenants| {
            let mut next = HashMap::clone(tenants);
            next.remove(tenant);
            next
        });
    }

    /// Every probed app and whether it is up, for `portico_app_up`.
    pub fn app_up(&self) -> Vec<(TenantId, AppId, bool)> {
        let tenants = self.tenants.load();
        let mut out = Vec::new();
        for (tenant, apps) in tenants.iter() {
            for (app, health) in apps.iter() {
                out.push((tenant.clone(), app.clone(), health.is_up()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
    }

    const REFUSED: Reason = Reason {
        kind: ReasonKind::Refused,
        status: None,
    };

    #[test]
    fn degraded_after_two_failures_in_a_row_and_up_after_one_success() {
        let failed = Outcome::Failed(REFUSED);
        // Never probed, then up: no change to report.
        let (up, change) = AppHealth::next(None, Outcome::Up, at(0));
        assert_eq!((&up, change), (&AppHealth::Up, None));
        // One failure is not shown yet; it starts the run.
        let (first, change) = AppHealth::next(Some(&up), failed, at(30));
        assert_eq!(change, None);
        assert!(first.is_up());
        assert!(first.degraded().is_none());
        // The second is: degraded since the first failure.
        let (second, change) = AppHealth::next(Some(&first), failed, at(60));
        assert_eq!(change, Some(Change::Degraded));
        let degraded = second.degraded().expect("degraded after two failures");
        assert_eq!(degraded.since, at(30));
        assert_eq!(&*degraded.since_text, "2023-11-14T22:13:50Z");
        assert_eq!(degraded.failures, 2);
        assert!(!second.is_up());
        // More failures: still degraded, same since, the latest reason, nothing new to report.
        let timeout = Reason::of(ReasonKind::Timeout);
        let (third, change) = AppHealth::next(Some(&second), Outcome::Failed(timeout), at(90));
        assert_eq!(change, None);
        let still = third.degraded().expect("still degraded");
        assert_eq!(
            (still.since, still.failures, still.reason),
            (at(30), 3, timeout)
        );
        // One success: up again, and the recovery names when it had started.
        let (recovered, change) = AppHealth::next(Some(&third), Outcome::Up, at(120));
        assert_eq!(recovered, AppHealth::Up);
        assert_eq!(change, Some(Change::Recovered { since: at(30) }));
    }

    #[test]
    fn a_success_between_failures_starts_the_count_again() {
        let failed = Outcome::Failed(REFUSED);
        let (first, _) = AppHealth::next(None, failed, at(0));
        let (up, change) = AppHealth::next(Some(&first), Outcome::Up, at(30));
        // It was never shown as degraded: nothing to report.
        assert_eq!((&up, change), (&AppHealth::Up, None));
        let (again, change) = AppHealth::next(Some(&up), failed, at(60));
        assert_eq!(change, None);
        assert!(again.is_up());
        let (degraded, change) = AppHealth::next(Some(&again), failed, at(90));
        assert_eq!(change, Some(Change::Degraded));
        assert_eq!(degraded.degraded().map(|d| d.since), Some(at(60)));
    }

    #[test]
    fn reasons_are_fixed_words_and_a_status() {
        let status = Reason {
            kind: ReasonKind::Status,
            status: Some(502),
        };
        assert_eq!(status.text(), "answers 502");
        assert_eq!(status.kind.code(), "status");
        assert_eq!(REFUSED.text(), "no answer: connection refused");
    }

    #[test]
    fn the_board_keeps_tenants_apart_and_forgets_them() {
        let board = HealthBoard::default();
        let acme = TenantId::new("acme");
        let globex = TenantId::new("globex");
        assert!(board.tenant(&acme).is_none());
        let degraded = AppHealth::Degraded(Degraded {
            since: at(0),
            since_text: "x".into(),
            reason: REFUSED,
            failures: 2,
        });
        board.set(&acme, HashMap::from([(AppId::new("ledger"), degraded)]));
        board.set(
            &globex,
            HashMap::from([(AppId::new("ledger"), AppHealth::Up)]),
        );
        let acme_apps = board.tenant(&acme).expect("acme is watched");
        assert!(!acme_apps[&AppId::new("ledger")].is_up());
        assert!(board.tenant(&globex).expect("globex is watched")[&AppId::new("ledger")].is_up());
        let mut up = board.app_up();
        up.sort();
        assert_eq!(up.len(), 2);
        board.forget(&acme);
        assert!(board.tenant(&acme).is_none());
        assert_eq!(board.app_up().len(), 1);
    }
}
