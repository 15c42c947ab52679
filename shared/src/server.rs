//! Serving an example with `salvo::Server`, the way a Salvo app is served: a
//! `TcpListener` (with salvo's `RustlsConfig` for HTTPS, HTTP/2 by ALPN), the fuse's
//! write-stall limit, and on SIGINT/SIGTERM: end every stream, then
//! `stop_graceful(Some(grace))`. sse-counter's `main.rs` spells the same steps out.
//!
//! Why the streams end first: a graceful stop waits for every response to finish, and
//! an event stream never does. [`Streams::shut_down`] ends them all (each client gets
//! its `retry:` and reconnects elsewhere), and the grace bounds whatever is left.
//!
//! ```
//! use clap::Parser;
//! use salvo::prelude::*;
//! use sse_shared::{ServerArgs, Streams, server};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! # #[handler] async fn events() {}
//! #[tokio::main]
//! async fn main() -> Result<(), server::ServerError> {
//!     let cli = Cli::parse_from(["app", "--port", "0"]);
//!     let streams = Streams::from_args(&cli.server);
//!     let app = Router::with_path("events").get(events);
//!     // A `main` calls `server::run(&cli.server, streams, app)`: until SIGINT or
//!     // SIGTERM. Here, until `stop` (at once): every stream ends, then the server.
//!     let listening = |scheme: &str, addr| println!("listening on {scheme}://{addr}");
//!     let stop = async {};
//!     server::serve(&cli.server, streams, app, listening, stop).await
//! }
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use salvo::conn::{Acceptor, TcpListener};
use salvo::fuse::FuseConfig;
use salvo::prelude::*;

use crate::body::BODY_STALL;
use crate::config::{ServerArgs, TlsError};
use crate::connection::{SmallWrites, bound_buffers, set_socket_options};
use crate::routes::service;
use crate::shutdown::shutdown_signal;
use crate::streams::Streams;

/// Why the server could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission, bad host).
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the system said.
        reason: String,
    },
    /// The TLS certificate or key could not be read or made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Runs an example's server until SIGINT or SIGTERM: prints `listening on
/// http://HOST:PORT` as the first line on stdout, then on a signal ends every stream
/// and exits within `--shutdown-grace-secs`.
pub async fn run(args: &ServerArgs, streams: Streams, app: Router) -> ExitCode {
    run_then(args, streams, app, |_, _| {}).await
}

/// [`run`], calling `then` with the scheme and address once it listens (to print what
/// depends on the port it got).
pub async fn run_then(
    args: &ServerArgs,
    streams: Streams,
    app: Router,
    then: impl FnOnce(&str, SocketAddr),
) -> ExitCode {
    // Every stream is a socket: allow as many as the system lets this process have.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-files limit: {e}");
    }
    let listening = |scheme: &str, addr| {
        println!("listening on {scheme}://{addr}");
        then(scheme, addr);
    };
    let signal = async {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down");
    };
    match serve(args, streams, app, listening, signal).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            failure_status(&e)
        }
    }
}

/// Binds `args.host:args.port` (over TLS when the options ask for it), tells
/// `listening` the scheme and address, and serves `app` with the common routes until
/// `stop` completes; then ends every stream and stops within the grace.
pub async fn serve(
    args: &ServerArgs,
    streams: Streams,
    app: Router,
    listening: impl FnOnce(&str, SocketAddr),
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = format!("{}:{}", args.host, args.port);
    let bind_error = |e: salvo::Error| ServerError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let service = service(&streams, app);
    let listener = TcpListener::new(addr.clone());
    let grace = args.shutdown_grace;
    match args.rustls()? {
        Some(tls) => {
            let acceptor = listener.rustls(tls).try_bind().await.map_err(bind_error)?;
            set_socket_options(acceptor.inner().inner())?;
            listening("https", local_addr(&acceptor));
            serve_on(acceptor, streams, service, grace, stop).await
        }
        None => {
            let acceptor = listener.try_bind().await.map_err(bind_error)?;
            set_socket_options(acceptor.inner())?;
            listening("http", local_addr(&acceptor));
            serve_on(SmallWrites(acceptor), streams, service, grace, stop).await
        }
    }
}

fn local_addr(acceptor: &impl Acceptor) -> SocketAddr {
    let holding = acceptor.holdings().first();
    let addr = holding.and_then(|h| h.local_addr.clone().into_std());
    addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

async fn serve_on(
    acceptor: impl Acceptor + 'static,
    streams: Streams,
    service: Service,
    grace: Duration,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    // The fuse's defaults (10 s TLS handshake, 30 s request head), a limit on how long a
    // write to a client that stopped reading may block, and on a stalled request body.
    let fuse = FuseConfig::default()
        .with_write_stall_timeout(streams.args().write_stall())
        .with_request_body_timeout(BODY_STALL);
    let mut server = Server::new(acceptor).fuse_config(fuse);
    bound_buffers(&mut server, streams.args());
    let handle = server.handle();
    tokio::spawn(async move {
        stop.await;
        // First end every stream, then stop; past the grace salvo closes the rest.
        streams.shut_down();
        handle.stop_graceful(Some(grace));
    });
    Ok(server.try_serve(service).await?)
}

/// What an example's start-up returns: the exit code, or why it could not start.
pub type MainResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// The exit code for a start-up's result; a failure is printed as `error: ...` first.
pub fn exit_code(result: MainResult) -> ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        failure_status(e.as_ref())
    })
}

/// The exit status for `e`: 2 for options that cannot work together (as clap's for
/// one that cannot work alone), such as a TLS key that is not the certificate's; 1
/// otherwise.
pub fn failure_status(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    let options = e.is::<TlsError>() || matches!(e.downcast_ref(), Some(ServerError::Tls(_)));
    if options {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
