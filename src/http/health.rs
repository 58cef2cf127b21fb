//! Liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}

/// Ready when the catalog is loaded; the store joins this check when it arrives.
async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.catalog.permissions.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "catalog not loaded")
    } else {
        (StatusCode::OK, "ready")
    }
}
