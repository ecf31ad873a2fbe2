//! What a session costs in the memory store, measured in this process (bench/memory.sh runs it beside
//! its sign-in measurement): the RSS before and after `count` sessions stored through the store's own
//! API (`Sessions::insert`: the same record and map entry a sign-in stores, without the HTTP around
//! it), for a dev sign-in's session (no tokens) and for an OIDC session with tokens of typical sizes.
//!
//! `session_cost [count]` (default 100,000) prints `kind=… sessions=N rss_kib_before=… rss_kib_after=…
//! bytes_per_session=… token_bytes=…` lines, one per kind; `token_bytes` is what the tokens' text
//! alone takes, so `bytes_per_session - token_bytes` is the session's own cost.

use portico::auth::session::{OidcTokens, Session, Sessions, User};

type Error = Box<dyn std::error::Error>;

/// portico's allocator (src/main.rs), so the sizes are what portico pays.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Error> {
    let count: usize = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => 100_000,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let loaded = portico::config::load_embedded().map_err(|_| "the embedded config")?;
        let tenant = loaded
            .config
            .tenants
            .first()
            .ok_or("a tenant")?
            .id
            .clone();
        for oidc in [false, true] {
            let sessions = Sessions::in_memory();
            // The first one builds what every later one reuses (the map's first table, lazy statics).
            sessions.insert(session(&tenant, 0, oidc)).await?;
            let before = rss_kib()?;
            for index in 1..=count {
                sessions.insert(session(&tenant, index, oidc)).await?;
            }
            let after = rss_kib()?;
            let per_session = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
            let token_bytes = if oidc { token_bytes() } else { 0 };
            println!(
                "kind={} sessions={count} rss_kib_before={before} rss_kib_after={after} bytes_per_session={per_session:.0} token_bytes={token_bytes}",
                if oidc { "oidc" } else { "dev" }
            );
            drop(sessions);
        }
        Ok(())
    })
}

/// The user of bench/memory.sh's sign-ins: a name, an email and two groups.
fn session(tenant: &portico::config::TenantId, index: usize, oidc: bool) -> Session {
    let session = Session::new(
        tenant,
        User {
            subject: if oidc {
                // An IdP's subject: often a UUID.
                format!("3f2c1a9e-8b7d-4c6e-9a1f-{index:012}")
            } else {
                "bench".to_owned()
            },
            name: "Bench User".to_owned(),
            email: "bench.user@example.com".to_owned(),
            groups: vec!["eng".to_owned(), "platform-team".to_owned()],
        },
    );
    if !oidc {
        return session;
    }
    session.with_oidc(OidcTokens {
        access_token: "a".repeat(ACCESS),
        expires_at: 0,
        refresh_at: 0,
        refresh_token: Some("r".repeat(REFRESH)),
        id_token: "i".repeat(ID),
        sid: Some(format!("8e1b6f0c-2d4a-4f7b-b3c5-{index:012}")),
        refresh_deferred_since: None,
    })
}

/// Typical sizes: a signed JWT access token with a few claims, an ID token with groups, an opaque
/// refresh token.
const ACCESS: usize = 900;
const ID: usize = 1100;
const REFRESH: usize = 200;

fn token_bytes() -> usize {
    ACCESS + ID + REFRESH
}

fn rss_kib() -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("no VmRSS value")?
        .parse()?)
}
