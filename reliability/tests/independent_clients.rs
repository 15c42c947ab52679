//! Two independent clients read the same stream and must agree event for event: the
//! `sse-stream` parser (Rust) and the npm `eventsource` package (a WHATWG EventSource
//! for Node), including a reconnect with `Last-Event-ID` across a server restart.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sse_resume::ResumeEvent;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{RedisServer, SseConnection, TestApp, TestResult, wait_until, within};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs, Streams};
use tokio::io::{AsyncBufReadExt, BufReader};

const NOTES: usize = 20;
const NODE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/node");

/// sse-resume on Redis, in this process, on `port` (0: any).
async fn instance(redis: &RedisServer, port: u16) -> TestResult<(TestApp, Publisher<ResumeEvent>)> {
    let args = ServerArgs {
        port,
        retry: Duration::from_millis(300),
        ..ServerArgs::default()
    };
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let log = sse_redis::publisher(
        Some(&redis.url()),
        "sse-resume:events",
        hub,
        streams.shutdown_token(),
    )
    .await?;
    let router = sse_resume::router(&log);
    Ok((TestApp::serve_at(args, streams, router).await?, log))
}

/// (type, id, data) of the notes a reconnecting `sse-stream` client reads.
async fn rust_client(url: String) -> TestResult<Vec<(String, String, String)>> {
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    while seen.len() < NOTES {
        let headers: Vec<(&str, &str)> = cursor
            .iter()
            .map(|c| ("last-event-id", c.as_str()))
            .collect();
        let Ok(mut conn) = SseConnection::open(&url, &headers).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while let Ok(event) = conn.next_within(Duration::from_secs(30)).await {
            if event.event.as_deref() == Some("note") {
                let id = event.id.unwrap_or_default();
                cursor = Some(id.clone());
                seen.push(("note".into(), id, event.data.unwrap_or_default()));
                if seen.len() == NOTES {
                    break;
                }
            }
        }
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_and_npm_eventsource_agree_across_a_restart() -> TestResult {
    if !Path::new(NODE_DIR)
        .join("node_modules/eventsource")
        .exists()
    {
        return Err(format!(
            "{NODE_DIR}/node_modules is missing: run scripts/test (it runs npm ci there)"
        )
        .into());
    }
    let redis = RedisServer::start().await?;
    let (first, log) = instance(&redis, 0).await?;
    let port = first.server.local_addr().port();
    let url = first.url("/events");

    let mut node = tokio::process::Command::new("node")
        .arg(Path::new(NODE_DIR).join("read-events.mjs"))
        .args([url.as_str(), &NOTES.to_string(), "note"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run node ({e}); Node.js 20 is needed"))?;
    let stdout = node.stdout.take().ok_or("no stdout")?;
    let node_lines = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut events = Vec::new();
        while let Some(line) = lines.next_line().await? {
            let event: serde_json::Value = serde_json::from_str(&line)?;
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            events.push((field("type"), field("id"), field("data")));
        }
        TestResult::Ok(events)
    });
    let rust = tokio::spawn(rust_client(url.clone()));
    wait_until(
        Duration::from_secs(20),
        "both clients to connect",
        || async { Ok(first.metric("sse_open_streams").await? == 2.0) },
    )
    .await?;

    // Texts an SSE parser can get wrong: several lines, CRLF, a leading space, a BOM,
    // field names inside, an empty line, non-ASCII.
    let texts = [
        "plain",
        "two\nlines",
        "crlf\r\nend",
        " leading space",
        "\u{feff}bom",
        "data: inside",
        "event: nope\nid: 7",
        "trailing\n",
        "\n",
        "émoji 🦀",
    ];
    for text in texts {
        log.publish(ResumeEvent::Note(text.into())).await?;
    }
    wait_until(
        Duration::from_secs(10),
        "the first half to be delivered",
        || async { Ok(first.metric("sse_frames_written_total").await? >= 4.0) },
    )
    .await?;
    // Restart: the streams end, both clients reconnect on their own with their last id.
    assert!(first.server.shut_down().await);
    for text in texts {
        log.publish(ResumeEvent::Note(format!("after restart: {text}")))
            .await?;
    }
    let (second, _) = instance(&redis, port).await?;

    let rust = within(Duration::from_secs(60), "the Rust client", rust).await???;
    let node_status = within(Duration::from_secs(60), "the Node client", node.wait()).await??;
    let node = node_lines.await??;
    assert!(node_status.success(), "node exited with {node_status}");
    sse_shared::testing::figure(
        "independent clients",
        "events compared, across one restart",
        rust.len(),
    );
    assert_eq!(node.len(), NOTES);
    for (ours, theirs) in rust.iter().zip(&node) {
        assert_eq!(ours, theirs, "sse-stream and eventsource disagree");
    }
    drop(second);
    Ok(())
}
