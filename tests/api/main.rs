//! Integration tests: the real portico server, started in-process on an ephemeral loopback port, driven
//! over HTTP like a browser or an API client would; and the real `portico` binary for config checking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod backstage;
mod backstage_rbac;
mod branding;
mod cache;
mod canonical_paths;
mod catalog;
mod compress;
mod config_check;
mod cookie_jar;
mod edge;
mod explain;
mod fake_idp;
mod helpers;
mod i18n;
mod lifecycle;
mod logs;
mod metrics;
mod oidc_negative;
mod oidc_real;
mod oneshot;
mod op;
mod packaging;
mod proxy;
mod redis_outage;
mod redis_server;
mod redis_sign_in;
mod redis_tls;
mod reload;
mod scale_out;
mod shell;
mod tenancy;
mod tls;
mod upstream_pool;
mod upstream_tls;
