//! The application: opens the store, loads the snapshot, binds the listener, and runs
//! the HTTP service with what runs beside it (rebuilding a stale snapshot, listening to
//! other replicas, delivering notifications, scanning for expiry, flushing token use).
//! `crate::http` only routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::http::{AppState, Shared, limits, router, server};
use crate::service::{Service, ServiceError};
use crate::store::{Store, StoreError};

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

/// What runs beside the requests (the background tasks), and how often.
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
        let state = AppState::new(Shared {
            permissions_html: crate::catalog::docs::html(&catalog).into(),
            gateway: settings.gateway,
            catalog,
            service: Arc::clone(&service),
        });
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
