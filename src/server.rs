//! The HTTP server loop. `axum::serve` runs hyper without a timer, which
//! turns hyper's header timeout off: a few thousand clients dribbling header
//! bytes would hold the process. This loop gives hyper a timer and a
//! [`HEADER_TIMEOUT`] (from the moment the connection is served: a client
//! that sends nothing at all is cut off too), caps the connections served at once, and shuts down
//! gracefully (in-flight requests finish, for at most [`DRAIN_TIMEOUT`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A connection that has not sent complete request headers within this is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, with at most
/// `max_connections` connections at once: a connection beyond that is
/// closed as soon as it is accepted (the client sees the connection end; the
/// process keeps serving the others).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(max_connections));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: an HTTP/2 connection would escape the header timeout
    // (its preface and its streams have none), and browsers reach this
    // service through TLS-terminating proxies that speak HTTP/1.1 to it.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // accept: wait a little rather than spin, keep serving.
                    tracing::warn!(error.message = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            serve_connection(&builder, router, stream, peer, watcher).await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: connections still open after the drain timeout; closing them");
    }
    Ok(())
}

async fn serve_connection(
    builder: &http1::Builder,
    router: Router,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        request
    });
    let connection =
        builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    // A client that goes away or times out ends its connection; nothing to report.
    let _ = watcher.watch(connection).await;
}
