//! Why a Backstage request was refused or failed, and how each reason is answered.

use axum::http::StatusCode;

use crate::http::{Class, Problem};

/// Why a Backstage request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BackstageError {
    /// 404: this tenant has no Backstage backend.
    #[error("this portal has no Backstage backend")]
    NotConfigured,
    /// 403: the plugin is not in the tenant's allow-list (or is `auth`, which never is).
    #[error("the Backstage plugin `{0}` is not available through the portal")]
    PluginNotAllowed(String),
    /// 502: Backstage would not sign the user in (for example, no catalog user matches).
    #[error("Backstage did not accept your identity")]
    SignInRefused(String),
    /// 403: a catalog endpoint that cannot be narrowed to the tenant's namespaces and is not in
    /// `allow_unscoped` (the path below `/api/catalog`, for the log).
    #[error("this catalog endpoint cannot be limited to this portal's namespaces")]
    CatalogUnscoped(String),
    /// 404: the entity is outside the tenant's namespaces (or does not exist: the two look the same).
    #[error("there is no such entity in this portal's catalog")]
    EntityNotFound,
    /// 400: a catalog request portico cannot scope safely as written (what is wrong is shown).
    #[error("bad catalog request: {0}")]
    BadCatalogRequest(&'static str),
    /// 502: a catalog answer portico must check was not what Backstage sends (or too large).
    #[error("Backstage gave an answer that could not be checked")]
    UnexpectedAnswer(String),
}

impl Problem for BackstageError {
    fn classify(&self) -> Class {
        match self {
            BackstageError::NotConfigured => {
                Class::new(StatusCode::NOT_FOUND, "backstage_not_configured")
            }
            BackstageError::EntityNotFound => {
                Class::new(StatusCode::NOT_FOUND, "backstage_entity_not_found")
            }
            BackstageError::PluginNotAllowed(_) => {
                Class::new(StatusCode::FORBIDDEN, "backstage_plugin_not_allowed")
            }
            BackstageError::CatalogUnscoped(path) => {
                Class::new(StatusCode::FORBIDDEN, "backstage_catalog_unscoped")
                    .detail(format!("refused catalog path {path}"))
            }
            BackstageError::BadCatalogRequest(_) => {
                Class::new(StatusCode::BAD_REQUEST, "backstage_bad_catalog_request")
            }
            BackstageError::SignInRefused(detail) => {
                Class::new(StatusCode::BAD_GATEWAY, "backstage_sign_in_refused")
                    .detail(detail.as_str())
            }
            BackstageError::UnexpectedAnswer(detail) => {
                Class::new(StatusCode::BAD_GATEWAY, "backstage_unexpected_answer")
                    .detail(detail.as_str())
            }
        }
    }
}
