//! Churn: 5,000 chat streams opened and dropped abruptly, in waves. Afterwards nothing
//! is left behind: no open streams, no one online, no leaked tasks.

mod common;

use std::time::Duration;

use common::{alive_tasks, chat, figure, roomy, rss_kib};
use futures_util::future::try_join_all;
use sse_shared::testing::{SseConnection, TestResult, wait_until};

const WAVES: usize = 5;
const PER_WAVE: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_streams_leave_nothing_behind() -> TestResult {
    let (app, room) = chat(roomy()).await?;
    // A first stream and its drop warm up the pools that stay (connection pools,
    // allocator arenas), so the baseline is taken after it.
    drop(SseConnection::open(&app.url("/chat/events?name=warmup"), &[]).await?);
    wait_until(
        Duration::from_secs(10),
        "the warm-up stream to close",
        || async { Ok(app.metric("sse_open_streams").await? == 0.0) },
    )
    .await?;
    let (tasks_before, rss_before) = (alive_tasks(), rss_kib());
    let mut rss_after_wave = Vec::new();

    for wave in 0..WAVES {
        let url = app.url("/chat/events");
        let conns = try_join_all((0..PER_WAVE).map(|i| {
            let url = format!("{url}?name=w{wave}-{i}");
            async move {
                let mut conn = SseConnection::open(&url, &[]).await?;
                conn.next_event().await?; // the welcome: the member is in
                TestResult::Ok(conn)
            }
        }))
        .await?;
        assert_eq!(app.metric("sse_open_streams").await?, PER_WAVE as f64);
        if wave == 0 {
            figure(
                "churn",
                "RSS with 1,000 chat streams open (KiB, client and server)",
                rss_kib(),
            );
        }
        // Abruptly: the connections are dropped, no goodbye.
        drop(conns);
        wait_until(
            Duration::from_secs(30),
            "every stream of the wave to be gone",
            || async {
                Ok(app.metric("sse_open_streams").await? == 0.0 && room.online().await?.is_empty())
            },
        )
        .await?;
        rss_after_wave.push(rss_kib());
    }

    // Leave events are published by short tasks; give them a moment to finish.
    wait_until(
        Duration::from_secs(10),
        "tasks back to the baseline",
        || async { Ok(alive_tasks() <= tasks_before) },
    )
    .await?;
    let rss_after = rss_kib();
    figure("churn", "streams opened and dropped", WAVES * PER_WAVE);
    figure(
        "churn",
        "RSS before, after each wave (KiB)",
        format!("{rss_before}, {rss_after_wave:?}"),
    );
    figure(
        "churn",
        "alive tasks before -> after",
        format!("{tasks_before} -> {}", alive_tasks()),
    );
    // The allocator keeps what the first wave needed; a leak would grow with every
    // wave instead (1,000 streams a wave: even 10 KiB each would be 40 MB by the last).
    let first = rss_after_wave.first().copied().unwrap_or(rss_before);
    assert!(
        rss_after <= first + first / 4 + 16 * 1024,
        "memory grows with every wave: {rss_after_wave:?} KiB"
    );
    Ok(())
}
