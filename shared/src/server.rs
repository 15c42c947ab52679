//! Server bootstrap: logging, binding, the common routes, and a shutdown that ends
//! every stream and exits within the grace period, however many clients are connected.
//! The connections themselves are served by [`crate::connection`].
//!
//! ```ignore
//! let args = Cli::parse();
//! let streams = Streams::from_args(&args.server);
//! sse_shared::server::run(&args.server, streams, my_router).await
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use salvo::prelude::*;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerArgs;
use crate::connection::{self, ConnectionSettings};
use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::page::security_headers;
use crate::shutdown::Shutdown;
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
    stop: Shutdown,
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
    pub async fn shut_down(mut self, grace: Duration) -> bool {
        self.streams.shut_down();
        self.stop.start();
        if tokio::time::timeout(grace, &mut self.task).await.is_ok() {
            return true;
        }
        // Past the grace period: close whatever is still open.
        self.task.abort();
        let _ = self.task.await;
        false
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
    let bind_error = |source| ServerError::Bind {
        addr: addr.clone(),
        source,
    };
    let tls = tls_config(args)?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let settings = ConnectionSettings {
        // What hyper may buffer for one connection (~400 KB by default): for a client
        // that stopped reading, that is what it costs until the write-stall limit.
        http1_max_buf: HTTP1_BUFFER,
        header_read: connection::HEADER_READ,
        write_stall: streams.settings().write_stall,
        tls: tls.map(|config| TlsAcceptor::from(Arc::new(config))),
    };
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let stop = Shutdown::new();
    let task = tokio::spawn(connection::serve(
        listener,
        service(&streams, app),
        settings,
        stop.clone(),
    ));
    Ok(RunningServer {
        addr: local,
        scheme,
        stop,
        streams,
        task,
    })
}

/// The TLS configuration the options ask for, if any: the certificate files, or a
/// self-signed certificate made now; ALPN offers HTTP/2, then HTTP/1.1.
fn tls_config(args: &ServerArgs) -> Result<Option<rustls::ServerConfig>, ServerError> {
    let (cert_pem, key_pem) = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(cert), Some(key), _) => {
            let read = |path: &std::path::PathBuf| {
                std::fs::read(path)
                    .map_err(|e| ServerError::Tls(format!("cannot read {}: {e}", path.display())))
            };
            (read(cert)?, read(key)?)
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
            (
                made.cert.pem().into_bytes(),
                made.signing_key.serialize_pem().into_bytes(),
            )
        }
        _ => return Ok(None),
    };
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("bad certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(
            "no certificate in the certificate file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| ServerError::Tls(format!("bad private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(config))
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
