//! What a server does with each connection, besides answering it: bounds on what hyper
//! buffers for it, its TCP options (probes that notice a peer that vanished, no delay
//! on writes), and one `send` per small write ([`SmallWrites`]). `server::serve` applies all three; an app serving on its own
//! `salvo::Server` does as `sse-counter`'s `main.rs` does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! sse_shared::connection::set_socket_options(&listener)?;
//! # Ok(())
//! # }
//! ```

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use salvo::conn::tcp::TcpCoupler;
use salvo::conn::{Accepted, Acceptor, Holding};
use salvo::fuse::ArcFusePolicy;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// The TCP options each accepted connection inherits from the listening socket:
/// - keepalive probes after 30 s of silence, and (Linux) at most 60 s for sent data to
///   stay unacknowledged, so the kernel notices a peer that vanished without a FIN (a
///   phone that lost its network); without them a dead peer holds its stream slot for
///   ~15 minutes;
/// - `TCP_NODELAY`: what is written goes out at once, not held back (Nagle's algorithm)
///   until the peer acknowledges what went before, which a peer that delays its ACKs
///   makes up to 40 ms: a publisher with several requests in flight had its answers
///   hundreds of milliseconds late, and its subscribers their events (`bench
///   publishers`, 500 publishers at 10 a second: publish p50 97 ms, with it 0.7 ms).
pub fn set_socket_options(listener: &tokio::net::TcpListener) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(listener);
    let probes = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    socket.set_tcp_keepalive(&probes)?;
    #[cfg(target_os = "linux")]
    socket.set_tcp_user_timeout(Some(Duration::from_secs(60)))?;
    socket.set_tcp_nodelay(true)?;
    Ok(())
}

/// The most bytes a write gathers into one `send` (see [`SmallWrites`]).
pub const SMALL_WRITE: usize = 4096;

/// An acceptor whose connections write a small response part (an event, most of the
/// time) with one `send` rather than a `writev`. hyper writes each chunk of a streamed
/// body as three parts (its size line, the bytes, CRLF) with `writev`, which costs the
/// kernel more than a plain `send` of the same bytes (`vfs_writev` and the file lock
/// it takes); gathering up to [`SMALL_WRITE`] bytes on the stack and sending them once
/// took about 8% off the CPU per delivered event at one event per write (issue 45's
/// bench). Larger writes go on as `writev`, so nothing is copied into a buffer that
/// would keep its size (hyper's own `writev(false)` does that: measured +24 KiB per
/// stream after 16 KB events).
pub struct SmallWrites<A>(pub A);

impl<A> Acceptor for SmallWrites<A>
where
    A: Acceptor,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Coupler = TcpCoupler<OneSend<A::Stream>>;
    type Stream = OneSend<A::Stream>;

    fn holdings(&self) -> &[Holding] {
        self.0.holdings()
    }

    async fn accept(
        &mut self,
        fuse_policy: Option<ArcFusePolicy>,
    ) -> std::io::Result<Accepted<Self::Coupler, Self::Stream>> {
        let accepted = self.0.accept(fuse_policy).await?;
        Ok(Accepted {
            coupler: TcpCoupler::new(),
            stream: OneSend(accepted.stream),
            fuse_config: accepted.fuse_config,
            conn_ctrl: accepted.conn_ctrl,
            local_addr: accepted.local_addr,
            remote_addr: accepted.remote_addr,
            http_scheme: accepted.http_scheme,
        })
    }
}

/// `bufs` (at most `N` bytes in all) gathered on the stack and written at once. What
/// was written is a prefix of the parts in order, as a vectored write's is.
fn send_gathered<const N: usize, S: AsyncWrite + Unpin>(
    inner: Pin<&mut S>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<std::io::Result<usize>> {
    let mut gathered = [0u8; N];
    let mut len = 0;
    for buf in bufs {
        gathered[len..len + buf.len()].copy_from_slice(buf);
        len += buf.len();
    }
    inner.poll_write(cx, &gathered[..len])
}

/// A connection of [`SmallWrites`]: a vectored write of at most [`SMALL_WRITE`] bytes is
/// gathered and written at once; everything else is passed on as it is.
pub struct OneSend<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for OneSend<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for OneSend<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let inner = Pin::new(&mut self.0);
        match total {
            _ if bufs.len() < 2 => inner.poll_write_vectored(cx, bufs),
            // Most events: a buffer that costs next to nothing to clear, on every write.
            0..=512 => send_gathered::<512, S>(inner, cx, bufs),
            513..=SMALL_WRITE => send_gathered::<SMALL_WRITE, S>(inner, cx, bufs),
            _ => inner.poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// What the connection under a [`OneSend`] was asked to do.
    #[derive(Default)]
    struct Calls {
        writes: Vec<Vec<u8>>,
        vectored: Vec<usize>,
    }

    impl AsyncWrite for Calls {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            self.vectored.push(bufs.len());
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A connection accepted on a listener given the options has them: writes go out
    /// at once (`TCP_NODELAY`) and dead peers are probed for.
    #[tokio::test]
    async fn accepted_connections_inherit_the_socket_options() -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        set_socket_options(&listener)?;
        let client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
        let (accepted, _) = listener.accept().await?;
        let socket = socket2::SockRef::from(&accepted);
        assert!(socket.tcp_nodelay()?, "accepted without TCP_NODELAY");
        assert!(socket.keepalive()?, "accepted without keepalive probes");
        drop(client);
        Ok(())
    }

    /// An event as hyper writes it (size line, frame, CRLF) goes out as one write of
    /// the three parts in order; a write past `SMALL_WRITE` stays vectored, uncopied.
    #[tokio::test]
    async fn a_small_vectored_write_is_one_write_and_a_large_one_stays_vectored()
    -> std::io::Result<()> {
        let mut conn = OneSend(Calls::default());
        assert!(conn.is_write_vectored(), "hyper keeps queueing the parts");
        let parts = [&b"e\r\n"[..], b"data: hello\n\n", b"\r\n"];
        let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let written = conn.write_vectored(&slices).await?;
        assert_eq!(written, parts.concat().len());
        assert_eq!(conn.0.writes, vec![parts.concat()]);
        assert!(conn.0.vectored.is_empty());

        // Past the smallest buffer, still one write.
        let medium = vec![b'm'; 1000];
        let slices = [
            IoSlice::new(b"3e8\r\n"),
            IoSlice::new(&medium),
            IoSlice::new(b"\r\n"),
        ];
        assert_eq!(conn.write_vectored(&slices).await?, 1007);
        assert_eq!(conn.0.writes.len(), 2);
        assert_eq!(conn.0.writes[1].len(), 1007);

        let large = vec![b'x'; SMALL_WRITE];
        let slices = [
            IoSlice::new(b"1000\r\n"),
            IoSlice::new(&large),
            IoSlice::new(b"\r\n"),
        ];
        let written = conn.write_vectored(&slices).await?;
        assert_eq!(written, SMALL_WRITE + 8);
        assert_eq!(
            conn.0.vectored,
            vec![3],
            "past SMALL_WRITE: one vectored write"
        );
        assert_eq!(conn.0.writes.len(), 2);
        Ok(())
    }
}
