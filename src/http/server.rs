//! The connection loop: axum's router under hyper's HTTP/1 server, configured where
//! `axum::serve` cannot be. A client gets `header_timeout` to send a request's head (a
//! slow-loris client is disconnected, not waited for), and a head larger than the
//! buffer hyper may grow for it is refused by hyper with a bare 431; the JSON 431 below
//! that size is `limits::guard`'s.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a request's head may take to arrive, and how large it may be.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub timeout: Duration,
    pub bytes: usize,
}

impl HeadLimits {
    /// hyper's read buffer: twice the head limit, so that heads a little over it reach
    /// `limits::guard` and get its JSON answer (hyper needs at least 8 KiB).
    fn buffer(self) -> usize {
        self.bytes.saturating_mul(2).max(8 * 1024)
    }
}

/// Serves `router` on `listener` until `stop` completes, then lets the requests in flight
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HeadLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .max_buf_size(limits.buffer());
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A refused or reset connection is the client's; anything else (out of file
/// descriptors, say) is waited out for a second rather than spun on, as hyper did.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
