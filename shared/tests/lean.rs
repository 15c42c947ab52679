//! Serving connections without salvo's server loop keeps its protections: a client that
//! never finishes its request head is disconnected, a write blocked past its limit
//! fails (so the connection closes), a stop closes idle keep-alive connections and
//! lets the serving future end.

use std::error::Error;
use std::time::Duration;

use salvo::prelude::*;
use sse_shared::lean::{self, ConnectionSettings, StallGuard};
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
    let blocked = tokio::time::timeout(Duration::from_secs(60), guarded.write_all(b"more")).await?;
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
