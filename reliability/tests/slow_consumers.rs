//! Slow consumers: 100 clients that never read while ~1,000 events a second (~1 KiB
//! each) flow for 20 s; 10 fast clients read everything. Asserted: each slow client
//! costs at most what RELIABILITY.md promises in heap (one 64 KiB batch, hyper's 64 KiB
//! buffer and its connection's state), the history keeps its byte bound, the slow
//! clients' connections are closed once their writes stay blocked, and the fast clients
//! get every event in order. Their latency with and without the slow ones is a figure,
//! not a pass/fail.
//!
//! The publisher is paced on the fast clients' progress (at most [`PACE`] events ahead of
//! the slowest), so a loaded machine slows the run down instead of making a fast client
//! fall off the history.

mod common;

use std::time::{Duration, Instant};

use common::{figure, heap_in_use_kib, resume, roomy, rss_kib};
use futures_util::future::try_join_all;
use hdrhistogram::Histogram;
use sse_resume::ResumeEvent;
use sse_shared::testing::{SseConnection, TestResult, WAIT, send_raw, wait_until, within};
use sse_shared::{HistoryLimits, Hub, ServerArgs};
use tokio::sync::watch;

const RATE: u64 = 1_000;
const SECONDS: u64 = 20;
const FAST: usize = 10;
const SLOW: usize = 100;
/// The history's byte bound: ~1,000 notes, so it binds before its event bound (2,000).
const HISTORY_BYTES: usize = 1024 * 1024;
/// The most notes the publisher runs ahead of the slowest fast client: well inside what
/// the history holds.
const PACE: u64 = 400;
/// The most heap one slow client may cost: one batch (64 KiB) waiting in its response,
/// hyper's buffer for its connection (64 KiB), and 32 KiB for the connection's state.
const SLOW_CLIENT_KIB: usize = 160;
/// What a client that never reads sends.
const STREAM_REQUEST: &[u8] = b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n";

/// Publishes RATE notes a second for SECONDS (slower if a fast client falls `PACE`
/// behind); each note says when it was published (microseconds since `epoch`) and is
/// padded to ~1 KiB: 1 MB/s, far more than a non-reading client's socket buffers hold.
async fn publish(
    hub: Hub<ResumeEvent>,
    epoch: Instant,
    mut progress: Vec<watch::Receiver<u64>>,
) -> TestResult<u64> {
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let per_tick = RATE / 100;
    let mut sent = 0;
    let padding = "p".repeat(1000);
    for _ in 0..SECONDS * 100 {
        ticks.tick().await;
        for client in &mut progress {
            let caught_up = client.wait_for(|&got| got + PACE >= sent + per_tick);
            within(
                Duration::from_secs(30),
                "a fast client to catch up",
                caught_up,
            )
            .await?
            .map_err(|_| "a fast client stopped")?;
        }
        for _ in 0..per_tick {
            let at = epoch.elapsed().as_micros();
            hub.publish(ResumeEvent::Note(format!("{sent} {at} {padding}")))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// A fast client: reads everything, checks the sequence, records latencies, and tells
/// the publisher how far it got.
async fn fast_client(
    url: String,
    epoch: Instant,
    total: u64,
    progress: watch::Sender<u64>,
) -> TestResult<Histogram<u64>> {
    let mut conn = SseConnection::open(&url, &[]).await?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut expected = 0u64;
    while expected < total {
        let event = conn.next().await?;
        let Some(data) = event.data else { continue };
        // `live` marks the end of the (empty) replay; anything else is a fault.
        if event.event.as_deref() == Some("live") {
            continue;
        }
        if event.event.as_deref() != Some("note") {
            return Err(format!("a fast client got {:?}: {data}", event.event).into());
        }
        let mut fields = data.split(' ');
        let seq: u64 = fields.next().unwrap_or_default().parse()?;
        let at: u64 = fields.next().unwrap_or_default().parse()?;
        if seq != expected {
            return Err(format!("a fast client expected {expected}, got {seq}").into());
        }
        let now = epoch.elapsed().as_micros() as u64;
        latencies.record(now.saturating_sub(at))?;
        expected += 1;
        progress.send_replace(expected);
    }
    Ok(latencies)
}

/// What one run measured.
struct Run {
    latencies: Histogram<u64>,
    /// The most heap in use while events flowed, KiB.
    peak_heap_kib: usize,
}

async fn run(with_slow: bool) -> TestResult<Run> {
    let limits = HistoryLimits {
        max_events: 2_000,
        max_bytes: HISTORY_BYTES,
    };
    // Give up on a client whose writes stay blocked for 5 s (30 s by default).
    let args = ServerArgs {
        write_stall: Duration::from_secs(5),
        ..roomy()
    };
    let (app, hub) = resume(args, limits).await?;
    let url = app.url("/events");
    let epoch = Instant::now();

    // The slow ones ask for the stream and never read a byte.
    let mut slow = Vec::new();
    if with_slow {
        for _ in 0..SLOW {
            slow.push(send_raw(app.server.local_addr(), STREAM_REQUEST).await?);
        }
    }
    let total = RATE * SECONDS;
    let (clients, progress): (Vec<_>, Vec<_>) = (0..FAST)
        .map(|_| {
            let (tell, told) = watch::channel(0);
            (
                tokio::spawn(fast_client(url.clone(), epoch, total, tell)),
                told,
            )
        })
        .unzip();
    // Every stream is open before the first event.
    let expected = (FAST + slow.len()) as f64;
    wait_until(Duration::from_secs(10), "the streams to open", || async {
        Ok(app.metric("sse_open_streams").await? >= expected)
    })
    .await?;
    let rss_before = rss_kib();
    let publisher = tokio::spawn(publish(hub.clone(), epoch, progress));

    // Readings while events flow, every 100 ms.
    let (mut max_retained, mut peak_heap_kib) = (0, 0);
    while !publisher.is_finished() {
        let bytes = app.metric("sse_history_bytes").await? as usize;
        max_retained = max_retained.max(bytes);
        peak_heap_kib = peak_heap_kib.max(heap_in_use_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(publisher.await??, total);
    let latencies = within(
        Duration::from_secs(60),
        "the fast clients",
        try_join_all(clients),
    )
    .await??;
    let mut all = Histogram::<u64>::new(3)?;
    for client in latencies {
        all.add(client?)?;
    }
    let label = if with_slow {
        "with 100 slow clients"
    } else {
        "without slow clients"
    };
    figure(
        "slow consumers",
        &format!("fast clients' latency p50 / p99 / max (ms), {label}"),
        format!(
            "{:.1} / {:.1} / {:.1}",
            all.value_at_quantile(0.5) as f64 / 1e3,
            all.value_at_quantile(0.99) as f64 / 1e3,
            all.max() as f64 / 1e3
        ),
    );
    figure(
        "slow consumers",
        &format!("history bytes at most, {label}"),
        max_retained,
    );
    figure(
        "slow consumers",
        &format!("process RSS growth during the run (KiB), {label}"),
        rss_kib().saturating_sub(rss_before),
    );
    assert!(
        max_retained <= HISTORY_BYTES,
        "the history held {max_retained} bytes, over its bound"
    );
    if with_slow {
        // Each slow stream is closed once its writes have been stuck for 5 s; the fast
        // clients have all their events and have gone, so no stream is left open. (The
        // close itself is what is waited for: `sse_streams_closed_slow_total` can miss
        // a stuck stream whose body hyper had just polled for more, which happens when
        // the machine is loaded, and is reported, not waited on.)
        wait_until(
            Duration::from_secs(30),
            "the slow streams to be closed",
            || async { Ok(app.metric("sse_open_streams").await? == 0.0) },
        )
        .await?;
        let closed = app.metric("sse_streams_closed_slow_total").await?;
        figure("slow consumers", "slow streams closed as too slow", closed);
        assert!(
            closed <= SLOW as f64,
            "a fast client was counted as slow: {closed}"
        );
    }
    drop(slow);
    Ok(Run {
        latencies: all,
        peak_heap_kib,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_hold_back_no_one_and_cost_bounded_memory() -> TestResult {
    let baseline = run(false).await?;
    let loaded = run(true).await?;
    let ratio = loaded.latencies.value_at_quantile(0.99) as f64
        / baseline.latencies.value_at_quantile(0.99).max(1) as f64;
    figure(
        "slow consumers",
        "p99 ratio, with / without slow clients",
        format!("{ratio:.2}"),
    );
    let per_slow = loaded.peak_heap_kib.saturating_sub(baseline.peak_heap_kib) / SLOW;
    figure(
        "slow consumers",
        "peak heap in use without / with slow clients (KiB); per slow client",
        format!(
            "{} / {}; {per_slow}",
            baseline.peak_heap_kib, loaded.peak_heap_kib
        ),
    );
    assert!(
        per_slow <= SLOW_CLIENT_KIB,
        "a slow client cost {per_slow} KiB of heap (bound {SLOW_CLIENT_KIB})"
    );
    Ok(())
}

/// `--write-stall-secs 0` turns the limit off: a client that stopped reading stays
/// connected, while the same client of a server with a 1 s limit is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_stall_limit_of_0_never_closes_a_client_that_stopped_reading() -> TestResult {
    let limits = HistoryLimits {
        max_events: 1_000,
        max_bytes: HISTORY_BYTES,
    };
    let mut servers = Vec::new();
    for write_stall_secs in [1, 0] {
        let args = ServerArgs {
            write_stall: Duration::from_secs(write_stall_secs),
            ..roomy()
        };
        let (app, hub) = resume(args, limits).await?;
        // Asks for the stream and never reads a byte.
        let socket = send_raw(app.server.local_addr(), STREAM_REQUEST).await?;
        wait_until(WAIT, "the stream to open", || async {
            Ok(app.metric("sse_open_streams").await? == 1.0)
        })
        .await?;
        servers.push((app, hub, socket));
    }
    // 4 MB a second to each, until the 1 s limit has closed its client and 2 s more.
    let hubs: Vec<Hub<ResumeEvent>> = servers.iter().map(|(_, hub, _)| hub.clone()).collect();
    let (stop, stopped) = watch::channel(false);
    let publisher = tokio::spawn(async move {
        let padding = "p".repeat(1000);
        let mut ticks = tokio::time::interval(Duration::from_millis(10));
        while !*stopped.borrow() {
            ticks.tick().await;
            for hub in &hubs {
                for _ in 0..40 {
                    hub.publish(ResumeEvent::Note(padding.clone()))?;
                }
            }
        }
        TestResult::Ok(())
    });
    let (limited, unlimited) = (&servers[0].0, &servers[1].0);
    // The close is what is waited for (see `run`: the slow-close counter can miss one).
    wait_until(
        Duration::from_secs(60),
        "the 1 s limit to close its client",
        || async { Ok(limited.metric("sse_open_streams").await? == 0.0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.send_replace(true);
    within(WAIT, "the publisher to stop", publisher).await???;
    assert_eq!(limited.metric("sse_open_streams").await?, 0.0);
    assert_eq!(
        unlimited.metric("sse_open_streams").await?,
        1.0,
        "0: never closed"
    );
    assert_eq!(
        unlimited.metric("sse_streams_closed_slow_total").await?,
        0.0
    );
    Ok(())
}
