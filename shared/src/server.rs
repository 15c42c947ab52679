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

use salvo::conn::{Acceptor, Listener, TcpListener};
use salvo::prelude::*;
use salvo::server::ServerHandle;
use tokio::task::JoinHandle;

use crate::config::ServerArgs;
use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::page::security_headers;
use crate::stream::Streams;

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
    handle: ServerHandle,
    streams: Streams,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Binds `args.host:args.port` and serves `app` (with the common routes) in a task.
pub async fn start(
    args: &ServerArgs,
    streams: Streams,
    app: Router,
) -> Result<RunningServer, ServerError> {
    let addr = format!("{}:{}", args.host, args.port);
    let acceptor = TcpListener::new(addr.clone())
        .try_bind()
        .await
        .map_err(|e| ServerError::Bind {
            addr: addr.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let local = acceptor
        .holdings()
        .first()
        .and_then(|holding| holding.local_addr.clone().into_std())
        .ok_or_else(|| ServerError::Bind {
            addr,
            source: std::io::Error::other("the listener reported no address"),
        })?;
    let server = Server::new(acceptor);
    let handle = server.handle();
    let service = service(&streams, app);
    let task = tokio::spawn(server.serve(service));
    Ok(RunningServer {
        addr: local,
        handle,
        streams,
        task,
    })
}

/// Runs an example's server until SIGINT or SIGTERM: prints `listening on
/// http://HOST:PORT` as the first line on stdout, then on a signal ends every stream
/// and exits within `--shutdown-grace-secs`.
pub async fn run(args: &ServerArgs, streams: Streams, app: Router) -> ExitCode {
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
