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

use salvo::conn::rustls::{Keycert, RustlsConfig};
use salvo::conn::{Acceptor, TcpListener};
use salvo::fuse::FuseConfig;
use salvo::prelude::*;
use salvo::server::ServerHandle;
use tokio::task::JoinHandle;

use crate::config::ServerArgs;
use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::page::security_headers;
use crate::stream::Streams;

/// The most bytes hyper buffers per HTTP/1 connection (~400 KB by default): for a
/// client that stopped reading, that is what it costs until the write-stall limit.
pub const HTTP1_BUFFER: usize = 64 * 1024;

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
    #[error("TLS: {0}")]
    Tls(String),
}

impl Streams {
    /// Streams configured from the shared options, with fresh metrics.
    pub fn from_args(args: &ServerArgs) -> Self {
        Self::new(args.stream_settings(), args.limiter(), Metrics::new())
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Stdout is kept for the
/// `listening on` line. Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The example's routes wrapped with what every server has: a panic net, security
/// headers, `/healthz`, `/metrics`, and JSON errors.
pub fn service(streams: &Streams, app: Router) -> Service {
    let router = Router::new()
        .hoop(salvo::catch_panic::CatchPanic::new())
        .hoop(security_headers)
        .push(Router::with_path("healthz").get(healthz))
        .push(Router::with_path("metrics").get(streams.metrics().clone()))
        .push(app);
    Service::new(router).catcher(json_errors())
}

#[handler]
async fn healthz(res: &mut Response) {
    res.render(Text::Plain("ok"));
}

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    scheme: &'static str,
    streams: Streams,
    stop: Stop,
    task: JoinHandle<()>,
}

enum Stop {
    Salvo(ServerHandle),
    Lean(crate::shutdown::Shutdown),
}

impl RunningServer {
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
    pub async fn shut_down(mut self, grace: Duration) -> bool {
        self.streams.shut_down();
        match &self.stop {
            // Past the grace, salvo closes whatever is still open.
            Stop::Salvo(handle) => handle.stop_graceful(Some(grace)),
            Stop::Lean(stop) => stop.start(),
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_ok() {
            return true;
        }
        self.task.abort();
        let _ = self.task.await;
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
    if args.lean_server {
        let (addr, scheme, stop, task) = crate::connection::start(args, &streams, service).await?;
        return Ok(RunningServer {
            addr,
            scheme,
            streams,
            stop: Stop::Lean(stop),
            task,
        });
    }
    // The fuse's defaults (10 s TLS handshake, 30 s request head), and a limit on how
    // long a write to a client that stopped reading may block.
    let fuse = FuseConfig::default().with_write_stall_timeout(streams.settings().write_stall);
    let listener = TcpListener::new(addr.clone());
    let (addr, scheme, (handle, task)) = match rustls_config(args)? {
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
    Ok(RunningServer {
        addr,
        scheme,
        streams,
        stop: Stop::Salvo(handle),
        task,
    })
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

/// The TLS configuration the options ask for, if any: the certificate files, or a
/// self-signed certificate made now. Salvo's `RustlsConfig` offers HTTP/2 and HTTP/1.1
/// by ALPN.
pub fn rustls_config(args: &ServerArgs) -> Result<Option<RustlsConfig>, ServerError> {
    let keycert = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => {
            let read = |path: &std::path::PathBuf| {
                std::fs::read(path)
                    .map_err(|e| ServerError::Tls(format!("cannot read {}: {e}", path.display())))
            };
            Keycert::new().cert(read(cert)?).key(read(key)?)
        }
        (_, _, true) => {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                args.host.clone(),
            ];
            let made = rcgen::generate_simple_self_signed(names).map_err(|e| {
                ServerError::Tls(format!("cannot make a self-signed certificate: {e}"))
            })?;
            Keycert::new()
                .cert(made.cert.pem())
                .key(made.signing_key.serialize_pem())
        }
        _ => return Ok(None),
    };
    Ok(Some(RustlsConfig::new(keycert)))
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
    // Every stream is a socket: allow as many as the system lets this process have.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-files limit: {e}");
    }
    let server = match start(args, streams, app).await {
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

/// Waits for SIGINT (Ctrl-C) or SIGTERM (what service managers and `kill` send).
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); Ctrl-C still works");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
