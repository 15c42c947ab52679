//! Lean serving (`bench --lean-server`, measured against `salvo::Server`): the accept loop, TLS, HTTP/1.1 and
//! HTTP/2, and a graceful stop, with each connection hyper's own, answering through
//! salvo's [`Service`] (routing, handlers, catchers are all salvo's). Call [`run`]
//! where an example calls `sse_shared::server::run`.
//!
//! Why not `salvo::Server`: it wraps every connection in layers an SSE server pays for
//! on every event of every client (protocol sniffing behind a rewind buffer, a fuse
//! on every read and write, three shutdown signals polled on every wake-up). Measured
//! with `bench` (1,000 clients, closed loop): the same router and hub delivered ~35%
//! more events a second and held ~10 KiB less per idle connection served this way.
//! The price is one `#[doc(hidden)]` salvo function, [`Service::hyper_handler`],
//! which turns a `Service` into a hyper service; it is what salvo's own server calls.
//!
//! What salvo's server did that this keeps: a TLS handshake limit (10 s), an HTTP/1
//! header limit (30 s), closing a connection whose writes stay blocked
//! ([`StallGuard`]), and a graceful stop (no new connections; each connection
//! finishes its current response, then closes). Plain TCP speaks HTTP/1.1; TLS offers
//! HTTP/2 and HTTP/1.1 by ALPN (browsers speak HTTP/2 only over TLS).

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::HttpService;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use salvo::Service;
use salvo::conn::ConnCtrl;
use salvo::http::uri::Scheme;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

use sse_shared::config::ServerArgs;
use sse_shared::config::TlsError;
use sse_shared::connection::HTTP2_BUFFER;
use sse_shared::routes::service;
use sse_shared::server::ServerError;
use sse_shared::shutdown::Shutdown;
use sse_shared::streams::Streams;

/// The longest a TLS handshake may take.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// The longest a client may take to send an HTTP/1 request head, by default.
pub const HEADER_READ: Duration = Duration::from_secs(30);

/// How connections are served.
#[derive(Clone)]
pub struct ConnectionSettings {
    /// The most bytes hyper buffers per HTTP/1 connection (at least 8 KiB).
    pub http1_max_buf: usize,
    /// A client that takes longer to send an HTTP/1 request head is disconnected.
    pub header_read: Duration,
    /// A connection whose write stays blocked this long is closed (its client stopped
    /// reading); `None` never closes one.
    pub write_stall: Option<Duration>,
    /// Serve TLS with this acceptor (ALPN `h2` then `http/1.1`).
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections on `listener` and serves each with `service` until `stop`
/// starts; then lets every open connection finish its current response and
/// returns when all have closed. Drop (abort) the future to close them at once.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    settings: ConnectionSettings,
    stop: Shutdown,
) {
    let service = Arc::new(service);
    let settings = Arc::new(settings);
    let local = listener.local_addr().ok();
    let mut connections = JoinSet::new();
    let mut stopped = pin!(stop.wait());
    loop {
        tokio::select! {
            () = stopped.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, remote)) => {
                    let _ = socket.set_nodelay(true);
                    let local = local.unwrap_or(remote);
                    connections.spawn(connection(
                        socket,
                        (local, remote),
                        Arc::clone(&service),
                        Arc::clone(&settings),
                        stop.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One connection, from handshake to close.
///
/// Written so the hyper connection is stored once in the task: an `async fn` that takes
/// a future (or what it is built from) by value keeps room for both, and a plain
/// connection's task was 2,400 bytes instead of ~1,100 (`size_of_val` on the future).
async fn connection(
    socket: TcpStream,
    (local, remote): (SocketAddr, SocketAddr),
    service: Arc<Service>,
    settings: Arc<ConnectionSettings>,
    stop: Shutdown,
) {
    let scheme = if settings.tls.is_some() {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    };
    let handler = service.hyper_handler(
        local.into(),
        remote.into(),
        scheme,
        None,
        ConnCtrl::new(),
        None,
    );
    let socket = StallGuard::new(socket, settings.write_stall);
    match &settings.tls {
        None => {
            let conn = http1(&settings).serve_connection(TokioIo::new(socket), handler);
            until_done(pin!(conn), &stop, |conn| conn.graceful_shutdown()).await;
        }
        // Boxed: a plain connection's task then has no room for TLS state.
        Some(tls) => {
            let tls = tls_connection(socket, remote, tls, handler, &settings, &stop);
            Box::pin(tls).await;
        }
    }
}

/// The TLS handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn tls_connection<H>(
    socket: StallGuard<TcpStream>,
    remote: SocketAddr,
    tls: &TlsAcceptor,
    handler: H,
    settings: &ConnectionSettings,
    stop: &Shutdown,
) where
    H: HttpService<Incoming, Error: Into<BoxError>> + Clone + Send + 'static,
    H::Future: Send + 'static,
    H::ResBody: Send + 'static,
    <H::ResBody as hyper::body::Body>::Data: Send,
    <H::ResBody as hyper::body::Body>::Error: Into<BoxError>,
{
    let handshake = tokio::time::timeout(TLS_HANDSHAKE, tls.accept(socket));
    let stream = match handshake.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return tracing::debug!(%remote, "TLS handshake failed: {e}"),
        Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
    };
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        // As on the default path: 64 KiB queued per stream, 100 streams, a ping every
        // 30 s that closes a connection whose peer stopped answering.
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_send_buf_size(HTTP2_BUFFER)
            .max_concurrent_streams(100)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .serve_connection(TokioIo::new(stream), handler);
        until_done(pin!(conn), stop, |conn| conn.graceful_shutdown()).await;
    } else {
        let conn = http1(settings).serve_connection(TokioIo::new(stream), handler);
        until_done(pin!(conn), stop, |conn| conn.graceful_shutdown()).await;
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How HTTP/1 connections are served.
fn http1(settings: &ConnectionSettings) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read)
        .max_buf_size(settings.http1_max_buf);
    builder
}

/// Drives `conn` to its end; on `stop`, asks it to finish gracefully (`graceful`) first.
async fn until_done<C: Future>(
    mut conn: Pin<&mut C>,
    stop: &Shutdown,
    graceful: impl FnOnce(Pin<&mut C>),
) {
    // The connection first: the shutdown is looked at only when it has woken us.
    tokio::select! {
        biased;
        _ = conn.as_mut() => return,
        () = stop.wait() => graceful(conn.as_mut()),
    }
    let _ = conn.await;
}

/// A socket that fails a write blocked for longer than its limit, so hyper closes
/// the connection of a client that stopped reading. Costs nothing while writes flow:
/// the timer exists only while a write is blocked.
pub struct StallGuard<S> {
    inner: S,
    limit: Option<Duration>,
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    /// Guards `inner`; `None` never fails a write.
    pub fn new(inner: S, limit: Option<Duration>) -> Self {
        Self {
            inner,
            limit,
            blocked: None,
        }
    }

    /// What a write that returned `result` should return.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.blocked = None;
            return result;
        }
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let timer = self
            .blocked
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Like `sse_shared::server::serve`, serving connections with hyper directly.
pub async fn serve_until(
    args: &ServerArgs,
    streams: Streams,
    app: salvo::Router,
    listening: impl FnOnce(&str, SocketAddr),
    stop: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let addr = format!("{}:{}", args.host, args.port);
    let bind_error = |e: io::Error| ServerError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let tls = tls_config(args)?;
    let listener = TcpListener::bind(&addr).await.map_err(bind_error)?;
    sse_shared::connection::set_socket_options(&listener)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let settings = ConnectionSettings {
        http1_max_buf: args.max_header_bytes,
        header_read: HEADER_READ,
        write_stall: streams.args().write_stall(),
        tls: tls.map(|config| TlsAcceptor::from(Arc::new(config))),
    };
    listening(
        if settings.tls.is_some() {
            "https"
        } else {
            "http"
        },
        local,
    );
    let stopping = Shutdown::default();
    let service = service(&streams, app);
    let mut task = tokio::spawn(serve(listener, service, settings, stopping.clone()));
    stop.await;
    streams.shut_down();
    stopping.start();
    // Past the grace: close whatever is still open.
    if tokio::time::timeout(args.shutdown_grace, &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
    Ok(())
}

/// Like `sse_shared::server::run`, serving connections with hyper directly.
pub async fn run(
    args: &ServerArgs,
    streams: Streams,
    app: salvo::Router,
) -> std::process::ExitCode {
    let listening = |scheme: &str, addr| println!("listening on {scheme}://{addr}");
    let signal = async {
        let signal = sse_shared::shutdown::shutdown_signal().await;
        tracing::info!(signal, "shutting down");
    };
    match serve_until(args, streams, app, listening, signal).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The TLS configuration the options ask for, if any; ALPN offers HTTP/2, then HTTP/1.1.
fn tls_config(args: &ServerArgs) -> Result<Option<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some((cert_pem, key_pem)) = args.tls_pem()? else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("bad certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| TlsError(format!("bad private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// Serving connections without salvo's server loop keeps its protections: a client that
/// never finishes its request head is disconnected, a write blocked past its limit
/// fails (so the connection closes), a stop closes idle keep-alive connections and
/// lets the serving future end.
#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::time::Duration;

    use super::{self as lean, ConnectionSettings, StallGuard};
    use salvo::prelude::*;
    use sse_shared::shutdown::Shutdown;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    type TestResult = Result<(), Box<dyn Error>>;

    /// Fails a test that would otherwise hang.
    const LIMIT: Duration = Duration::from_secs(10);

    #[handler]
    async fn hello(res: &mut Response) {
        res.render(Text::Plain("hello"));
    }

    struct Served {
        addr: std::net::SocketAddr,
        stop: Shutdown,
        task: JoinHandle<()>,
    }

    async fn serve(header_read: Duration) -> Result<Served, Box<dyn Error>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let settings = ConnectionSettings {
            http1_max_buf: 64 * 1024,
            header_read,
            write_stall: None,
            tls: None,
        };
        let stop = Shutdown::default();
        let service = Service::new(Router::new().get(hello));
        let task = tokio::spawn(lean::serve(listener, service, settings, stop.clone()));
        Ok(Served { addr, stop, task })
    }

    /// Reads until the server closes the connection; what it sent.
    async fn read_to_close(socket: &mut TcpStream) -> Result<String, Box<dyn Error>> {
        let mut got = Vec::new();
        tokio::time::timeout(LIMIT, socket.read_to_end(&mut got)).await??;
        Ok(String::from_utf8_lossy(&got).into_owned())
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_head_is_disconnected() -> TestResult {
        let served = serve(Duration::from_millis(300)).await?;
        let mut slow = TcpStream::connect(served.addr).await?;
        slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await?;
        // The head never ends: the server closes the connection (hyper may say 408 first).
        let answer = read_to_close(&mut slow).await?;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer:?}"
        );

        // A client that sends its head in time is answered.
        let mut fine = TcpStream::connect(served.addr).await?;
        fine.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await?;
        let answer = read_to_close(&mut fine).await?;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        assert!(answer.ends_with("hello"), "{answer:?}");
        Ok(())
    }

    #[tokio::test]
    async fn a_stop_closes_idle_connections_and_ends_serving() -> TestResult {
        let served = serve(lean::HEADER_READ).await?;
        let mut idle = TcpStream::connect(served.addr).await?;
        // One request on a keep-alive connection, then nothing.
        idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        let mut head = [0u8; 12];
        tokio::time::timeout(LIMIT, idle.read_exact(&mut head)).await??;
        assert_eq!(&head, b"HTTP/1.1 200");

        served.stop.start();
        tokio::time::timeout(LIMIT, served.task).await??;
        read_to_close(&mut idle).await?;
        // Nothing listens any more.
        assert!(TcpStream::connect(served.addr).await.is_err());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_blocked_past_the_limit_fails() -> TestResult {
        // The other end never reads, so the 64-byte pipe fills up.
        let (socket, _client) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(socket, Some(Duration::from_secs(5)));
        guarded.write_all(&[b'x'; 64]).await?;
        let started = tokio::time::Instant::now();
        // Paused time runs ahead to the next timer, so the bound costs no real time.
        let blocked =
            tokio::time::timeout(Duration::from_secs(60), guarded.write_all(b"more")).await?;
        let error = blocked.err().ok_or("a blocked write succeeded")?;
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(5));
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_resumes_in_time_succeeds() -> TestResult {
        let (socket, mut client) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(socket, Some(Duration::from_secs(5)));
        guarded.write_all(&[b'x'; 64]).await?;
        let reader = tokio::spawn(async move {
            // The client reads after 4 s: within the limit.
            tokio::time::sleep(Duration::from_secs(4)).await;
            let mut buf = vec![0u8; 128];
            let mut total = 0;
            while total < 68 {
                total += client.read(&mut buf).await?;
            }
            Ok::<_, std::io::Error>(total)
        });
        tokio::time::timeout(Duration::from_secs(60), guarded.write_all(b"more")).await??;
        assert_eq!(tokio::time::timeout(LIMIT, reader).await???, 68);
        Ok(())
    }
}
