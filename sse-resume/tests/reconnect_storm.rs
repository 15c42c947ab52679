//! A reconnect storm, measured: 5,000 clients on instance A, SIGTERM A while B (same
//! Redis) serves. 80% of the clients honour `retry:` as `EventSource` does, 20% come
//! straight back; all reconnect to B with `Last-Event-ID`. Reported: the largest share of
//! clients arriving at B in any 100 ms window, without the drain and jitter (before) and
//! with them (after, the defaults), and events lost (must be 0, asserted, as is the
//! target: no 100 ms window holding more than 10% of the clients).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::post;
use futures_util::future::try_join_all;
use sse_shared::testing::{
    AppProcess, RedisServer, SseConnection, TestResult, figure, metric, wait_until, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");
const CLIENTS: usize = 5_000;
const NOTES: usize = 10;
const WINDOW_MS: u128 = 100;

/// One client: reads A until its stream ends, waits as `EventSource` would (the last
/// `retry:` it was given) unless it is one that ignores `retry:`, then resumes on B.
/// Returns the notes it saw and when (after `sigterm`) it reconnected.
async fn client(
    a: String,
    b: String,
    honours_retry: bool,
    sigterm: Arc<tokio::sync::OnceCell<Instant>>,
) -> TestResult<(Vec<String>, Duration)> {
    let mut seen = Vec::with_capacity(NOTES);
    let mut retry = None;
    let mut conn = SseConnection::open(&a, &[]).await?;
    while let Ok(block) = conn.next_within(Duration::from_secs(120)).await {
        retry = block.retry.or(retry);
        if block.event.as_deref() == Some("note") {
            seen.push(block.id.ok_or("a note without an id")?);
        }
    }
    if honours_retry {
        tokio::time::sleep(Duration::from_millis(retry.unwrap_or(3000))).await;
    }
    let at = sigterm
        .get()
        .map(Instant::elapsed)
        .ok_or("ended before SIGTERM")?;
    let cursor = seen.last().cloned().unwrap_or_else(|| "0-0".to_owned());
    let mut conn = loop {
        match SseConnection::open(&b, &[("last-event-id", &cursor)]).await {
            Ok(conn) if conn.status == 200 => break conn,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    while seen.len() < NOTES {
        let event = conn.next_within(Duration::from_secs(60)).await?;
        match event.event.as_deref() {
            Some("note") => seen.push(event.id.ok_or("a note without an id")?),
            Some("reset") => return Err(format!("reset after {cursor}: {:?}", event.data).into()),
            _ => {}
        }
    }
    Ok((seen, at))
}

/// What a storm showed: the peak 100 ms share of all arrivals, and how long the middle
/// 90% of the clients that honour `retry:` took to arrive (5th to 95th percentile).
struct Storm {
    peak: f64,
    spread: Duration,
}

/// Runs the storm with `extra` options on A.
async fn storm(redis: &RedisServer, extra: &[&str]) -> TestResult<Storm> {
    let url = redis.url();
    let mut args = vec![
        "--redis",
        url.as_str(),
        "--interval-ms",
        "3600000",
        "--max-streams",
        "19000",
        "--max-streams-per-ip",
        "19000",
        "--note-burst",
        "1000",
    ];
    let b = AppProcess::spawn(BIN, &args).await?;
    args.extend_from_slice(extra);
    let mut a = AppProcess::spawn(BIN, &args).await?;
    let sigterm = Arc::new(tokio::sync::OnceCell::new());
    let (a_url, b_url) = (format!("{}/events", a.url()), format!("{}/events", b.url()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                a_url.clone(),
                b_url.clone(),
                i % 5 != 0,
                Arc::clone(&sigterm),
            ))
        })
        .collect();
    wait_until(Duration::from_secs(90), "5,000 streams on A", || async {
        Ok(metric(a.url(), "sse_open_streams").await? >= CLIENTS as f64)
    })
    .await?;
    let mut sent = Vec::new();
    for i in 0..NOTES / 2 {
        sent.push(post(b.url(), format!("before {i}")).await?);
    }
    // Whether a client read these on A or gets them replayed by B, it must have each once.
    sigterm.set(Instant::now())?;
    a.terminate().await?;
    for i in 0..NOTES - NOTES / 2 {
        sent.push(post(b.url(), format!("during {i}")).await?);
    }
    a.wait(Duration::from_secs(10)).await?;
    let results = within(
        Duration::from_secs(180),
        "every client back with every note",
        async { try_join_all(clients).await },
    )
    .await??;
    let mut bins = std::collections::HashMap::new();
    let mut honouring = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let (seen, at) = result?;
        let (got, of) = (seen.len(), sent.len());
        assert!(
            seen == sent,
            "a client lost or repeated a note: {got} of {of}"
        );
        *bins.entry(at.as_millis() / WINDOW_MS).or_insert(0usize) += 1;
        if i % 5 != 0 {
            honouring.push(at);
        }
    }
    honouring.sort();
    let quantile = |q: f64| honouring[((honouring.len() - 1) as f64 * q) as usize];
    let peak = bins.values().copied().max().unwrap_or(0);
    Ok(Storm {
        peak: peak as f64 / CLIENTS as f64,
        spread: quantile(0.95) - quantile(0.05),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigterm_no_100_ms_window_holds_more_than_a_tenth_of_the_clients() -> TestResult {
    let redis = RedisServer::start().await?;
    let before = storm(
        &redis,
        &["--drain-spread-ms", "0", "--retry-jitter-pct", "0"],
    )
    .await?;
    let after = storm(&redis, &[]).await?;
    let pct = |share: f64| format!("{:.1}", share * 100.0);
    let test = "reconnect storm";
    figure(
        test,
        "peak share of 5,000 reconnects in 100 ms, no drain or jitter (%)",
        pct(before.peak),
    );
    figure(
        test,
        "peak share of 5,000 reconnects in 100 ms, defaults (%)",
        pct(after.peak),
    );
    figure(
        test,
        "middle 90% of retry-honouring reconnects, no drain or jitter (ms)",
        before.spread.as_millis(),
    );
    figure(
        test,
        "middle 90% of retry-honouring reconnects, defaults (ms)",
        after.spread.as_millis(),
    );
    assert!(
        after.peak <= 0.10,
        "{}% of the clients came back in one 100 ms window",
        pct(after.peak)
    );
    // No assertion on before vs after: on 2 cores the 5,000 client tasks themselves
    // smear a simultaneous end over 2-4 s, so the figures compare runs, not a bound we
    // could promise here (RELIABILITY.md). The cliff itself, with fewer clients, is
    // checked in reliability/tests/drain.rs; what must hold is no loss and the target.
    Ok(())
}
