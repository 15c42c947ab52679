//! Test support (feature `testing`): start an app on `127.0.0.1:0`, read its streams
//! with an independent parser (`sse-stream` over `reqwest`), run its binary as a real
//! process, and drive a real Chromium through chromedriver.
//!
//! Every wait here is bounded, so a hang fails the test quickly with a message.
//!
//! One tool a file: [`TestApp`] (`app`), the shared client and what answers are
//! checked against (`http`: [`http`], [`check_contract`], [`expect_error`]),
//! [`SseConnection`] (`sse`), [`AppProcess`] (`process`), [`Browser`] (`browser`),
//! [`RedisServer`] (`redis_server`), [`Nginx`] (`nginx`), [`FaultyProxy`] (`proxy`),
//! [`ReadmeCommands`] (`readme`), [`ClientProcess`] (`client`: the npm, PyPI and Go
//! clients), [`openssl_key`] (`keys`);
//! here, the bounded waits and the figures the reliability suite prints.
//!
//! ```
//! use salvo::prelude::*;
//! use sse_shared::ServerArgs;
//! use sse_shared::testing::{SseConnection, TestApp, TestResult};
//!
//! #[handler]
//! async fn events(res: &mut Response) {
//!     let frames = futures_util::stream::iter([bytes::Bytes::from_static(b"data: hi\n\n")]);
//!     let settings = sse_shared::stream_route::StreamSettings::default();
//!     sse_shared::event_stream::respond(res, &settings, frames);
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> TestResult {
//! let app = TestApp::start(ServerArgs::default(), |_| Router::with_path("events").get(events)).await?;
//! let mut stream = SseConnection::open(&app.url("/events"), &[]).await?;
//! assert_eq!(stream.next_event().await?.data.as_deref(), Some("hi"));
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use salvo::Router;
pub use sse_stream::Sse;
use sse_stream::SseByteStream;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::config::ServerArgs;
use crate::server::{self, ServerError};
use crate::streams::Streams;

/// WebDriver locators, for tests that find elements themselves.
pub use fantoccini::Locator;
pub use fantoccini::wd::WindowHandle;
/// The HTTP client the helpers use, for tests that build their own requests.
pub use reqwest;

/// What test helpers return on failure.
pub type TestError = Box<dyn std::error::Error + Send + Sync>;
/// A test helper's result.
pub type TestResult<T = ()> = Result<T, TestError>;

/// Reports a measured figure: printed, and appended to `<target>/tmp/figures.txt`,
/// which the test script shows at the end (test output is captured otherwise).
pub fn figure(test: &str, what: &str, value: impl std::fmt::Display) {
    let line = format!("figure | {test} | {what} | {value}");
    println!("{line}");
    // The test binary runs from <target>/<profile>/deps/.
    let file = std::env::current_exe().ok().and_then(|exe| {
        Some(
            exe.parent()?
                .parent()?
                .parent()?
                .join("tmp")
                .join("figures.txt"),
        )
    });
    if let Some(file) = file {
        use std::io::Write;
        let _ = std::fs::create_dir_all(file.parent().unwrap_or(&file));
        if let Ok(mut out) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
        {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// `<target>/tmp`, where tests leave what a person may want to look at afterwards.
fn target_tmp() -> Option<PathBuf> {
    // The test binary runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("tmp"))
}

/// The default bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// Fails with `what` if `future` takes longer than `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = T>,
) -> TestResult<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| format!("timed out after {limit:?} waiting for {what}").into())
}

/// Polls `check` every 50 ms until it returns true, failing after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = TestResult<bool>>,
{
    within(limit, what, async {
        loop {
            if check().await? {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?
}

/// Runs `command` to its end and collects its output, failing after `limit` (the
/// process is killed then).
pub async fn command_output(command: &mut Command, limit: Duration) -> TestResult<Output> {
    let run = command.kill_on_drop(true).output();
    Ok(within(limit, "a command to finish", run).await??)
}

/// Connects to `addr` and writes `request` (often a request that is never finished, or a
/// stream that is never read): a client that then does nothing.
pub async fn send_raw(
    addr: impl tokio::net::ToSocketAddrs,
    request: &[u8],
) -> TestResult<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    socket.write_all(request).await?;
    Ok(socket)
}

/// A bare page on its own port of 127.0.0.1 (another origin, and the same site as
/// `http://127.0.0.1:<any port>`), with no CSP in the way of a test's scripts: what a
/// front-end dev server, another app or an attacker's page would serve. Returns its
/// URL; the same page is another *site* at `http://localhost:<port>`.
pub async fn another_origin() -> TestResult<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let page = "<!doctype html><title>another origin</title><p>hi</p>";
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(url)
}

/// Starts the binary `bin` with `args` (and `--port 0`), which must refuse to start:
/// returns its exit code and what it wrote to stderr.
pub async fn refused_at_start(bin: &str, args: &[&str]) -> TestResult<(Option<i32>, String)> {
    let mut command = Command::new(bin);
    command.args(args).args(["--port", "0"]);
    let output = command_output(&mut command, WAIT).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        return Err(format!("{args:?} started and exited cleanly: {stderr}").into());
    }
    Ok((output.status.code(), stderr))
}

mod app;
mod browser;
mod client;
mod http;
mod keys;
mod nginx;
mod process;
mod proxy;
mod readme;
mod redis_server;
mod sse;

pub use app::*;
pub use browser::*;
pub use client::*;
pub use http::*;
pub use keys::*;
pub use nginx::*;
pub use process::*;
pub use proxy::*;
pub use readme::*;
pub use redis_server::*;
pub use sse::*;
