//! What a server does with each connection, besides answering it: bounds on what hyper
//! buffers for it, and probes that notice a peer that vanished. `server::serve` applies
//! both; an app serving on its own `salvo::Server` calls them as `sse-counter`'s
//! `main.rs` does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! sse_shared::connection::probe_dead_peers(&listener)?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use crate::config::ServerArgs;

/// The most bytes hyper buffers per HTTP/2 stream (~400 KB by default): what a client
/// that stopped reading costs until the write-stall limit.
pub const HTTP2_BUFFER: usize = 64 * 1024;

/// Bounds what hyper buffers per HTTP/1 connection (`--max-header-bytes`) and per
/// HTTP/2 stream (`HTTP2_BUFFER`, 64 KiB), allows 100 streams per HTTP/2 connection, and
/// pings HTTP/2 peers every 30 s (closing one silent for 20 s).
pub fn bound_buffers<A: salvo::conn::Acceptor + Send>(
    server: &mut salvo::Server<A>,
    args: &ServerArgs,
) {
    server.http1_mut().max_buf_size(args.max_header_bytes);
    let http2 = server
        .http2_mut()
        .timer(salvo::rt::tokio::TokioTimer::new());
    http2
        .max_send_buf_size(HTTP2_BUFFER)
        .max_concurrent_streams(100);
    http2.keep_alive_interval(Duration::from_secs(30));
    http2.keep_alive_timeout(Duration::from_secs(20));
}

/// Makes the kernel notice a peer that vanished without a FIN (a phone that lost its
/// network): keepalive probes after 30 s of silence, and (Linux) at most 60 s for sent
/// data to stay unacknowledged. Set on the listening socket, accepted sockets inherit
/// them; without them a dead peer holds its stream slot for ~15 minutes.
pub fn probe_dead_peers(listener: &tokio::net::TcpListener) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(listener);
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    socket.set_tcp_keepalive(&probes)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(Duration::from_secs(60)))?;
    Ok(())
}
