//! Slow consumers: 100 clients that never read while 1,000 events a second flow for
//! 20 s. The server's history stays within its bounds, the slow clients' connections
//! are closed once their writes stay blocked, and the fast clients get every event; their latency is measured with and
//! without the slow ones and reported (timing is a figure here, not a pass/fail).

mod common;

use std::time::{Duration, Instant};

use common::{figure, resume, roomy, rss_kib};
use futures_util::future::try_join_all;
use hdrhistogram::Histogram;
use sse_resume::ResumeEvent;
use sse_shared::testing::{SseConnection, TestResult, wait_until, within};
use sse_shared::{HistoryLimits, Hub, ServerArgs};
use tokio::io::AsyncWriteExt;

const RATE: u64 = 1_000;
const SECONDS: u64 = 20;
const FAST: usize = 10;
const SLOW: usize = 100;
const HISTORY: usize = 2_000;

/// Publishes RATE notes a second for SECONDS; each note says when it was published
/// (microseconds since `epoch`) and is padded to ~1 KiB: 1 MB/s, far more than a
/// non-reading client's socket buffers hold.
async fn publish(hub: Hub<ResumeEvent>, epoch: Instant) -> TestResult<u64> {
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    let per_tick = RATE / 100;
    let mut sent = 0;
    let padding = "p".repeat(1000);
    for _ in 0..SECONDS * 100 {
        ticks.tick().await;
        for _ in 0..per_tick {
            let at = epoch.elapsed().as_micros();
            hub.publish(ResumeEvent::Note(format!("{sent} {at} {padding}")))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// A fast client: reads everything, checks the sequence, records latencies.
async fn fast_client(url: String, epoch: Instant, total: u64) -> TestResult<Histogram<u64>> {
    let mut conn = SseConnection::open(&url, &[]).await?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut expected = 0u64;
    while expected < total {
        let event = conn.next().await?;
        let Some(data) = event.data else { continue };
        if event.event.as_deref() != Some("note") {
            continue;
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
    }
    Ok(latencies)
}

async fn run(with_slow: bool) -> TestResult<Histogram<u64>> {
    let limits = HistoryLimits {
        max_events: HISTORY,
        max_bytes: 4 * 1024 * 1024,
    };
    // Give up on a client whose writes stay blocked for 5 s (30 s by default).
    let args = ServerArgs {
        write_stall_secs: 5,
        ..roomy()
    };
    let (app, hub) = resume(args, limits).await?;
    let url = app.url("/events");
    let epoch = Instant::now();

    // The slow ones ask for the stream and never read a byte.
    let mut slow = Vec::new();
    if with_slow {
        for _ in 0..SLOW {
            let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
            socket
                .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
                .await?;
            slow.push(socket);
        }
    }
    let total = RATE * SECONDS;
    let clients: Vec<_> = (0..FAST)
        .map(|_| tokio::spawn(fast_client(url.clone(), epoch, total)))
        .collect();
    // Every stream is open before the first event.
    let expected = (FAST + slow.len()) as f64;
    within(Duration::from_secs(10), "the streams to open", async {
        while app.metric("sse_open_streams").await.unwrap_or(0.0) < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;
    let rss_before = rss_kib();
    let publisher = tokio::spawn(publish(hub.clone(), epoch));

    let mut max_retained = 0;
    while !publisher.is_finished() {
        max_retained = max_retained.max(hub.retained().1);
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
        max_retained <= 4 * 1024 * 1024,
        "the history kept its byte bound"
    );
    if with_slow {
        // Each slow stream is closed once its writes have been stuck for 5 s.
        let _ = wait_until(
            Duration::from_secs(30),
            "the slow streams to be closed",
            || async { Ok(app.metric("sse_streams_closed_slow_total").await? >= SLOW as f64) },
        )
        .await;
        let closed = app.metric("sse_streams_closed_slow_total").await?;
        figure("slow consumers", "slow streams closed as too slow", closed);
        assert_eq!(
            closed, SLOW as f64,
            "every slow client was closed, and no fast one"
        );
    }
    drop(slow);
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_hold_back_no_one_and_grow_no_memory() -> TestResult {
    let baseline = run(false).await?;
    let loaded = run(true).await?;
    let ratio =
        loaded.value_at_quantile(0.99) as f64 / baseline.value_at_quantile(0.99).max(1) as f64;
    figure(
        "slow consumers",
        "p99 ratio, with / without slow clients",
        format!("{ratio:.2}"),
    );
    Ok(())
}
