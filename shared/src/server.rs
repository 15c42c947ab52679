//! Server bootstrap: logging, binding, the common routes, and a shutdown that ends
//! every stream and exits within the grace period, however many clients are connected.
//!
//! ```ignore
//! let args = Cli::parse();
//! let streams = Streams::from_args(&args.server);
//! sse_shared::server::run(&args.server, streams, my_router).await
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use salvo::conn::rustls::{Keycert, RustlsConfig};
use salvo::conn::{Acceptor, Listener, TcpListener};
use salvo::fuse::FuseConfig;
use salvo::prelude::*;
use salvo::server::ServerHandle;
use tokio::task::JoinHandle;

use crate::config::ServerArgs;
use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::page::security_headers;
use crate::stream::Streams;

/// The most bytes hyper buffers per HTTP/1 connection (its minimum is 8 KiB).
const HTTP1_BUFFER: usize = 64 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound (in use, no permission, bad host).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
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
    handle: ServerHandle,
    streams: Streams,
    task: JoinHandle<()>,
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
    /// within `grace` whatever the clients do. Returns whether it stopped in time.
    pub async fn shut_down(self, grace: Duration) -> bool {
        self.streams.shut_down();
        self.handle.stop_graceful(grace);
        // The server forces its connections closed at `grace`; allow a little for that.
        tokio::time::timeout(grace + Duration::from_millis(500), self.task)
            .await
            .is_ok()
    }
}

/// Binds `args.host:args.port` and serves `app` (with the common routes) in a task;
/// over TLS (HTTP/2 and HTTP/1.1, by ALPN) when the options ask for it.
pub async fn start(
    args: &ServerArgs,
    streams: Streams,
    app: Router,
) -> Result<RunningServer, ServerError> {
    let addr = format!("{}:{}", args.host, args.port);
    let bind_error = |e: salvo::Error| ServerError::Bind {
        addr: addr.clone(),
        source: std::io::Error::other(e.to_string()),
    };
    let listener = TcpListener::new(addr.clone());
    match tls_config(args)? {
        None => serve_on(
            listener.try_bind().await.map_err(bind_error)?,
            "http",
            streams,
            app,
        ),
        Some(config) => serve_on(
            listener
                .rustls(config)
                .try_bind()
                .await
                .map_err(bind_error)?,
            "https",
            streams,
            app,
        ),
    }
}

fn serve_on<A>(
    acceptor: A,
    scheme: &'static str,
    streams: Streams,
    app: Router,
) -> Result<RunningServer, ServerError>
where
    A: Acceptor + Send + 'static,
{
    let addr = acceptor
        .holdings()
        .first()
        .and_then(|holding| holding.local_addr.clone().into_std())
        .ok_or_else(|| ServerError::Bind {
            addr: String::new(),
            source: std::io::Error::other("the listener reported no address"),
        })?;
    // Close a connection whose write stays blocked (a client that stopped reading), on top
    // of salvo's default handshake and header timeouts. Idle streams are unaffected.
    let fuse = FuseConfig::default().with_write_stall_timeout(streams.settings().write_stall);
    let mut server = Server::new(acceptor).fuse_config(fuse);
    // What hyper may buffer for one connection (~400 KB by default): for a client that
    // stopped reading, that is what it costs until the write-stall timeout closes it.
    server.http1_mut().max_buf_size(HTTP1_BUFFER);
    let handle = server.handle();
    let service = service(&streams, app);
    let task = tokio::spawn(server.serve(service));
    Ok(RunningServer {
        addr,
        scheme,
        handle,
        streams,
        task,
    })
}

/// The TLS configuration the options ask for, if any.
fn tls_config(args: &ServerArgs) -> Result<Option<RustlsConfig>, ServerError> {
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
                .cert(made.cert.pem().into_bytes())
                .key(made.signing_key.serialize_pem().into_bytes())
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
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files"),
        Err(e) => tracing::warn!("cannot raise the open-files limit: {e}"),
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
    let signal = wait_for_signal().await;
    tracing::info!(signal, "shutting down");
    if server.shut_down(args.shutdown_grace()).await {
        tracing::info!("stopped");
    } else {
        tracing::warn!("streams still open after the grace period; exiting anyway");
    }
    ExitCode::SUCCESS
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM (what service managers and `kill` send).
async fn wait_for_signal() -> &'static str {
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
