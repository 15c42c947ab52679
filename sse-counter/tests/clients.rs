//! A Go service's client against the counter's binary: `github.com/r3labs/sse/v2` from
//! the Go module proxy (`reliability/go`, built by `scripts/test` into `GO_SSE_CLIENT`).
//! Its ids carry the count, so it goes on counting across a server restart.

use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, ClientProcess, TestResult, tool_path};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");
// Streams end at once on SIGTERM (no drain spread), so the restarted server counts
// most of what the client reads.
const ARGS: [&str; 6] = [
    "--interval-ms",
    "200",
    "--retry-ms",
    "100",
    "--drain-spread-ms",
    "0",
];

#[tokio::test]
async fn r3labs_sse_goes_on_counting_after_a_server_restart() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &ARGS).await?;
    let port = app.port()?.to_string();
    let go = tool_path("GO_SSE_CLIENT", "go-sse-client");
    let events = format!("{}/events", app.url());
    let hint = "scripts/test builds it from reliability/go, or set GO_SSE_CLIENT";
    let mut client = ClientProcess::spawn(&go, &[&events, "10"], hint)?;
    let mut seen: Vec<Value> = Vec::new();
    for _ in 0..3 {
        seen.push(client.next().await?);
    }
    // The server restarts on its port; the client comes back with `Last-Event-ID: 3`.
    app.stop().await?;
    let restarted = [&ARGS[..], &["--port", port.as_str()]].concat();
    let _app = AppProcess::spawn(BIN, &restarted).await?;
    for _ in 0..7 {
        seen.push(client.next().await?);
    }
    let want: Vec<Value> = (1..=10)
        .map(|n| json!({"type": "message", "id": n.to_string(), "data": n.to_string()}))
        .collect();
    assert_eq!(seen, want, "1 to 10, each once, the id the count");
    Ok(())
}
