//! The binary's `GET /openapi.json` (`main.rs` serves it, from `contract.rs`): valid
//! OpenAPI 3.2 (checked by an independent validator), and every kind of event the stream
//! sends (broadcast and private notifications, session-expired, reset) is what it
//! describes.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, SseConnection, TestResult, check_contract, http};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");
const ADMIN: &str = "test-admin-token-0123456789";
const SECRET: &str = "the test JWT secret, 32 bytes or more";

#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let args = ["--admin-token", ADMIN, "--jwt-secret", SECRET];
    let app = AppProcess::spawn(BIN, &args).await?;
    let path = "/notifications/stream";
    let stream = format!("{}{path}", app.url());
    // A session that ends within a few seconds: the stream says so. (Three: under a
    // loaded machine, one second could pass before the stream is even open, and a
    // session that has ended opens no private stream.)
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3;
    let short = signed(&json!({"sub": "alice", "exp": exp}))?;
    let bearer = format!("Bearer {short}");
    let mut conn = SseConnection::open(&stream, &[("authorization", &bearer)]).await?;
    let everyone = json!({"title": "all", "message": "m", "level": "warning"});
    publish(app.url(), &everyone).await?;
    let hers = json!({"title": "hers", "message": "m", "user": "alice"});
    publish(app.url(), &hers).await?;
    let mut read = Vec::new();
    for _ in 0..3 {
        read.push(conn.next_event().await?);
    }
    let mut reset = SseConnection::open(&stream, &[("last-event-id", "x")]).await?;
    read.push(reset.next_event().await?);
    let names = ["notification", "notification", "session-expired", "reset"];
    check_contract(app.url(), path, &read, &names).await
}

/// A session token signed with the server's secret: what a real app's login issues.
fn signed(claims: &Value) -> TestResult<String> {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &key,
    )?)
}

/// Publishes `body` with the admin token; `201` expected.
async fn publish(base: &str, body: &Value) -> TestResult {
    let response = http()
        .post(format!("{base}/notifications"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .json(body)
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    Ok(())
}
