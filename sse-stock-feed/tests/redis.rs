//! sse-stock-feed with the Redis backend: one simulator across instances, and a
//! takeover that goes on from the last prices when its holder dies.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sse_shared::testing::{AppProcess, RedisServer, SseConnection, TestResult, json_data};

const BIN: &str = env!("CARGO_BIN_EXE_sse-stock-feed");

/// The next price event: (id, symbol, price, change).
async fn next_price(
    conn: &mut SseConnection,
    limit: Duration,
) -> TestResult<(String, String, f64, f64)> {
    loop {
        let event = conn.next_within(limit).await?;
        if event.event.as_deref() == Some("price") {
            let data: Value = json_data(&event)?;
            return Ok((
                event.id.ok_or("no id")?,
                data["symbol"].as_str().unwrap_or_default().to_owned(),
                data["price"].as_f64().ok_or("no price")?,
                data["change"].as_f64().ok_or("no change")?,
            ));
        }
    }
}

#[tokio::test]
async fn one_simulator_and_a_takeover_that_goes_on_from_the_last_prices() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--symbols",
        "AAPL,MSFT",
        "--interval-ms",
        "100",
    ];
    let mut a = AppProcess::spawn(BIN, &args).await?;
    // A holds the lease once it ticks; B then starts and must not tick as well.
    let mut on_a = SseConnection::open(&format!("{}/prices", a.url()), &[]).await?;
    next_price(&mut on_a, Duration::from_secs(5)).await?;
    let b = AppProcess::spawn(BIN, &args).await?;
    let mut on_b = SseConnection::open(&format!("{}/prices", b.url()), &[]).await?;

    let mut last: HashMap<String, f64> = HashMap::new();
    let mut ids = Vec::new();
    let mut check = |(id, symbol, price, change): (String, String, f64, f64)| -> TestResult {
        if let Some(before) = last.insert(symbol.clone(), price) {
            // Every step starts where the previous one ended: one walk, not two.
            let expected = ((before + change) * 100.0).round() / 100.0;
            if (expected - price).abs() > 1e-6 {
                return Err(format!("{symbol}: {before} + {change} != {price}").into());
            }
        }
        ids.push(id);
        Ok(())
    };
    for _ in 0..20 {
        check(next_price(&mut on_b, Duration::from_secs(5)).await?)?;
    }
    // The holder dies without a word; B takes over within the lease's 3 s.
    a.kill().await?;
    for _ in 0..20 {
        check(next_price(&mut on_b, Duration::from_secs(8)).await?)?;
    }
    let mut sorted = ids.clone();
    sorted.sort_by_key(|id| id.parse::<sse_shared::EventId>().unwrap_or_default());
    sorted.dedup();
    assert_eq!(sorted, ids, "ids in order, none twice");
    Ok(())
}
