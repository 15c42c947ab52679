//! The binary's `GET /openapi.json` (`main.rs` serves it, from `contract.rs`): valid
//! OpenAPI 3.2 (checked by an independent validator), and every kind of event the stream
//! sends (snapshot, price, reset) is what it describes.

use sse_shared::testing::{AppProcess, SseConnection, TestResult, check_contract};

const BIN: &str = env!("CARGO_BIN_EXE_sse-stock-feed");

#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let app = AppProcess::spawn(BIN, &["--interval-ms", "50", "--symbols", "AAPL,MSFT"]).await?;
    let prices = format!("{}/prices", app.url());
    let mut conn = SseConnection::open(&prices, &[]).await?;
    let mut read = vec![conn.next_event().await?]; // snapshot
    read.push(conn.next_event().await?); // price
    let mut reset = SseConnection::open(&prices, &[("last-event-id", "x")]).await?;
    read.push(reset.next_event().await?); // reset
    check_contract(app.url(), "/prices", &read, &["snapshot", "price", "reset"]).await
}
