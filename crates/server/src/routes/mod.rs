//! HTTP routes. `fhir` dispatches every request under the FHIR base; `portal` serves
//! people's web pages; the others serve apps' sign-in and operators.

pub mod access_log;
pub mod authorize;
pub mod bundle;
pub mod export;
pub mod fhir;
pub mod health;
pub mod history;
pub mod oauth;
pub mod paging;
pub mod portal;
pub mod search;
pub mod summary;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::AppState;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/auth/token", post(oauth::token))
        .route("/auth/authorize", get(authorize::start).post(authorize::finish))
        .route("/.well-known/smart-configuration", get(oauth::smart_configuration))
        .route("/fhir/.well-known/smart-configuration", get(oauth::smart_configuration))
        .route("/fhir", any(fhir::handle))
        .route("/fhir/", any(fhir::handle))
        .route("/fhir/{*path}", any(fhir::handle))
        .merge(portal::router())
        .fallback(fhir::not_found)
        .with_state(state)
}
