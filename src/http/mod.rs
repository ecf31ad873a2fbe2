//! The HTTP kit: what every route shares and no feature owns.
//!
//! Errors and how they become responses ([`error`]), the per-request context that tenant resolution
//! leaves for the handlers ([`context`]), and the same-origin proof every state change needs
//! ([`csrf`]: pure checks over headers, used by `/auth` and by the forwarding kit alike). Features (auth, apps, backstage, shell) import this module;
//! this module imports no feature, only `config` and `telemetry`, so it can sit low in the house.

pub(crate) mod compress;
pub(crate) mod context;
pub(crate) mod csrf;
pub(crate) mod error;
pub(crate) mod watched;

pub(crate) use context::RequestContext;
pub(crate) use error::{AppError, Class, Problem};
