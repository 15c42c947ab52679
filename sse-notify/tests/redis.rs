//! sse-notify with the Redis backend: a session made on one instance is valid on the
//! other, and a notification published on one reaches its user's stream on the other;
//! while Redis is down a publish gets 503, and publishing recovers when it is back.

use std::time::Duration;

use serde_json::{Value, json};
use sse_shared::testing::{
    AppProcess, RedisServer, SseConnection, TestResult, expect_backend_down, http, json_data,
    metric, set_cookie, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");
const ADMIN: &str = "shared-admin-token-0123456789";

/// What every instance of one service shares: its Redis, admin token and JWT secret.
fn shared_options(redis: &str) -> [&str; 6] {
    [
        "--redis",
        redis,
        "--admin-token",
        ADMIN,
        "--jwt-secret",
        "a shared JWT secret, 32 bytes or more",
    ]
}

#[tokio::test]
async fn sessions_and_notifications_work_across_instances() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let args = shared_options(&url);
    let a = AppProcess::spawn(BIN, &args).await?;
    let b = AppProcess::spawn(BIN, &args).await?;

    // Signed in on A...
    let response = http()
        .post(format!("{}/session", a.url()))
        .header("authorization", format!("Bearer {ADMIN}"))
        .json(&json!({"user": "alice"}))
        .send()
        .await?;
    let set_cookie = set_cookie(response.headers())?;
    let cookie = set_cookie.split(';').next().unwrap_or_default();
    // ...listening on B.
    let mut on_b = SseConnection::open(
        &format!("{}/notifications/stream", b.url()),
        &[("cookie", cookie)],
    )
    .await?;
    let mut anonymous_on_b =
        SseConnection::open(&format!("{}/notifications/stream", b.url()), &[]).await?;

    for body in [
        json!({"title": "for alice", "message": "m", "user": "alice"}),
        json!({"title": "for all", "message": "m"}),
    ] {
        let response = http()
            .post(format!("{}/notifications", a.url()))
            .header("authorization", format!("Bearer {ADMIN}"))
            .json(&body)
            .send()
            .await?;
        assert_eq!(response.status(), 201);
        let published: Value = response.json().await?;
        assert!(
            published["id"].as_str().is_some_and(|id| id.contains('-')),
            "a stream id: {published}"
        );
    }
    assert_eq!(json_data(&on_b.next_event().await?)?["title"], "for alice");
    assert_eq!(json_data(&on_b.next_event().await?)?["title"], "for all");
    assert_eq!(
        json_data(&anonymous_on_b.next_event().await?)?["title"],
        "for all"
    );
    Ok(())
}

#[tokio::test]
async fn while_redis_is_down_a_publish_gets_503_and_publishing_recovers() -> TestResult {
    let mut redis = RedisServer::start().await?;
    let url = redis.url();
    let args = shared_options(&url);
    let a = AppProcess::spawn(BIN, &args).await?;
    let mut listener =
        SseConnection::open(&format!("{}/notifications/stream", a.url()), &[]).await?;
    let publish = |title: &'static str| {
        http()
            .post(format!("{}/notifications", a.url()))
            .header("authorization", format!("Bearer {ADMIN}"))
            .json(&json!({"title": title, "message": "m"}))
            .send()
    };

    redis.stop().await?;
    let response = publish("while down").await?;
    expect_backend_down(response, a.url()).await?;
    assert!(metric(a.url(), "sse_backend_errors_total").await? >= 1.0);

    redis.restart().await?;
    within(
        Duration::from_secs(15),
        "a publish to succeed again",
        async {
            while publish("after").await?.status() != 201 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            TestResult::Ok(())
        },
    )
    .await??;
    // The refused one never arrives; the first that was taken does.
    let event = listener.next_event().await?;
    assert_eq!(json_data(&event)?["title"], "after");
    Ok(())
}
