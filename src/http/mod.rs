//! The HTTP service: one router per concern, merged here behind the service-key check
//! of each, with the request-id, trace, timeout and body-limit layers. Handlers parse,
//! call the service and map errors; they hold no logic of their own. What starts and
//! runs the service is `crate::app`.

mod admin;
mod authorize;
mod catalog;
mod directory;
mod error;
pub mod extract;
pub mod gateway;
mod gitlab;
mod graphql;
mod health;
mod jobs;
pub(crate) mod limits;
pub mod openapi;
mod page;
pub(crate) mod server;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::from_fn_with_state;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use authorize::{AuthorizeRequest, AuthorizeResponse, BatchRequest, BatchResponse};
pub use error::{ApiError, ErrorBody};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::directory::stored_id;
use crate::service::Service;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub(crate) fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

/// What every handler shares. Behind one `Arc`: a request clones the state several
/// times on its way through the router, and each clone is an atomic add that both
/// cores fight over.
#[derive(Debug)]
pub struct Shared {
    pub catalog: Arc<Catalog>,
    pub service: Arc<Service>,
    /// The permissions page, rendered once at start.
    pub permissions_html: Arc<str>,
    /// The proxy in front of the gateway check (`PATROL_GATEWAY`).
    pub gateway: crate::config::Gateway,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// An id from the path: signed 64-bit in the store, so larger ones are refused.
fn path_id(id: u64) -> Result<u64, ApiError> {
    stored_id(id, "id").map_err(ApiError::bad_request_from)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every route, behind its service-key verification and the limits of `settings`.
pub(crate) fn router(
    state: AppState,
    settings: &Settings,
    limiter: Option<&limits::Limiter>,
) -> Router {
    use extract::{ADMIN, AUTHORIZE, MANAGE, require};
    // Outside the service-key check: made-up keys are limited too.
    let limited = |router: Router<AppState>| match limiter {
        Some(limiter) => router.route_layer(
            tower_governor::GovernorLayer::new(Arc::clone(limiter)).error_handler(limits::too_many),
        ),
        None => router,
    };
    let decisions = authorize::router()
        .merge(graphql::router())
        .merge(gateway::router())
        .route_layer(from_fn_with_state(state.clone(), require::<AUTHORIZE>));
    let managed = directory::router()
        .merge(tokens::router())
        .merge(jobs::router())
        .route_layer(from_fn_with_state(state.clone(), require::<MANAGE>));
    let admin = admin::router().route_layer(from_fn_with_state(state.clone(), require::<ADMIN>));
    Router::new()
        .merge(health::router())
        .merge(catalog::router())
        .merge(decisions)
        .merge(limited(managed))
        .merge(limited(admin))
        .merge(limited(tokens::self_router()))
        .merge(limited(gitlab::router()))
        .fallback(|| async { ApiError::NotFound("no such endpoint".to_owned()) })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(from_fn_with_state(settings.header_limit, limits::guard))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        // The path only: a query string may carry a token (`private_token=`), and a
        // token's plaintext is never logged.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
