//! sse-counter over real TCP, read by an independent SSE parser (`sse-stream`).

use std::time::Duration;

use futures_util::StreamExt;
use salvo::prelude::*;
use sse_shared::ServerArgs;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, WAIT, expect_error, http, json_data, wait_until, within,
};

async fn counter(args: ServerArgs, every: Duration) -> TestResult<TestApp> {
    TestApp::start(args, |_| sse_counter::router(every)).await
}

async fn fast_counter() -> TestResult<TestApp> {
    counter(ServerArgs::default(), Duration::from_millis(20)).await
}

/// Reads `n` events and returns their (id, data) pairs.
async fn take(conn: &mut SseConnection, n: usize) -> TestResult<Vec<(String, String)>> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let event = conn.next_event().await?;
        seen.push((event.id.unwrap_or_default(), event.data.unwrap_or_default()));
    }
    Ok(seen)
}

fn numbered(from: u64, n: usize) -> Vec<(String, String)> {
    (from..from + n as u64)
        .map(|i| (i.to_string(), i.to_string()))
        .collect()
}

#[tokio::test]
async fn sse_headers_and_never_compressed() -> TestResult {
    let app = fast_counter().await?;
    let conn = SseConnection::open(
        &app.url("/events"),
        &[("accept-encoding", "gzip, br, zstd")],
    )
    .await?;
    assert_eq!(conn.status, 200);
    let header = |name: &str| {
        conn.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("text/event-stream"));
    assert_eq!(header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(header("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(header("content-encoding"), None);
    Ok(())
}

#[tokio::test]
async fn retry_first_then_numbered_events_from_one() -> TestResult {
    let app = counter(
        ServerArgs {
            retry: Duration::from_millis(1234),
            retry_jitter_pct: 0,
            ..ServerArgs::default()
        },
        Duration::from_millis(20),
    )
    .await?;
    let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
    let first = conn.next().await?;
    assert_eq!(
        first.retry,
        Some(1234),
        "the first frame is retry: {first:?}"
    );
    assert_eq!(first.data, None);
    assert_eq!(take(&mut conn, 5).await?, numbered(1, 5));
    Ok(())
}

#[tokio::test]
async fn last_event_id_goes_on_at_the_next_number() -> TestResult {
    let app = fast_counter().await?;
    let mut header = SseConnection::open(&app.url("/events"), &[("last-event-id", "41")]).await?;
    assert_eq!(take(&mut header, 3).await?, numbered(42, 3));

    let mut query = SseConnection::open(&app.url("/events?lastEventId=7"), &[]).await?;
    assert_eq!(take(&mut query, 2).await?, numbered(8, 2));

    // The browser's own header is newer than a query string from the first connect.
    let mut both = SseConnection::open(
        &app.url("/events?lastEventId=7"),
        &[("last-event-id", "99")],
    )
    .await?;
    assert_eq!(take(&mut both, 1).await?, numbered(100, 1));
    Ok(())
}

#[tokio::test]
async fn a_bad_id_gets_reset_then_counts_from_one() -> TestResult {
    let app = fast_counter().await?;
    let too_big = u64::MAX.to_string();
    let long = "9".repeat(6_000); // within the 8 KiB request head (--max-header-bytes)
    for (id, reason) in [
        ("garbage", "invalid-id"),
        ("-1", "invalid-id"),
        ("", "invalid-id"),
        (long.as_str(), "invalid-id"),
        (too_big.as_str(), "unknown-id"),
    ] {
        let mut conn = SseConnection::open(&app.url("/events"), &[("last-event-id", id)]).await?;
        assert_eq!(conn.status, 200, "never an error status for a bad id");
        let reset = conn.next_event().await?;
        assert_eq!(reset.event.as_deref(), Some("reset"), "for id {id:?}");
        assert_eq!(reset.id, None, "a reset carries no id");
        let data: serde_json::Value = json_data(&reset)?;
        assert_eq!(data["reason"], reason, "for id {id:?}");
        assert!(data.get("oldest").is_some() && data.get("latest").is_some());
        assert_eq!(take(&mut conn, 2).await?, numbered(1, 2));
    }
    Ok(())
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments() -> TestResult {
    // Counting once an hour, the stream is idle after the first number.
    let app = counter(
        ServerArgs {
            keep_alive: Duration::from_secs(1),
            ..ServerArgs::default()
        },
        Duration::from_secs(3600),
    )
    .await?;
    // Comments are invisible to an SSE parser, so read the raw bytes.
    let response = http().get(app.url("/events")).send().await?;
    let mut body = response.bytes_stream();
    let mut raw = Vec::new();
    within(Duration::from_secs(5), "a keep-alive comment", async {
        while !String::from_utf8_lossy(&raw).contains("\n: keep-alive\n\n") {
            match body.next().await {
                Some(chunk) => raw.extend_from_slice(&chunk?),
                None => return Err("the stream ended".into()),
            }
        }
        TestResult::Ok(())
    })
    .await??;
    assert!(app.metric("sse_keep_alives_total").await? >= 1.0);
    Ok(())
}

#[tokio::test]
async fn a_disconnect_is_seen_and_the_gauge_returns_to_zero() -> TestResult {
    let app = fast_counter().await?;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
        conn.next_event().await?;
        conns.push(conn);
    }
    assert_eq!(app.metric("sse_open_streams").await?, 3.0);
    drop(conns);
    wait_until(WAIT, "the open-streams gauge to return to 0", || async {
        Ok(app.metric("sse_open_streams").await? == 0.0)
    })
    .await?;
    // Counted by the production stack's hoop around the stream (the counter's numbers
    // are made per client, not published: `sse_events_published_total` is a hub's).
    assert!(app.metric("sse_frames_written_total").await? >= 6.0);
    Ok(())
}

async fn expect_refusal(url: &str, status: u16, code: &str) -> TestResult {
    let response = http().get(url).send().await?;
    assert_eq!(response.status(), status);
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        retry_after.as_deref(),
        Some("3"),
        "Retry-After is the retry delay"
    );
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["error"], code);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    Ok(())
}

/// Opens `fill` streams, expects the next to be refused with `status` and `code` (and
/// counted under `reason`), closes one, and expects its slot to be usable again.
async fn fill_refuse_free(
    args: ServerArgs,
    fill: usize,
    status: u16,
    code: &str,
    reason: &str,
) -> TestResult {
    let app = counter(args, Duration::from_millis(50)).await?;
    let url = app.url("/events");
    let mut open = Vec::new();
    for _ in 0..fill {
        let mut conn = SseConnection::open(&url, &[]).await?;
        conn.next_event().await?;
        open.push(conn);
    }
    expect_refusal(&url, status, code).await?;
    let metrics = http().get(app.url("/metrics")).send().await?.text().await?;
    let series = format!("sse_rejected_streams_total{{reason=\"{reason}\"}} 1");
    assert!(metrics.contains(&series), "{series} missing from {metrics}");
    drop(open.pop());
    wait_until(WAIT, "the freed slot to be usable", || async {
        Ok(http().get(&url).send().await?.status() == 200)
    })
    .await?;
    for conn in &mut open {
        conn.next_event().await?;
    }
    Ok(())
}

#[tokio::test]
async fn past_the_global_limit_503_and_the_slot_comes_back() -> TestResult {
    let args = ServerArgs {
        max_streams: 2,
        ..ServerArgs::default()
    };
    fill_refuse_free(args, 2, 503, "server-full", "server-full").await
}

#[tokio::test]
async fn past_the_per_ip_limit_429_and_the_slot_comes_back() -> TestResult {
    let args = ServerArgs {
        max_streams_per_ip: 1,
        ..ServerArgs::default()
    };
    fill_refuse_free(args, 1, 429, "too-many-streams", "per-ip-limit").await
}

#[tokio::test]
async fn shutdown_ends_every_open_stream() -> TestResult {
    let app = fast_counter().await?;
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
        conn.next_event().await?;
        conns.push(conn);
    }
    let stopped = app.server.shut_down();
    let ended = async {
        for conn in &mut conns {
            conn.expect_end(WAIT).await?;
        }
        TestResult::Ok(())
    };
    let (stopped, ended) = within(Duration::from_secs(10), "shutdown", async {
        tokio::join!(stopped, ended)
    })
    .await?;
    ended?;
    assert!(stopped, "the server stopped within the grace period");
    Ok(())
}

#[tokio::test]
async fn common_routes_and_json_errors() -> TestResult {
    #[handler]
    async fn explode() -> &'static str {
        panic!("a handler bug")
    }
    // Capture this test's log lines (the runtime is this thread's, so the server's too).
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let app = TestApp::start(ServerArgs::default(), |_| {
        sse_counter::router(Duration::from_secs(1)).push(Router::with_path("explode").get(explode))
    })
    .await?;

    let health = http().get(app.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await?, "ok");

    let metrics = http().get(app.url("/metrics")).send().await?.text().await?;
    for name in [
        "sse_open_streams",
        "sse_events_published_total",
        "sse_frames_written_total",
        "sse_keep_alives_total",
        "sse_streams_closed_slow_total",
        "sse_rejected_streams_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }

    for (method, path, status, code) in [
        ("GET", "/nowhere", 404, "not-found"),
        ("GET", "/static/..%2F..%2FCargo.toml", 404, "not-found"),
        ("GET", "/static/../Cargo.toml", 404, "not-found"),
        ("POST", "/events", 405, "method-not-allowed"),
        ("GET", "/explode", 500, "internal"),
    ] {
        let response = http()
            .request(method.parse()?, app.url(path))
            .send()
            .await?;
        expect_error(response, status, code).await?;
    }
    // The server survived the panic, and said so in its log.
    assert_eq!(http().get(app.url("/healthz")).send().await?.status(), 200);
    let logged = logs.text();
    assert!(
        logged.contains("panic occurred") && logged.contains("ERROR"),
        "{logged}"
    );
    Ok(())
}

#[tokio::test]
async fn the_page_and_its_files_with_a_strict_csp() -> TestResult {
    let app = fast_counter().await?;
    let page = http().get(app.url("/")).send().await?;
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = page.text().await?;
    assert!(!html.contains("<script>"), "no inline script");
    for file in [
        "/static/sse.css",
        "/static/counter.css",
        "/static/counter.js",
        "/static/shared-stream.js",
    ] {
        assert!(html.contains(file), "the page links {file}");
        let response = http().get(app.url(file)).send().await?;
        assert_eq!(response.status(), 200, "{file}");
    }
    // The SharedWorker's script is served, not loaded by the page itself.
    let worker = "/static/stream.worker.js";
    assert!(!html.contains(worker));
    assert_eq!(http().get(app.url(worker)).send().await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_per_ip_limit_uses_x_forwarded_for() -> TestResult {
    let localhost: std::net::IpAddr = "127.0.0.1".parse()?;
    for trusted in [true, false] {
        let args = ServerArgs {
            max_streams_per_ip: 1,
            trusted_proxies: if trusted { vec![localhost] } else { Vec::new() },
            ..ServerArgs::default()
        };
        let app = counter(args, Duration::from_millis(50)).await?;
        let url = app.url("/events");
        let mut first = SseConnection::open(&url, &[("x-forwarded-for", "203.0.113.7")]).await?;
        first.next_event().await?;
        // Another client behind the same proxy: its own address when the proxy is
        // trusted; the proxy's (already at its limit) when not.
        let second = http()
            .get(&url)
            .header("x-forwarded-for", "198.51.100.9, 203.0.113.8")
            .send()
            .await?;
        assert_eq!(
            second.status(),
            if trusted { 200 } else { 429 },
            "trusted: {trusted}"
        );
        // The same client again is over the limit either way.
        let again = http()
            .get(&url)
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await?;
        assert_eq!(again.status(), 429);
    }
    Ok(())
}

/// Log lines written during a test.
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut bytes) = self.0.lock() {
            bytes.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn each_stream_gets_its_own_retry_within_the_jitter() -> TestResult {
    // The default: 3000 ms, spread by up to 25% either way.
    let app = fast_counter().await?;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
        let retry = conn.next().await?.retry.ok_or("no retry first")?;
        assert!(
            (2250..=3750).contains(&retry),
            "{retry} ms is outside 3000 +- 25%"
        );
        seen.insert(retry);
    }
    // 40 draws from 1,500 values: a fixed value would give 1, a real spread ~40.
    assert!(seen.len() >= 30, "too few distinct values: {seen:?}");
    let (low, high) = (seen.first().copied(), seen.last().copied());
    assert!(
        high.zip(low).is_some_and(|(h, l)| h - l >= 500),
        "{low:?}..{high:?}"
    );
    Ok(())
}
