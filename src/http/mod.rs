//! The HTTP service: one router per concern, merged here behind the service-key check
//! of each, with the request-id, trace, timeout and body-limit layers. Handlers parse,
//! call the service and map errors; they hold no logic of their own.

mod admin;
mod authorize;
mod catalog;
mod directory;
mod error;
pub mod extract;
pub mod gateway;
mod gitlab;
mod health;
mod jobs;
mod limits;
pub mod openapi;
mod page;
mod server;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::middleware::from_fn_with_state;
use thiserror::Error;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use authorize::{AuthorizeRequest, AuthorizeResponse, BatchRequest, BatchResponse};
pub use error::{ApiError, ErrorBody};

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::directory::MAX_ID;
use crate::service::{Service, ServiceError};
use crate::store::{Store, StoreError};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

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

#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot load the store: {0}")]
    Service(#[from] ServiceError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// The bound, ready-to-run service (port 0 in tests picks a free port).
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    service: Arc<Service>,
    background: Background,
    limiter: Option<limits::Limiter>,
    head: server::HeadLimits,
}

/// What runs beside the requests, and how often.
#[derive(Debug, Clone)]
struct Background {
    webhook: Option<crate::config::Webhook>,
    expiry_scan: Duration,
    usage_flush: Option<Duration>,
}

impl Application {
    /// Opens the store (migrating it unless `migrate` is false), loads the snapshot and
    /// binds the listener.
    pub async fn build(
        settings: &Settings,
        catalog: Arc<Catalog>,
        migrate: bool,
    ) -> Result<Self, StartError> {
        crate::service::install_crypto_provider();
        let store = Store::connect(&settings.database_url).await?;
        if migrate {
            store.migrate().await?;
        }
        let service = Arc::new(Service::start(Arc::clone(&catalog), store, settings).await?);
        let listener = TcpListener::bind(settings.listen).await?;
        let state = AppState(Arc::new(Shared {
            permissions_html: crate::catalog::docs::html(&catalog).into(),
            gateway: settings.gateway,
            catalog,
            service: Arc::clone(&service),
        }));
        let limiter = settings.rate_limit.and_then(limits::limiter);
        Ok(Self {
            listener,
            router: router(state, settings, limiter.as_ref()),
            limiter,
            head: server::HeadLimits {
                timeout: settings.header_timeout,
                bytes: settings.header_limit,
            },
            service,
            background: Background {
                webhook: settings.webhook.clone(),
                expiry_scan: settings.expiry_scan,
                usage_flush: settings.track_usage.then_some(settings.usage_flush),
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) {
        self.serve(shutdown_signal()).await;
    }

    /// Serves until `stop` completes (tests).
    pub async fn serve(self, stop: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = vec![tokio::spawn(heal_forever(Arc::clone(&self.service)))];
        let service = Arc::clone(&self.service);
        tasks.push(tokio::spawn(async move { service.listen_forever().await }));
        if let Some(webhook) = self.background.webhook {
            tasks.push(tokio::spawn(
                Arc::clone(&self.service).deliver_forever(webhook),
            ));
            let (service, every) = (Arc::clone(&self.service), self.background.expiry_scan);
            tasks.push(tokio::spawn(async move {
                service.scan_expiry_forever(every).await
            }));
        }
        if let Some(limiter) = self.limiter {
            tasks.push(tokio::spawn(limits::forget_idle_callers(limiter)));
        }
        if let Some(every) = self.background.usage_flush {
            let service = Arc::clone(&self.service);
            tasks.push(tokio::spawn(async move {
                service.flush_usage_forever(every).await
            }));
        }
        server::serve(self.listener, self.router, self.head, stop).await;
        for task in tasks {
            task.abort();
        }
        // What was used since the last flush is written before the store closes.
        if let Err(e) = self.service.flush_usage().await {
            tracing::warn!(error = %e, "token uses since the last flush are lost");
        }
        self.service.store().close().await;
    }
}

/// Rebuilds the snapshot whenever a failed commit left it stale.
async fn heal_forever(service: Arc<Service>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        service.heal().await;
    }
}

/// Ids are signed 64-bit in the store; larger ones are refused.
fn check_id(id: u64) -> Result<u64, ApiError> {
    if id > MAX_ID {
        return Err(ApiError::bad_request("id", "must be below 2^63"));
    }
    Ok(id)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn router(state: AppState, settings: &Settings, limiter: Option<&limits::Limiter>) -> Router {
    use extract::{ADMIN, AUTHORIZE, MANAGE, require};
    // Outside the service-key check: made-up keys are limited too.
    let limited = |router: Router<AppState>| match limiter {
        Some(limiter) => router.route_layer(
            tower_governor::GovernorLayer::new(Arc::clone(limiter)).error_handler(limits::too_many),
        ),
        None => router,
    };
    let decisions = authorize::router()
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

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
