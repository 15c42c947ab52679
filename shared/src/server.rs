//! Serving an example with `salvo::Server`, the way a Salvo app is served: a
//! `TcpListener` (with salvo's `RustlsConfig` for HTTPS, HTTP/2 by ALPN), the fuse's
//! write-stall limit, and on SIGINT/SIGTERM: end every stream, then
//! `stop_graceful(Some(grace))`. sse-counter's `main.rs` spells the same steps out.
//!
//! Why the streams end first: a graceful stop waits for every response to finish, and
//! an event stream never does. [`Streams::shut_down`] ends them all (each client gets
//! its `retry:` and reconnects elsewhere), and the grace bounds whatever is left.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use salvo::conn::{Acceptor, TcpListener};
use salvo::fuse::FuseConfig;
use salvo::prelude::*;
use salvo::server::ServerHandle;
use tokio::task::JoinHandle;

use crate::config::{HTTP1_BUFFER, ServerArgs, TlsError};
use crate::routes::service;
use crate::streams::{Streams, shutdown_signal};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission, bad host).
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS certificate or key could not be read or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    scheme: &'static str,
    streams: Streams,
    stop: Box<dyn FnOnce(Duration) + Send>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// A server serving in `task` on `addr`; `stop(grace)` starts its graceful stop.
    pub fn new(
        addr: SocketAddr,
        scheme: &'static str,
        streams: Streams,
        stop: impl FnOnce(Duration) + Send + 'static,
        task: JoinHandle<()>,
    ) -> Self {
        Self {
            addr,
            scheme,
            streams,
            stop: Box::new(stop),
            task,
        }
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, or `https://` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Ends every stream, stops accepting, lets in-flight requests finish, and returns
    /// within `grace` whatever the clients do. Returns whether everything closed in time.
    pub async fn shut_down(self, grace: Duration) -> bool {
        let Self {
            streams,
            stop,
            mut task,
            ..
        } = self;
        streams.shut_down();
        stop(grace);
        if tokio::time::timeout(grace, &mut task).await.is_ok() {
            return true;
        }
        // Past the grace: close whatever is still open.
        task.abort();
        let _ = task.await;
        false
    }
}

/// Binds `args.host:args.port` and serves `app` (with the common routes) on
/// `salvo::Server` in a task; over TLS (HTTP/2 and HTTP/1.1, by ALPN) when the options
/// ask for it.
pub async fn start(
    args: &ServerArgs,
    streams: Streams,
    app: Router,
) -> Result<RunningServer, ServerError> {
    let addr = format!("{}:{}", args.host, args.port);
    let bind_error = |e: salvo::Error| ServerError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let service = service(&streams, app);
    // The fuse's defaults (10 s TLS handshake, 30 s request head), and a limit on how
    // long a write to a client that stopped reading may block.
    let fuse = FuseConfig::default().with_write_stall_timeout(streams.settings().write_stall);
    let listener = TcpListener::new(addr.clone());
    let (addr, scheme, (handle, task)) = match args.rustls()? {
        Some(tls) => {
            let acceptor = listener.rustls(tls).try_bind().await.map_err(bind_error)?;
            (
                local_addr(&acceptor)?,
                "https",
                spawn(acceptor, fuse, service),
            )
        }
        None => {
            let acceptor = listener.try_bind().await.map_err(bind_error)?;
            (
                local_addr(&acceptor)?,
                "http",
                spawn(acceptor, fuse, service),
            )
        }
    };
    // Past the grace, salvo closes whatever is still open.
    let stop = move |grace| handle.stop_graceful(Some(grace));
    Ok(RunningServer::new(addr, scheme, streams, stop, task))
}

fn local_addr(acceptor: &impl Acceptor) -> Result<SocketAddr, ServerError> {
    acceptor
        .holdings()
        .first()
        .and_then(|holding| holding.local_addr.clone().into_std())
        .ok_or_else(|| ServerError::Bind {
            addr: "?".into(),
            reason: "the listener has no address".into(),
        })
}

fn spawn<A: Acceptor + Send + 'static>(
    acceptor: A,
    fuse: FuseConfig,
    service: Service,
) -> (ServerHandle, JoinHandle<()>) {
    let mut server = Server::new(acceptor).fuse_config(fuse);
    server.http1_mut().max_buf_size(HTTP1_BUFFER);
    let handle = server.handle();
    let task = tokio::spawn(async move {
        if let Err(e) = server.try_serve(service).await {
            tracing::error!("server failed: {e}");
        }
    });
    (handle, task)
}

/// What an example's start-up returns: the exit code, or why it could not start.
pub type MainResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// The exit code for a start-up's result; a failure is printed as `error: ...` first.
pub fn exit_code(result: MainResult) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// Runs an example's server until SIGINT or SIGTERM: prints `listening on
/// http://HOST:PORT` as the first line on stdout, then on a signal ends every stream
/// and exits within `--shutdown-grace-secs`.
pub async fn run(args: &ServerArgs, streams: Streams, app: Router) -> ExitCode {
    run_with(args, start(args, streams, app)).await
}

/// [`run`], with the server `starting` makes.
pub async fn run_with(
    args: &ServerArgs,
    starting: impl Future<Output = Result<RunningServer, ServerError>>,
) -> ExitCode {
    // Every stream is a socket: allow as many as the system lets this process have.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-files limit: {e}");
    }
    let server = match starting.await {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", server.url());
    let signal = shutdown_signal().await;
    tracing::info!(signal, "shutting down");
    if server.shut_down(args.shutdown_grace()).await {
        tracing::info!("stopped");
    } else {
        tracing::warn!("connections still open after the grace period; closed them");
    }
    ExitCode::SUCCESS
}
