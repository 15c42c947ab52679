//! The counter's server, wired the way a Salvo app is served: `salvo::Server` on a
//! `TcpListener` (HTTPS with salvo's `RustlsConfig` when asked), the fuse's limits, and
//! on SIGINT/SIGTERM: end the streams, then the graceful stop. The other examples call
//! the shared crate's `server::run` (shared/src/server.rs), which takes the same steps
//! in the same order; they are spelled out here so that the smallest example reads on
//! its own, without opening the shared server module.

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use salvo::conn::{Acceptor, TcpListener};
use salvo::fuse::FuseConfig;
use salvo::prelude::*;
use sse_shared::body::BODY_STALL;
use sse_shared::shutdown::shutdown_signal;
use sse_shared::{ServerArgs, Streams, routes};
use sse_shared::{config, connection, logging, server};

mod contract;

/// The smallest SSE stream: a counter with ids, so a reconnect goes on counting.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Milliseconds between counts.
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    interval_ms: u64,
}

// jemalloc, with its background thread, as the allocator: after a wave of clients has
// gone, it gives the freed memory back to the system within seconds, where glibc's
// malloc keeps it (RELIABILITY.md, "Memory after waves").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            server::failure_status(e.as_ref())
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    logging::init_tracing();
    let cli: Cli = config::read_options(Cli::command());
    // Every stream is a socket: allow as many as the system lets this process have.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!("cannot raise the open-files limit: {e}");
    }
    let streams = Streams::from_args(&cli.server);
    let app = sse_counter::router(Duration::from_millis(cli.interval_ms));
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app);
    // The panic net, security headers, same-origin POSTs, /healthz, /metrics, JSON errors.
    let service = routes::service(&streams, app);
    let addr = format!("{}:{}", cli.server.host, cli.server.port);
    let listener = TcpListener::new(addr.clone());
    let cannot_listen = |e: salvo::Error| format!("cannot listen on {addr}: {e}");
    // TLS or not, the listening socket probes for peers that vanished without a FIN
    // and sends what is written at once (its connections inherit both).
    match cli.server.rustls()? {
        Some(tls) => {
            let acceptor = listener
                .rustls(tls)
                .try_bind()
                .await
                .map_err(cannot_listen)?;
            connection::set_socket_options(acceptor.inner().inner())?;
            serve(acceptor, "https", &cli.server, streams, service).await
        }
        None => {
            let acceptor = listener.try_bind().await.map_err(cannot_listen)?;
            connection::set_socket_options(acceptor.inner())?;
            // One `send` per small write (an event), not hyper's `writev` of three parts.
            let acceptor = connection::SmallWrites(acceptor);
            serve(acceptor, "http", &cli.server, streams, service).await
        }
    }
}

async fn serve(
    acceptor: impl Acceptor + 'static,
    scheme: &str,
    args: &ServerArgs,
    streams: Streams,
    service: Service,
) -> Result<(), Box<dyn std::error::Error>> {
    let local = acceptor.holdings().first().map(|h| h.local_addr.clone());
    if let Some(addr) = local.and_then(|a| a.into_std()) {
        println!("listening on {scheme}://{addr}");
    }
    // The fuse's defaults (10 s TLS handshake, 30 s request head), and limits on how long
    // a write may stay blocked (a client that stopped reading is closed, not kept) and
    // on a request body that stops arriving.
    let fuse = FuseConfig::default()
        .with_write_stall_timeout(args.write_stall())
        .with_request_body_timeout(BODY_STALL);
    let mut server = Server::new(acceptor).fuse_config(fuse);
    connection::bound_buffers(&mut server, args);
    let (handle, grace) = (server.handle(), args.shutdown_grace);
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down");
        // First end every stream (a graceful stop waits for responses to finish, and
        // an event stream never does), then stop; past the grace salvo closes the rest.
        streams.shut_down();
        handle.stop_graceful(Some(grace));
    });
    Ok(server.try_serve(service).await?)
}
