//! Floods: far more streams than the limits allow. Past --max-streams every new one gets
//! 503, past --max-streams-per-ip 429, both before any stream starts, and /healthz keeps
//! answering meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::figure;
use futures_util::future::join_all;
use sse_shared::ServerArgs;
use sse_shared::testing::{SseConnection, TestApp, TestResult, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_under_a_flood_and_healthz_answers() -> TestResult {
    let args = ServerArgs {
        max_streams: 200,
        max_streams_per_ip: 50,
        // Clients behind this loopback "proxy" are told apart by X-Forwarded-For.
        trusted_proxies: vec!["127.0.0.1".parse()?],
        ..ServerArgs::default()
    };
    let app = TestApp::start(args, |_| sse_counter::router(Duration::from_millis(500))).await?;
    let url = app.url("/events");

    // Fill the server: 4 addresses x 50 streams.
    let mut open = Vec::new();
    for ip in 1..=4 {
        for _ in 0..50 {
            let client = format!("192.0.2.{ip}");
            let mut conn = SseConnection::open(&url, &[("x-forwarded-for", &client)]).await?;
            assert_eq!(conn.status, 200);
            conn.next().await?;
            open.push(conn);
        }
    }

    // Meanwhile, /healthz is asked every 10 ms.
    let health_url = app.url("/healthz");
    let prober = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        let mut answered = 0u32;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let asked = Instant::now();
            let status =
                tokio::time::timeout(Duration::from_secs(2), http().get(&health_url).send())
                    .await
                    .map_err(|_| "healthz did not answer within 2 s".to_owned())?
                    .map_err(|e| e.to_string())?
                    .status();
            if status != 200 {
                return Err(format!("healthz answered {status}"));
            }
            slowest = slowest.max(asked.elapsed());
            answered += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((answered, slowest))
    });

    // The flood, 2,000 stream requests, 100 at a time. First while the server is full:
    // everyone gets 503. Then with room on the server (the streams of two addresses
    // closed) but not for the saturated address: it gets 429.
    let mut statuses = [0u32; 3]; // 429, 503, other
    for batch in 0..20 {
        if batch == 10 {
            open.truncate(100);
            tokio::time::timeout(Duration::from_secs(10), async {
                while app.metric("sse_open_streams").await.unwrap_or(0.0) > 100.0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .map_err(|_| "the closed streams were not noticed")?;
        }
        let responses = join_all((0..100).map(|i| {
            let client = if batch < 10 {
                format!("198.51.100.{}", batch * 10 + i % 10)
            } else {
                "192.0.2.1".to_owned()
            };
            let request = http().get(&url).header("x-forwarded-for", client);
            async move { request.send().await }
        }))
        .await;
        for response in responses {
            let response = response?;
            match response.status().as_u16() {
                429 => statuses[0] += 1,
                503 => statuses[1] += 1,
                _ => statuses[2] += 1,
            }
            assert!(response.headers().contains_key("retry-after"));
            let error: serde_json::Value = response.json().await?;
            assert!(
                error["error"] == "too-many-streams" || error["error"] == "server-full",
                "{error}"
            );
        }
    }
    let (answered, slowest) = prober.await?.map_err(|e| e.to_string())?;
    figure(
        "floods",
        "stream requests refused: 429 / 503 / other",
        format!("{} / {} / {}", statuses[0], statuses[1], statuses[2]),
    );
    figure(
        "floods",
        "healthz answers during the flood, slowest (ms)",
        format!("{answered}, {}", slowest.as_millis()),
    );
    assert_eq!(
        statuses,
        [1000, 1000, 0],
        "503 while full, then 429 for the saturated address"
    );
    assert_eq!(
        app.metric("sse_open_streams").await?,
        100.0,
        "nothing got past the limits"
    );
    drop(open);
    Ok(())
}
