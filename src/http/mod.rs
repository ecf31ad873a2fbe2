//! The HTTP kit: what every route shares and no feature owns.
//!
//! Errors and how they become responses ([`error`]), and the per-request context that tenant resolution
//! leaves for the handlers ([`context`]). Features (auth, apps, backstage, shell) import this module;
//! this module imports no feature, only `config` and `telemetry`, so it can sit low in the house.

pub mod context;
pub mod error;

pub use context::RequestContext;
pub use error::{AppError, Class, ErrorReport, HttpError, Problem};
