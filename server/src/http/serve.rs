//! The accept loop: each connection served by hyper (HTTP/1 with upgrades for the live
//! WebSocket, or HTTP/2), with a bound on how many are open at once and on how long a
//! client may take to send a request's headers. The header bound also closes a
//! keep-alive connection left idle between requests, so slow or idle clients cannot hold
//! the server's sockets (axum's own `serve` sets neither bound).

use super::origin::TrustedProxies;
use app::model::{ErrorBody, ErrorKind};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Bounds on the connections the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once (live clients hold one each); one more is answered 503
    /// and closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, or stay idle between
    /// requests, before its connection is closed.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4_096,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// How the server listens: its connection bounds, TLS when it terminates it itself, and
/// the proxies whose forwarded headers it believes.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    pub limits: ConnectionLimits,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub trusted_proxies: TrustedProxies,
}

/// A client's connection, plain TCP or TLS over it.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Connection for T {}

/// How long open connections get to finish once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the open
/// connections finish (for at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    serving: Serving,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = serving.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // WebSockets over HTTP/2 (RFC 8441).
    builder
        .http2()
        .timer(TokioTimer::new())
        .enable_connect_protocol();
    let tls = serving.tls.map(tokio_rustls::TlsAcceptor::from);
    let proxies = Arc::new(serving.trusted_proxies);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = stream;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handlers that need the client's address (the sign-in throttle) find it here,
        // and whether it came over HTTPS (secure cookies, HSTS, sign-in callbacks).
        let proxies = proxies.clone();
        let is_tls = tls.is_some();
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                let (client, https) = proxies.resolve(peer, is_tls, request.headers());
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(client));
                request.extensions_mut().insert(https);
                request
            },
        ));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let stream: Box<dyn Connection> = match tls {
                None => Box::new(stream),
                // The handshake is bounded like a request's headers.
                Some(tls) => {
                    match tokio::time::timeout(limits.header_timeout, tls.accept(stream)).await {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            // A client that goes away or breaks the protocol only ends its own connection.
            let served = watcher
                .watch(
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned(),
                )
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// After a failed accept: a connection reset before it was taken is nothing; running out
/// of file descriptors (or another resource) is waited out, not spun on.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Answers a connection over the limit with the API's JSON error, then closes it.
async fn refuse_busy(mut stream: TcpStream, limit: usize) {
    let body = serde_json::to_string(&ErrorBody::new(
        ErrorKind::Unavailable,
        format!("the server has {limit} connections open, its limit; try again shortly"),
    ))
    .expect("an error body serializes");
    let answer = format!(
        "HTTP/1.1 {} Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        ErrorKind::Unavailable.status(),
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    // A client that does not read is not waited for.
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
