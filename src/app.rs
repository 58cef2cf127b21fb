//! The application: opens the store, loads the snapshot, binds the listeners, and runs
//! the HTTP service (and Envoy's gRPC ext_authz, when configured) with what runs beside
//! it (rebuilding a stale snapshot, listening to other replicas, delivering
//! notifications, scanning for expiry, flushing token use).
//! `crate::http` only routes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use thiserror::Error;
use tokio::net::TcpListener;

use crate::catalog::Catalog;
use crate::config::Settings;
use crate::http::gateway::grpc::ExtAuthz;
use crate::http::{AppState, Shared, limits, router, server};
use crate::service::{Service, ServiceError};
use crate::store::{Store, StoreError};
use tonic::transport::server::TcpIncoming;

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
    /// Envoy's gRPC ext_authz, when `PATROL_GRPC_LISTEN` is set.
    grpc: Option<(TcpListener, AppState)>,
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
        let grpc_listener = match settings.grpc_listen {
            Some(address) => Some(TcpListener::bind(address).await?),
            None => None,
        };
        let state = AppState::new(Shared {
            permissions_html: crate::catalog::docs::html(&catalog).into(),
            gateway: settings.gateway,
            catalog,
            service: Arc::clone(&service),
        });
        let limiter = settings.rate_limit.and_then(limits::limiter);
        Ok(Self {
            listener,
            grpc: grpc_listener.map(|l| (l, state.clone())),
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

    /// Where the gRPC ext_authz listens, when it does.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().and_then(|(l, _)| l.local_addr().ok())
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
        // One stop for both servers.
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        tasks.push(tokio::spawn(async move {
            stop.await;
            let _ = stopping.send(true);
        }));
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|&s| s).await;
            }
        };
        let grpc = self.grpc.map(|(listener, state)| {
            let stop = until_stopped();
            tokio::spawn(async move {
                let served = tonic::transport::Server::builder()
                    .add_service(ExtAuthz::new(state))
                    .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop)
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the gRPC ext_authz server stopped");
                }
            })
        });
        server::serve(self.listener, self.router, self.head, until_stopped()).await;
        if let Some(grpc) = grpc {
            let _ = grpc.await;
        }
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
