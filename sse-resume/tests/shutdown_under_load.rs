//! Shutdown under load: 5,000 open streams, SIGTERM. The process exits within its
//! grace period; the clients reconnect to the restarted process and, with the Redis
//! backend, none of them loses a single event published meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::post;
use futures_util::future::try_join_all;
use sse_shared::testing::{
    AppProcess, RedisServer, SseConnection, TestResult, figure, metric, wait_until, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");
const CLIENTS: usize = 5_000;
const NOTES: usize = 30;

/// A client that keeps reading and, whenever its stream ends or cannot be opened,
/// comes back with the last id it saw, the way `EventSource` does.
async fn client(url: String) -> TestResult<Vec<String>> {
    let mut seen: Vec<String> = Vec::with_capacity(NOTES);
    while seen.len() < NOTES {
        let cursor = seen.last().cloned().unwrap_or_else(|| "0-0".to_owned());
        let Ok(mut conn) = SseConnection::open(&url, &[("last-event-id", &cursor)]).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Read until the stream ends (or breaks), then reconnect.
        while let Ok(event) = conn.next_within(Duration::from_secs(60)).await {
            match event.event.as_deref() {
                Some("note") => seen.push(event.id.ok_or("a note without an id")?),
                Some("reset") => {
                    return Err(format!("reset after {cursor}: {:?}", event.data).into());
                }
                _ => {}
            }
            if seen.len() == NOTES {
                break;
            }
        }
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_5000_streams_then_a_restart_loses_nothing() -> TestResult {
    let redis = RedisServer::start().await?;
    let redis_url = redis.url();
    let common = [
        "--redis",
        redis_url.as_str(),
        "--interval-ms",
        "3600000",
        "--max-streams",
        "19000",
        "--max-streams-per-ip",
        "19000",
        // The test posts 30 notes from one address in a few seconds.
        "--note-burst",
        "1000",
    ];
    let mut a = AppProcess::spawn(BIN, &common).await?;
    let port = a.port()?.to_string();
    let b = AppProcess::spawn(BIN, &common).await?;

    let url = format!("{}/events", a.url());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client(url.clone())))
        .collect();
    wait_until(Duration::from_secs(60), "5,000 streams to open", || async {
        Ok(metric(a.url(), "sse_open_streams").await? >= CLIENTS as f64)
    })
    .await?;

    let mut sent = Vec::new();
    for i in 0..NOTES / 3 {
        sent.push(post(b.url(), format!("before {i}")).await?);
    }
    let asked = Instant::now();
    a.terminate().await?;
    let status = a.wait(Duration::from_secs(6)).await?;
    let exit = asked.elapsed();
    assert!(status.success(), "{status}");
    figure(
        "shutdown under load",
        &format!("SIGTERM to exit with {CLIENTS} streams (ms)"),
        exit.as_millis(),
    );

    // Published while the clients have nowhere to go.
    for i in 0..NOTES / 3 {
        sent.push(post(b.url(), format!("during {i}")).await?);
    }
    let mut args = common.to_vec();
    args.extend(["--port", port.as_str()]);
    let _restarted = AppProcess::spawn(BIN, &args).await?;
    let back = Instant::now();
    for i in 0..NOTES - 2 * (NOTES / 3) {
        sent.push(post(b.url(), format!("after {i}")).await?);
    }

    let results = within(
        Duration::from_secs(120),
        "every client to have every note",
        try_join_all(clients),
    )
    .await??;
    figure(
        "shutdown under load",
        &format!("restart until all {CLIENTS} clients had every note (ms)"),
        back.elapsed().as_millis(),
    );
    for seen in results {
        assert!(seen? == sent, "a client missed or repeated a note");
    }
    Ok(())
}
