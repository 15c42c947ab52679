//! The binary's `GET /openapi.json` (`main.rs` serves it, from `contract.rs`): valid
//! OpenAPI 3.2 (checked by an independent validator), and every kind of event the hub
//! sends (updates named by their type or unnamed, `mercure` announcements of a
//! subscription's start and end, with and without a payload, and `reset`) is what it
//! describes.

use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, SseConnection, TestResult, check_contract, http};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a test secret of at least 32 bytes!";
const HUB: &str = "/.well-known/mercure";
const HUB_URL: &str = "https://hub.example/.well-known/mercure";
const ALL_SUBSCRIPTIONS: &str = "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F%3Atype%2F%3Amatch%2F%3Asubscriber&match=sentinel";

#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let args = [
        "--jwt-secret",
        SECRET,
        "--hub-url",
        HUB_URL,
        "--subscriptions",
    ];
    let app = AppProcess::spawn(BIN, &args).await?;
    let base = app.url();
    let watcher_token = token(json!([
        detail(&["subscribe"], json!([{"match": "*"}])),
        detail(&["publish"], json!([{"match": "*"}])),
    ]))?;
    let query = format!("{ALL_SUBSCRIPTIONS}&match=https%3A%2F%2Fexample.com%2Fbooks%2F1");
    let mut watcher = subscribe(base, &query, Some(&watcher_token)).await?;
    let with_payload = token(json!([
        {"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": {"tenant": "acme"}},
    ]))?;
    drop(subscribe(base, "match=urn%3Aa", Some(&with_payload)).await?);
    // Its own 3 matchers, the other's start and end (with its payload): the end is
    // announced once the hub sees the connection close, so wait for it before publishing.
    let mut read = Vec::new();
    while read.len() < 5 {
        read.push(watcher.next_event().await?);
    }
    for form in [
        "topic=https://example.com/books/1&data=plain",
        "topic=https://example.com/books/1&type=book&data=%7B%7D",
    ] {
        let published = http()
            .post(format!("{base}{HUB}"))
            .bearer_auth(&watcher_token)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await?;
        assert_eq!(published.status(), 200);
    }
    while read.len() < 7 {
        read.push(watcher.next_event().await?); // the two updates
    }
    let url = format!("{base}{HUB}?match=x");
    let mut reset = SseConnection::open(&url, &[("last-event-id", "no-such-id")]).await?;
    read.push(reset.next_event().await?);
    let expected = [
        "mercure", "mercure", "mercure", "mercure", "mercure", "", "book", "reset",
    ];
    assert!(
        read.iter()
            .any(|e| e.data.as_deref().is_some_and(|d| d.contains("acme")))
    );
    check_contract(base, HUB, &read, &expected).await
}

/// A token for the hub whose details are `details`.
fn token(details: Value) -> TestResult<String> {
    let claims = json!({"exp": unix_now() + 600, "aud": HUB_URL, "authorization_details": details});
    Ok(sign(SECRET.as_bytes(), &claims)?)
}

fn detail(actions: &[&str], topics: Value) -> Value {
    json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
}

/// A subscription of `query` with `token`, past its `retry:`.
async fn subscribe(base: &str, query: &str, token: Option<&str>) -> TestResult<SseConnection> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let mut conn = SseConnection::open(&format!("{base}{HUB}?{query}"), &headers).await?;
    if conn.status != 200 {
        return Err(format!("subscribe refused: {}", conn.status).into());
    }
    conn.next().await?; // retry:
    Ok(conn)
}
