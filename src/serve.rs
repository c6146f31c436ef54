//! The HTTP accept loop. `axum::serve` has no header-read timeout (hyper only keeps one when
//! it is given a timer) and no cap on connections, and a public edge needs both: a client
//! that opens sockets and trickles header bytes would otherwise hold them forever. This is
//! axum's own loop (upgrades for the media WebSockets, graceful shutdown) on hyper's HTTP/1
//! builder with a timer, the header timeout and a connection cap added, and the peer's
//! address in each request's extensions (`ConnectInfo`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Limits on connections (see `docs/SECURITY.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// Open connections at once (WebSocket calls included); past it the server stops
    /// accepting until one closes, and new clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (a new connection's first
    /// request, or the next one on a kept-alive connection).
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 4096, header_read_timeout: Duration::from_secs(10) }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish.
///
/// HTTP/1.1 only: a TLS proxy in front may speak HTTP/2 to clients. hyper-util's auto
/// (HTTP/1 or 2) builder waits for a connection's first bytes with no timeout at all, so a
/// client that connects and says nothing would hold its socket forever.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped when shutdown begins: every connection then finishes its request and closes.
    let (stop_tx, stop_rx) = watch::channel(());
    // Each connection holds a receiver; the last one gone means all have closed.
    let (closed_tx, closed_rx) = watch::channel(());
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, as axum does, not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request.map(axum::body::Body::new)
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let mut stop = stop_rx.clone();
        let closed = closed_rx.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
            drop(closed);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(closed_rx);
    closed_tx.closed().await;
}
