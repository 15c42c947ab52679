//! The binary's `GET /openapi.json` (`main.rs` serves it, from `contract.rs`): valid
//! OpenAPI 3.2 (checked by an independent validator), and every kind of event the stream
//! sends (welcome, join, leave, message, reset) is what it describes.

use sse_shared::testing::{AppProcess, SseConnection, TestResult, check_contract, http, json_data};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");
const COOKIE: &str = "chat-member";

#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let app = AppProcess::spawn(BIN, &[]).await?;
    let events = format!("{}/chat/events", app.url());
    let mut alice = SseConnection::open(&format!("{events}?name=alice"), &[]).await?;
    let mut read = vec![alice.next_event().await?]; // welcome
    let token = json_data(&read[0])?["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut bob = SseConnection::open(&format!("{events}?name=bob"), &[]).await?;
    bob.next_event().await?; // his welcome
    drop(bob);
    // Her join, bob's join and leave (announced once the server sees his stream close:
    // read before posting, so the order is fixed).
    for _ in 0..3 {
        read.push(alice.next_event().await?);
    }
    let posted = http()
        .post(format!("{}/chat/messages", app.url()))
        .header("authorization", format!("Bearer {token}"))
        .body("hello")
        .send()
        .await?;
    assert_eq!(posted.status(), 202);
    read.push(alice.next_event().await?); // the message
    let cookie = format!("{COOKIE}={token}");
    let headers = [("cookie", cookie.as_str()), ("last-event-id", "x")];
    let mut again = SseConnection::open(&events, &headers).await?;
    read.push(again.next_event().await?); // welcome
    read.push(again.next_event().await?); // reset
    let names = [
        "welcome", "join", "join", "leave", "message", "welcome", "reset",
    ];
    check_contract(app.url(), "/chat/events", &read, &names).await
}
