//! A drain, not a cliff: on shutdown each stream ends at its own moment within the
//! first part of the grace and leaves its client its own last `retry:`, so the clients
//! of a stopping server come back spread out. Measured against `--drain-spread-ms 0`.

mod common;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sse_shared::testing::{SseConnection, TestResult, figure};
use sse_shared::{HistoryLimits, ServerArgs};

const CLIENTS: usize = 300;
const WINDOW: Duration = Duration::from_millis(100);

/// Opens `CLIENTS` streams, shuts the server down, and returns whether it exited within
/// the grace, and for each stream when it ended (after the shutdown began) and the last
/// `retry:` it was given.
async fn shut_down_with_streams(drain_spread_ms: u64) -> TestResult<(bool, Vec<(Duration, u64)>)> {
    let args = ServerArgs {
        shutdown_grace: Duration::from_secs(4),
        drain_spread: Duration::from_millis(drain_spread_ms),
        retry_jitter_pct: 0,
        ..common::roomy()
    };
    let (app, _hub) = common::resume(args, HistoryLimits::default()).await?;
    let url = app.url("/events");
    let mut conns = Vec::new();
    for _ in 0..CLIENTS {
        let mut conn = SseConnection::open(&url, &[]).await?;
        assert_eq!(conn.next().await?.retry, Some(3000), "the first frame");
        conns.push(conn);
    }
    let started = Instant::now();
    let readers = conns.into_iter().map(|mut conn| async move {
        let mut last_retry = None;
        // Every block until the server ends the stream (bounded by the grace and more).
        while let Ok(block) = conn.next_within(Duration::from_secs(8)).await {
            last_retry = block.retry.or(last_retry);
        }
        (started.elapsed(), last_retry.unwrap_or(u64::MAX))
    });
    let (exited, ends) = tokio::join!(app.server.shut_down(), join_all(readers));
    Ok((exited, ends))
}

/// The most stream ends in any 100 ms window, as a share of all.
fn peak_share(ends: &[(Duration, u64)]) -> f64 {
    let mut bins = std::collections::HashMap::new();
    for (at, _) in ends {
        *bins
            .entry(at.as_millis() / WINDOW.as_millis())
            .or_insert(0usize) += 1;
    }
    let peak = bins.values().copied().max().unwrap_or(0);
    peak as f64 / ends.len() as f64
}

/// The most stream ends within any 100 ms span (not fixed bins: ends that all fall
/// within 40 ms can straddle a bin's edge), as a share of all.
fn densest_share(ends: &[(Duration, u64)]) -> f64 {
    let mut at: Vec<Duration> = ends.iter().map(|(at, _)| *at).collect();
    at.sort();
    let mut most = 0;
    let mut first = 0;
    for (last, end) in at.iter().enumerate() {
        while *end - at[first] >= WINDOW {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most as f64 / ends.len().max(1) as f64
}

#[tokio::test]
async fn streams_end_spread_over_the_drain_with_their_own_retry() -> TestResult {
    // Before: no spread, every stream ends in the same instant.
    let (exited, cliff) = shut_down_with_streams(0).await?;
    assert!(exited, "exited within the grace");
    let cliff_peak = densest_share(&cliff);
    assert!(
        cliff_peak > 0.9,
        "without a drain they end together: {cliff_peak}"
    );

    // After: a 2 s spread (the grace is 4 s, so the ends take its first half).
    let (exited, drained) = shut_down_with_streams(2000).await?;
    assert!(exited, "exited within the grace");
    assert_eq!(drained.len(), CLIENTS);
    let latest = drained.iter().map(|(at, _)| *at).max().unwrap_or_default();
    assert!(
        latest < Duration::from_secs(4),
        "the last end came at {latest:?}"
    );
    let retries: std::collections::BTreeSet<u64> = drained.iter().map(|(_, r)| *r).collect();
    assert!(
        retries.iter().all(|r| *r <= 2000),
        "a last retry: past the spread: {retries:?}"
    );
    assert!(
        retries.len() > CLIENTS * 3 / 4,
        "{} distinct last retry: values",
        retries.len()
    );
    let peak = peak_share(&drained);
    // Uniform over 2 s is 5% per 100 ms; the target is at most 10%.
    assert!(
        peak <= 0.10,
        "{:.1}% of the streams ended in one 100 ms window",
        peak * 100.0
    );
    figure(
        "drain",
        "peak share of stream ends in 100 ms, no drain (%)",
        format!("{:.0}", cliff_peak * 100.0),
    );
    figure(
        "drain",
        "peak share of stream ends in 100 ms, 2 s drain (%)",
        format!("{:.1}", peak * 100.0),
    );
    figure(
        "drain",
        "last stream end after SIGTERM, 2 s drain, grace 4 s (ms)",
        latest.as_millis(),
    );
    Ok(())
}
