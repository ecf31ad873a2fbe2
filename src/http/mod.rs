//! The HTTP kit: what every route shares and no feature owns.
//!
//! Errors and how they become responses ([`error`]), and the per-request context that tenant resolution
//! leaves for the handlers ([`context`]). Features (auth, apps, backstage, shell) import this module;
//! this module imports no feature, only `config` and `telemetry`, so it can sit low in the house.

pub(crate) mod context;
pub(crate) mod error;

pub(crate) use context::RequestContext;
pub(crate) use error::{AppError, Class, Problem};
