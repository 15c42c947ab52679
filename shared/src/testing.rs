//! Test support (feature `testing`): start an app on `127.0.0.1:0`, read its streams
//! with an independent parser (`sse-stream` over `reqwest`), run its binary as a real
//! process, and drive a real Chromium through chromedriver.
//!
//! Every wait here is bounded, so a hang fails the test quickly with a message.

use std::future::Future;
use std::net::TcpListener as StdTcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use salvo::Router;
use sse_stream::{Sse, SseByteStream};
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

/// A server started in this process by [`server::serve`], the code every example's
/// `main` runs, with a channel in place of the signal.
pub struct RunningServer {
    addr: std::net::SocketAddr,
    scheme: String,
    grace: Duration,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Binds and serves `app` as `args` say; returns once it accepts connections.
    pub async fn start(args: &ServerArgs, streams: Streams, app: Router) -> TestResult<Self> {
        let (bound, listening) = tokio::sync::oneshot::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (args, grace) = (args.clone(), args.shutdown_grace);
        let task = tokio::spawn(async move {
            let listening = move |scheme: &str, addr| {
                let _ = bound.send((scheme.to_owned(), addr));
            };
            let stop = async move {
                let _ = stopped.await;
            };
            server::serve(&args, streams, app, listening, stop).await
        });
        match within(WAIT, "the server to listen", listening).await? {
            Ok((scheme, addr)) => Ok(Self {
                addr,
                scheme,
                grace,
                stop,
                task,
            }),
            // It never listened: say why.
            Err(_) => match within(WAIT, "the server's start error", task).await?? {
                Err(e) => Err(e.into()),
                Ok(()) => Err("the server stopped before it listened".into()),
            },
        }
    }

    /// The address it listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// `http://host:port`, or `https://` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Does what a signal does (ends every stream, then a graceful stop), and waits at
    /// most `--shutdown-grace-secs` for the server to finish. Returns whether it did.
    pub async fn shut_down(self) -> bool {
        let Self {
            grace,
            stop,
            mut task,
            ..
        } = self;
        let _ = stop.send(());
        if tokio::time::timeout(grace, &mut task).await.is_ok() {
            return true;
        }
        task.abort();
        let _ = task.await;
        false
    }
}

impl Default for ServerArgs {
    /// The options' defaults (as `--help` shows them), on port 0 (a free port), as tests want.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            retry: Duration::from_millis(3000),
            body_deadline: crate::config::BODY_DEADLINE,
            retry_jitter_pct: 25,
            cors_origins: Vec::new(),
            max_header_bytes: crate::config::HEADER_BYTES,
            max_new_streams_per_sec: 0,
            drain_spread: Duration::from_millis(3000),
            max_stream_lifetime: Duration::from_secs(0),
            keep_alive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
            max_streams: 10_000,
            max_streams_per_ip: 100,
            write_stall: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
        }
    }
}

/// An app started in this process on `127.0.0.1:0`.
pub struct TestApp {
    /// The running server.
    pub server: RunningServer,
    /// Its streams (settings, limits, metrics, shutdown).
    pub streams: Streams,
}

impl TestApp {
    /// Starts the router that `app` builds, with these options (`port` is ignored: 0).
    pub async fn start(args: ServerArgs, app: impl FnOnce(&Streams) -> Router) -> TestResult<Self> {
        let args = ServerArgs {
            host: "127.0.0.1".into(),
            port: 0,
            ..args
        };
        let streams = Streams::from_args(&args);
        let router = app(&streams);
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// Serves `router` with ready-made `streams` (when something else, such as a hub
    /// fed by Redis, had to be built from them first).
    pub async fn serve(args: ServerArgs, streams: Streams, router: Router) -> TestResult<Self> {
        let args = ServerArgs {
            host: "127.0.0.1".into(),
            port: 0,
            ..args
        };
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// Like [`TestApp::serve`], on the port `args` names (to restart on the same port).
    pub async fn serve_at(args: ServerArgs, streams: Streams, router: Router) -> TestResult<Self> {
        let server = RunningServer::start(&args, streams.clone(), router).await?;
        Ok(Self { server, streams })
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// The value of an unlabelled metric on `/metrics`, e.g. `sse_open_streams`.
    pub async fn metric(&self, name: &str) -> TestResult<f64> {
        metric(&self.server.url(), name).await
    }
}

/// Checks that `events`, read from the stream at `path`, are named `names` (`""`:
/// unnamed), then the contract the app at `base` serves at `GET /openapi.json` and the
/// events against it, with `scripts/openapi-check.py`: the document must be valid
/// OpenAPI (openapi-spec-validator), and each event must match its stream's
/// `itemSchema`, its JSON `data` strictly. The Python is `OPENAPI_PYTHON`, else
/// `<target>/openapi-venv/bin/python`, which `scripts/test` makes.
pub async fn check_contract(base: &str, path: &str, events: &[Sse], names: &[&str]) -> TestResult {
    let read: Vec<_> = events
        .iter()
        .map(|e| e.event.as_deref().unwrap_or(""))
        .collect();
    if read != names {
        return Err(format!("the events read are {read:?}, not {names:?}").into());
    }
    let document = http().get(format!("{base}/openapi.json")).send().await?;
    if document.status() != 200 {
        return Err(format!("GET /openapi.json: {}", document.status()).into());
    }
    let document = document.text().await?;
    let events: Vec<_> = events
        .iter()
        .map(|sse| {
            serde_json::json!({ "path": path, "event": sse.event, "data": sse.data, "id": sse.id })
        })
        .collect();
    let dir = target_tmp().ok_or("no target directory")?;
    std::fs::create_dir_all(&dir)?;
    let name = format!("openapi-{}-{:x}", std::process::id(), rand::random::<u64>());
    let (doc_file, events_file) = (
        dir.join(format!("{name}.json")),
        dir.join(format!("{name}-events.json")),
    );
    std::fs::write(&doc_file, &document)?;
    std::fs::write(&events_file, serde_json::to_string(&events)?)?;
    let python = match std::env::var_os("OPENAPI_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => dir
            .parent()
            .ok_or("no target directory")?
            .join("openapi-venv/bin/python"),
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/openapi-check.py");
    let run = Command::new(&python)
        .arg(&script)
        .arg(&doc_file)
        .arg(&events_file)
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(60), "openapi-check.py", run)
        .await?
        .map_err(|e| {
            format!("cannot run {} ({e}): scripts/test makes it (a venv with openapi-spec-validator), or set OPENAPI_PYTHON", python.display())
        })?;
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the contract does not hold (document: {}):\n{said}",
            doc_file.display()
        )
        .into());
    }
    let _ = std::fs::remove_file(&doc_file);
    let _ = std::fs::remove_file(&events_file);
    Ok(())
}

/// Reads an unlabelled metric from `base/metrics`.
pub async fn metric(base: &str, name: &str) -> TestResult<f64> {
    let text = http()
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .ok_or_else(|| format!("metric {name} not found in:\n{text}"))?
        .trim()
        .parse::<f64>()
        .map_err(|e| format!("metric {name}: {e}").into())
}

/// A plain HTTP client for tests (no proxy, no compression unless asked for), shared
/// by every helper so thousands of streams share one pool and one resolver.
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
        .clone()
}
/// Checks an error response as every example sends it: `status`, a JSON body with
/// exactly `error` (= `code`) and a non-empty `message`. Returns the body.
pub async fn expect_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> TestResult<serde_json::Value> {
    let got = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // Not read when it is not JSON (an event stream's body never ends), and read
    // within WAIT when it is.
    if !json {
        return Err(format!("expected {status} {code}, got {got}, not JSON").into());
    }
    let body: serde_json::Value = within(WAIT, "an error's body", response.json()).await??;
    let fields = body.as_object().map(|o| o.len());
    let message = body["message"].as_str().is_some_and(|m| !m.is_empty());
    if got != status || !json || body["error"] != code || !message || fields != Some(2) {
        return Err(format!("expected {status} {code}, got {got} (JSON: {json}) {body}").into());
    }
    Ok(body)
}

/// Checks the answer to a write while the backend is down: `503` with `retry-after` and
/// the `backend-unavailable` error, and `sse_backend_up` at 0 on `base` soon after.
pub async fn expect_backend_down(response: reqwest::Response, base: &str) -> TestResult {
    if !response.headers().contains_key("retry-after") {
        return Err("a 503 without retry-after".into());
    }
    expect_error(response, 503, "backend-unavailable").await?;
    wait_until(WAIT, "the sse_backend_up gauge to drop", || async {
        Ok(metric(base, "sse_backend_up").await? == 0.0)
    })
    .await
}

/// The `set-cookie` header's whole value (the cookie and its attributes).
pub fn set_cookie(headers: &reqwest::header::HeaderMap) -> TestResult<String> {
    let value = headers.get("set-cookie").ok_or("no set-cookie")?;
    Ok(value.to_str()?.to_owned())
}

/// An event's data, parsed as JSON; an event without data is an error.
pub fn json_data(event: &Sse) -> TestResult<serde_json::Value> {
    let data = event.data.as_deref().ok_or("an event without data")?;
    Ok(serde_json::from_str(data)?)
}

type Events = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// An open SSE response, parsed by the independent `sse-stream` parser.
pub struct SseConnection {
    /// The response status.
    pub status: reqwest::StatusCode,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    events: Events,
}

impl SseConnection {
    /// `GET url` with `accept: text/event-stream` and these extra headers.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> TestResult<Self> {
        let mut request = http().get(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = within(WAIT, "the stream's response headers", request.send()).await??;
        Ok(Self {
            status: response.status(),
            headers: response.headers().clone(),
            events: Box::pin(SseByteStream::new(response.bytes_stream())),
        })
    }

    /// The next block the parser yields (events, and metadata-only blocks such as
    /// `retry:`), within [`WAIT`]. Comments are not blocks: the parser drops them.
    pub async fn next(&mut self) -> TestResult<Sse> {
        self.next_within(WAIT).await
    }

    /// Like [`SseConnection::next`] with another bound.
    pub async fn next_within(&mut self, limit: Duration) -> TestResult<Sse> {
        match within(limit, "the next SSE block", self.events.next()).await? {
            Some(block) => Ok(block?),
            None => Err("the stream ended".into()),
        }
    }

    /// The next block that carries data (skipping metadata-only blocks).
    pub async fn next_event(&mut self) -> TestResult<Sse> {
        loop {
            let block = self.next().await?;
            if block.data.is_some() {
                return Ok(block);
            }
        }
    }

    /// Waits until the server ends the stream cleanly (the body finishes, not a
    /// broken connection), skipping events still in flight.
    pub async fn expect_end(&mut self, limit: Duration) -> TestResult {
        within(limit, "the stream to end", async {
            while let Some(block) = self.events.next().await {
                if let Err(e) = block {
                    return Err(format!("the stream broke instead of ending: {e}").into());
                }
            }
            Ok(())
        })
        .await?
    }
}

/// What sse-chat's `welcome` says: the first event of a member's stream.
pub struct ChatWelcome {
    /// The member's id.
    pub user_id: String,
    /// The member's token (it posts with it).
    pub token: String,
    /// The names of the members online, this one included.
    pub online: Vec<String>,
    /// The whole event data.
    pub data: serde_json::Value,
}

impl SseConnection {
    /// Reads sse-chat's welcome, which must come first, carry no id (it is not part of
    /// the history) and hold a 128-bit token as 32 hex digits.
    pub async fn chat_welcome(&mut self) -> TestResult<ChatWelcome> {
        let welcome = self.next_event().await?;
        if welcome.event.as_deref() != Some("welcome") || welcome.id.is_some() {
            return Err(format!("not a welcome first: {welcome:?}").into());
        }
        let data = json_data(&welcome)?;
        let token = data["token"].as_str().unwrap_or_default().to_owned();
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("not 128 bits as 32 hex digits: {token:?}").into());
        }
        let online = data["online"].as_array().ok_or("no online list")?;
        Ok(ChatWelcome {
            user_id: data["user"]["id"].as_str().ok_or("no user id")?.to_owned(),
            token,
            online: online
                .iter()
                .filter_map(|u| u["name"].as_str().map(str::to_owned))
                .collect(),
            data,
        })
    }
}

/// An example's binary running as a real process.
pub struct AppProcess {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    url: String,
}

impl AppProcess {
    /// Starts `binary` (use `env!("CARGO_BIN_EXE_<name>")`) on 127.0.0.1 with `args`
    /// (and `--port 0` unless they name a port), and waits for its `listening on
    /// http://…` line.
    pub async fn spawn(binary: &str, args: &[&str]) -> TestResult<Self> {
        let mut command = Command::new(binary);
        command.args(["--host", "127.0.0.1"]);
        if !args.contains(&"--port") {
            command.args(["--port", "0"]);
        }
        let mut child = command
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        within(
            Duration::from_secs(30),
            "the listening line",
            stdout.read_line(&mut line),
        )
        .await??;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line: {line:?}"))?
            .to_owned();
        Ok(Self {
            child,
            _stdout: stdout,
            url,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> TestResult<u16> {
        let port = self.url.rsplit(':').next().ok_or("no port in the url")?;
        Ok(port.parse()?)
    }

    /// Sends SIGTERM, as a service manager would.
    pub async fn terminate(&self) -> TestResult {
        self.signal("TERM").await
    }

    /// Sends the signal `name` (`TERM`, `INT`, ...).
    pub async fn signal(&self, name: &str) -> TestResult {
        let pid = self.child.id().ok_or("the process has already exited")?;
        let mut kill = Command::new("kill");
        kill.args([format!("-{name}"), pid.to_string()]);
        let status = command_output(&mut kill, WAIT).await?.status;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{name} {pid} failed: {status}").into())
        }
    }

    /// Stops the process as a service manager would (SIGTERM) and fails unless it exits
    /// cleanly within 10 s (the default 5 s grace, with room on a loaded machine).
    pub async fn stop(&mut self) -> TestResult {
        self.terminate().await?;
        let status = self.wait(Duration::from_secs(10)).await?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("stopped with {status}").into())
        }
    }

    /// Kills the process at once (SIGKILL): no shutdown, no cleanup, like a crash.
    pub async fn kill(&mut self) -> TestResult {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit, failing after `limit`.
    pub async fn wait(&mut self, limit: Duration) -> TestResult<ExitStatus> {
        Ok(within(limit, "the process to exit", self.child.wait()).await??)
    }
}

/// A fresh headless Chromium driven over WebDriver.
pub struct Browser {
    /// The WebDriver client.
    pub client: fantoccini::Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver (env `CHROMEDRIVER`, default `/usr/bin/chromedriver`) on a
    /// free port and a headless Chromium (env `CHROME`, default `/usr/bin/chromium`)
    /// with a fresh profile.
    pub async fn launch() -> TestResult<Self> {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome_path = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into());
        for path in [&driver_path, &chrome_path] {
            if !std::path::Path::new(path).exists() {
                return Err(format!(
                    "{path} not found: install chromium and chromium-driver (scripts/test does)"
                )
                .into());
            }
        }
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until(Duration::from_secs(20), "chromedriver to start", || async {
            Ok(http()
                .get(format!("{webdriver}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await?;

        let profile =
            std::env::temp_dir().join(format!("sse-test-chromium-{}-{port}", std::process::id()));
        let mut capabilities = serde_json::Map::new();
        // The HTTPS tests serve a self-signed certificate.
        capabilities.insert("acceptInsecureCerts".into(), serde_json::Value::Bool(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chrome_path,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = within(
            Duration::from_secs(30),
            "a Chromium session",
            fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities)
            .connect(&webdriver),
        )
        .await??;
        Ok(Self {
            client,
            driver,
            profile,
        })
    }

    /// Runs `test` with a fresh browser, which is closed afterwards however the test
    /// ended.
    pub async fn run(test: impl AsyncFnOnce(&Browser) -> TestResult) -> TestResult {
        let browser = Self::launch().await?;
        let result = test(&browser).await;
        let closed = browser.close().await;
        result.and(closed)
    }

    /// [`Browser::run`] with two browsers, for two users (cookies are per browser).
    pub async fn run_two(test: impl AsyncFnOnce(&Browser, &Browser) -> TestResult) -> TestResult {
        let (first, second) = Self::launch_two().await?;
        let result = test(&first, &second).await;
        let closed = (first.close().await, second.close().await);
        result.and(closed.0).and(closed.1)
    }

    /// Two browsers, for two users (cookies are per browser); if the second cannot
    /// start, the first is closed.
    pub async fn launch_two() -> TestResult<(Self, Self)> {
        let first = Self::launch().await?;
        match Self::launch().await {
            Ok(second) => Ok((first, second)),
            Err(e) => {
                first.close().await?;
                Err(e)
            }
        }
    }

    /// Runs `script` first in every page this tab loads from now on, before the page's
    /// own scripts (Chrome DevTools' `Page.addScriptToEvaluateOnNewDocument`, through
    /// chromedriver): to take away an API a browser may lack, for instance.
    pub async fn before_each_page(&self, script: &str) -> TestResult {
        let params = serde_json::json!({ "source": script });
        let command = DevTools("Page.addScriptToEvaluateOnNewDocument", params);
        self.client.issue_cmd(command).await?;
        Ok(())
    }

    /// Runs `script` in the page and returns its result.
    pub async fn eval(&self, script: &str) -> TestResult<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&self, css: &str) -> TestResult {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    }

    /// Types `text` into the first element matching a CSS selector.
    pub async fn type_into(&self, css: &str, text: &str) -> TestResult {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await?
            .send_keys(text)
            .await?;
        Ok(())
    }

    /// The text of the first element matching a CSS selector.
    pub async fn text(&self, css: &str) -> TestResult<String> {
        let element = self.client.find(fantoccini::Locator::Css(css)).await?;
        Ok(element.text().await?)
    }

    /// Waits until the text of `css` satisfies `check`, returning that text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> TestResult<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // The element may not exist yet while the page loads.
            let text = self.text(css).await.unwrap_or_default();
            if check(&text) {
                return Ok(text);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {limit:?} waiting for the text of {css}; last text: {text:?}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG screenshot of the page as `<target>/tmp/screenshots/<name>.png`.
    pub async fn save_screenshot(&self, name: &str) -> TestResult {
        let dir = target_tmp().ok_or("no target folder")?.join("screenshots");
        self.screenshot(&dir.join(format!("{name}.png"))).await
    }

    /// Saves a PNG screenshot of the page to `path` (creating its folder).
    pub async fn screenshot(&self, path: &std::path::Path) -> TestResult {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session and chromedriver, and removes the profile.
    pub async fn close(mut self) -> TestResult {
        let closed = within(WAIT, "the browser to close", self.client.clone().close()).await;
        let _ = self.driver.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(closed??)
    }
}

/// A Chrome DevTools command for the current tab, through chromedriver's
/// `goog/cdp/execute`.
#[derive(Debug)]
struct DevTools(&'static str, serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session.unwrap_or_default();
        base.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _: &url::Url) -> (salvo::http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.0, "params": self.1 });
        (salvo::http::Method::POST, Some(body.to_string()))
    }
}

/// A real `redis-server` on a free loopback port, with its data in a fresh folder
/// (append-only, so a restart keeps the streams). Stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` (env `REDIS_SERVER`, default from `PATH`) and waits until it
    /// answers.
    pub async fn start() -> TestResult<Self> {
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("sse-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.restart().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL) and waits until it is gone.
    pub async fn stop(&mut self) -> TestResult {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same port and folder.
    pub async fn restart(&mut self) -> TestResult {
        self.stop().await?;
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot start {binary} ({e}): install redis-server (scripts/test does)")
            })?;
        self.child = Some(child);
        let url = self.url();
        wait_until(
            Duration::from_secs(10),
            "redis-server to answer",
            || async {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return Ok(false);
                };
                let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                    return Ok(false);
                };
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut conn).await;
                Ok(pong.is_ok())
            },
        )
        .await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real nginx on a free loopback port, proxying to `upstreams` round-robin with its
/// default `proxy_buffering on`, the way many deployments run it. Stopped when dropped.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// The nginx configuration this uses (the part that matters for SSE is the
    /// `location` block; see the README).
    pub fn config(dir: &std::path::Path, port: u16, upstreams: &[&str]) -> String {
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u};\n"))
            .collect();
        let d = dir.display();
        format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               upstream app {{\n{servers}  }}\n\
               server {{\n\
                 listen 127.0.0.1:{port};\n\
                 location / {{\n\
                   proxy_pass http://app;\n\
                   proxy_http_version 1.1;\n\
                   proxy_set_header Connection \"\";\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_read_timeout 1h;\n\
                 }}\n\
               }}\n\
             }}\n"
        )
    }

    /// Starts nginx (env `NGINX`, default `/usr/sbin/nginx`) in front of `upstreams`
    /// (`host:port` each) and waits until it accepts connections.
    pub async fn start(upstreams: &[&str]) -> TestResult<Self> {
        let binary = std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into());
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("sse-test-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // Workers may run as another user (nobody, when started as root).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, Self::config(&dir, port, upstreams))?;
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            // One process in the foreground, so stopping it stops everything.
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!("cannot start {binary} ({e}): install nginx (scripts/test does)")
            })?;
        wait_until(Duration::from_secs(10), "nginx to listen", || async {
            Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok())
        })
        .await?;
        Ok(Self { child, port, dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What [`FaultyProxy`] does, once, to the command that carries its marker.
#[derive(Clone, Copy)]
pub enum Fault {
    /// Holds it (and whatever follows on its connection) this long.
    Stall(Duration),
    /// Holds it and every command on every connection, until this long from then: the
    /// client's Redis goes quiet (a partition, or the client's process stalled).
    Silence(Duration),
    /// Closes its connection instead of passing it on.
    Cut,
}

#[derive(Default)]
struct Faults {
    armed: Option<(&'static [u8], Fault)>,
    silent_until: Option<tokio::time::Instant>,
}

type Shared = std::sync::Arc<parking_lot::Mutex<Faults>>;

/// A TCP proxy in front of Redis that, when armed, stalls, silences or cuts the
/// connection the next time a command carrying the marker passes: a Redis that is slow
/// or lost at the worst moment.
pub struct FaultyProxy {
    /// `redis://` URL of the proxy.
    pub url: String,
    faults: Shared,
}

impl FaultyProxy {
    /// A proxy in front of `redis`, passing everything until armed.
    pub async fn start(redis: &RedisServer) -> TestResult<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("redis://{}", listener.local_addr()?);
        let upstream = redis.url().trim_start_matches("redis://").to_owned();
        let faults = Shared::default();
        let relays = std::sync::Arc::clone(&faults);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let faults = std::sync::Arc::clone(&relays);
                tokio::spawn(relay(client, upstream.clone(), faults));
            }
        });
        Ok(Self { url, faults })
    }

    /// The next command carrying `marker` (`b"*"`: any command) meets `fault`.
    pub fn arm(&self, marker: &'static [u8], fault: Fault) {
        self.faults.lock().armed = Some((marker, fault));
    }

    /// Whether the armed fault has struck.
    pub fn has_struck(&self) -> bool {
        self.faults.lock().armed.is_none()
    }
}

async fn relay(client: tokio::net::TcpStream, upstream: String, faults: Shared) {
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_client).await });
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = match tokio::io::AsyncReadExt::read(&mut from_client, &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let (fault, silent_until) = {
            let mut faults = faults.lock();
            let fault = match faults.armed {
                Some((marker, _)) if chunk.windows(marker.len()).any(|w| w == marker) => {
                    faults.armed.take().map(|(_, fault)| fault)
                }
                _ => None,
            };
            if let Some(Fault::Silence(wait)) = fault {
                faults.silent_until = Some(tokio::time::Instant::now() + wait);
            }
            (fault, faults.silent_until)
        };
        match fault {
            Some(Fault::Cut) => return,
            Some(Fault::Stall(wait)) => tokio::time::sleep(wait).await,
            _ => {}
        }
        if let Some(until) = silent_until {
            tokio::time::sleep_until(until).await;
        }
        if tokio::io::AsyncWriteExt::write_all(&mut to_server, chunk)
            .await
            .is_err()
        {
            return;
        }
    }
}
