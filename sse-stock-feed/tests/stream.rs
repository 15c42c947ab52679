//! sse-stock-feed over real TCP, read by an independent SSE parser (`sse-stream`).
//! The tests drive the market by hand (`Market::tick`), so they decide when prices move.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{SseConnection, TestApp, TestResult, expect_error, http, json_data};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs, Streams};
use sse_stock_feed::{Market, Walks};

/// The market and the simulator's state; the test ticks it by hand.
struct Sim {
    market: Arc<Market>,
    walks: Walks,
}

impl Sim {
    async fn tick(&mut self) -> TestResult {
        let hub = self.market.log().hub().clone();
        let mut producer = sse_shared::Producer::in_memory(hub);
        Ok(self.market.tick(&mut self.walks, &mut producer).await?)
    }
}

async fn start(symbols: &[&str], max_events: usize) -> TestResult<(TestApp, Sim)> {
    let mut market = None;
    let app = TestApp::start(ServerArgs::default(), |streams: &Streams| {
        let history = HistoryLimits {
            max_events,
            ..HistoryLimits::default()
        };
        let log = Publisher::in_memory(Hub::with_observer(
            history,
            HubMetrics::register(streams.metrics()),
        ));
        let created = Market::new(symbols.iter().map(|s| s.to_string()).collect(), log);
        market = Some(Arc::clone(&created));
        sse_stock_feed::router(&created)
    })
    .await?;
    let market = market.ok_or("no market")?;
    let walks = market.walks();
    Ok((app, Sim { market, walks }))
}

/// Opens `/prices?..` and returns the connection and its snapshot's prices by symbol.
async fn watch(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> TestResult<(SseConnection, HashMap<String, f64>)> {
    let mut conn = SseConnection::open(&app.url(&format!("/prices{query}")), headers).await?;
    assert_eq!(conn.status, 200);
    let snapshot = conn.next_event().await?;
    assert_eq!(
        snapshot.event.as_deref(),
        Some("snapshot"),
        "snapshot first"
    );
    assert_eq!(snapshot.id, None);
    Ok((conn, prices_of(&snapshot.data.unwrap_or_default())?))
}

fn prices_of(data: &str) -> TestResult<HashMap<String, f64>> {
    let data: Value = serde_json::from_str(data)?;
    let mut prices = HashMap::new();
    for quote in data["prices"].as_array().ok_or("no prices")? {
        prices.insert(
            quote["symbol"].as_str().ok_or("no symbol")?.to_owned(),
            quote["price"].as_f64().ok_or("no price")?,
        );
    }
    Ok(prices)
}

/// The next `n` price events as (id, symbol, price).
async fn prices(conn: &mut SseConnection, n: usize) -> TestResult<Vec<(String, String, f64)>> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = conn.next_event().await?;
        assert_eq!(event.event.as_deref(), Some("price"), "{event:?}");
        let data: Value = json_data(&event)?;
        out.push((
            event.id.ok_or("no id")?,
            data["symbol"].as_str().ok_or("no symbol")?.to_owned(),
            data["price"].as_f64().ok_or("no price")?,
        ));
    }
    Ok(out)
}

#[tokio::test]
async fn two_clients_see_the_same_prices_under_the_same_ids() -> TestResult {
    let (app, mut market) = start(&["AAPL", "GOOGL", "MSFT"], 1000).await?;
    market.tick().await?;
    let (mut a, snap_a) = watch(&app, "", &[]).await?;
    let (mut b, snap_b) = watch(&app, "", &[]).await?;
    assert_eq!(snap_a, snap_b);
    assert_eq!(snap_a.len(), 3);
    for _ in 0..5 {
        market.tick().await?;
    }
    let seen_a = prices(&mut a, 15).await?;
    let seen_b = prices(&mut b, 15).await?;
    assert_eq!(seen_a, seen_b);
    // Each tick is one batch: every symbol once, in order.
    for tick in seen_a.chunks(3) {
        let symbols: Vec<&str> = tick.iter().map(|(_, s, _)| s.as_str()).collect();
        assert_eq!(symbols, ["AAPL", "GOOGL", "MSFT"]);
    }
    Ok(())
}

#[tokio::test]
async fn the_filter_gives_only_the_symbols_asked_for() -> TestResult {
    let (app, mut market) = start(&["AAPL", "GOOGL", "MSFT"], 1000).await?;
    market.tick().await?;
    let (mut conn, snapshot) = watch(&app, "?symbols=MSFT,AAPL", &[]).await?;
    let mut symbols: Vec<&String> = snapshot.keys().collect();
    symbols.sort();
    assert_eq!(symbols, ["AAPL", "MSFT"]);
    for _ in 0..3 {
        market.tick().await?;
    }
    let seen = prices(&mut conn, 6).await?;
    assert!(
        seen.iter().all(|(_, s, _)| s == "AAPL" || s == "MSFT"),
        "{seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_symbols_are_400_naming_the_valid_ones() -> TestResult {
    let (app, _market) = start(&["AAPL", "MSFT"], 1000).await?;
    for query in [
        "?symbols=AAPL,NOPE",
        "?symbols=",
        "?symbols=aapl",
        "?symbols=AAPL,,MSFT",
    ] {
        let response = http()
            .get(app.url(&format!("/prices{query}")))
            .send()
            .await?;
        let error = expect_error(response, 400, "unknown-symbol").await?;
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains("AAPL, MSFT"), "{message}");
    }
    let symbols: Value = http().get(app.url("/symbols")).send().await?.json().await?;
    assert_eq!(symbols, serde_json::json!(["AAPL", "MSFT"]));
    Ok(())
}

#[tokio::test]
async fn a_reconnect_replays_missed_ticks_or_gets_a_fresh_snapshot() -> TestResult {
    let (app, mut market) = start(&["AAPL", "MSFT"], 10).await?;
    let (mut conn, _) = watch(&app, "", &[]).await?;
    market.tick().await?;
    let first = prices(&mut conn, 2).await?;
    let last_id = first[1].0.clone();
    drop(conn);

    // Missed two ticks: they come back, with no snapshot.
    market.tick().await?;
    market.tick().await?;
    let mut back = SseConnection::open(&app.url("/prices"), &[("last-event-id", &last_id)]).await?;
    let replayed = prices(&mut back, 4).await?;
    let ids: Vec<&str> = replayed.iter().map(|(id, _, _)| id.as_str()).collect();
    // Ids are RUN-N; the run is the one of the id we left with.
    let run = last_id
        .split_once('-')
        .map(|(run, _)| run)
        .ok_or("no run")?;
    let expected: Vec<String> = (3..=6).map(|n| format!("{run}-{n}")).collect();
    assert_eq!(ids, expected);

    // Missed more than the history holds: reset, then a fresh snapshot, then live.
    for _ in 0..10 {
        market.tick().await?;
    }
    let mut stale =
        SseConnection::open(&app.url("/prices"), &[("last-event-id", &last_id)]).await?;
    let reset = stale.next_event().await?;
    assert_eq!(reset.event.as_deref(), Some("reset"));
    let data: Value = json_data(&reset)?;
    assert_eq!(data["reason"], "history-gap");
    let snapshot = stale.next_event().await?;
    assert_eq!(snapshot.event.as_deref(), Some("snapshot"));
    let snapshot = prices_of(&snapshot.data.unwrap_or_default())?;
    // The snapshot is exactly the newest tick.
    let newest = replayed_latest(&app, &market.market).await?;
    assert_eq!(snapshot, newest);
    market.tick().await?;
    assert_eq!(prices(&mut stale, 2).await?[0].0, format!("{run}-27"));
    Ok(())
}

/// The newest price per symbol, read back from the history.
async fn replayed_latest(app: &TestApp, market: &Market) -> TestResult<HashMap<String, f64>> {
    let latest = market.log().hub().latest().ok_or("nothing published")?;
    let before = sse_shared::EventId {
        seq: latest.seq - 2,
        ..latest
    }
    .to_string();
    let mut conn = SseConnection::open(&app.url("/prices"), &[("last-event-id", &before)]).await?;
    Ok(prices(&mut conn, 2)
        .await?
        .into_iter()
        .map(|(_, s, p)| (s, p))
        .collect())
}

#[tokio::test]
async fn prices_stay_positive_and_in_whole_cents() -> TestResult {
    let streams = Streams::from_args(&ServerArgs::default());
    let history = HistoryLimits {
        max_events: 10_000,
        ..HistoryLimits::default()
    };
    let log = Publisher::in_memory(Hub::with_observer(
        history,
        HubMetrics::register(streams.metrics()),
    ));
    let market = Market::new(vec!["PENNY".into()], log);
    let mut sim = Sim {
        walks: market.walks(),
        market,
    };
    let mut sub = sim.market.log().hub().subscribe(sse_shared::Start::Live);
    for _ in 0..5_000 {
        sim.tick().await?;
    }
    let mut checked = 0;
    use futures_util::FutureExt;
    while let Some(Some(batch)) = sub.next_batch().now_or_never() {
        for line in String::from_utf8_lossy(&batch).lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                let quote: Value = serde_json::from_str(data)?;
                let price = quote["price"].as_f64().ok_or("no price")?;
                assert!(price >= 0.01, "{price}");
                assert!(
                    ((price * 100.0).round() - price * 100.0).abs() < 1e-6,
                    "{price}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5_000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_and_the_first_ticks_after_it_join_up_while_the_market_ticks() -> TestResult {
    // Room for 30,000 ticks: a client reads its first ticks long before they are evicted.
    let (app, mut market) = start(&["AAPL", "GOOGL", "MSFT"], 100_000).await?;
    market.tick().await?;
    // The market ticks ~10,000 times a second while 200 clients join one after another.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_micros(100));
        while !*stopped.borrow() {
            every.tick().await;
            market.tick().await?;
        }
        TestResult::Ok(())
    });
    for _ in 0..200 {
        let (mut conn, snapshot) = watch(&app, "", &[]).await?;
        // The first tick after the snapshot moves each price from the snapshot's: a tick
        // between the two would be missed (a jump), one in both would be seen twice.
        for _ in 0..3 {
            let event = conn.next_event().await?;
            let data = json_data(&event)?;
            let symbol = data["symbol"].as_str().ok_or("no symbol")?;
            let (price, change) = (data["price"].as_f64(), data["change"].as_f64());
            let before = price.zip(change).map(|(p, c)| p - c).ok_or("no price")?;
            let shown = snapshot.get(symbol).ok_or("not in the snapshot")?;
            assert!(
                (before - shown).abs() < 0.005,
                "{symbol}: snapshot {shown}, then {data}"
            );
        }
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), ticker).await???;
    Ok(())
}
