//! sse-notify with the Redis backend: a session made on one instance is valid on the
//! other, and a notification published on one reaches its user's stream on the other.

use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, RedisServer, SseConnection, TestResult, http};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");
const ADMIN: &str = "shared-admin-token-0123456789";

#[tokio::test]
async fn sessions_and_notifications_work_across_instances() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--admin-token",
        ADMIN,
        "--jwt-secret",
        "a shared JWT secret, 32 bytes or more",
    ];
    let a = AppProcess::spawn(BIN, &args).await?;
    let b = AppProcess::spawn(BIN, &args).await?;

    // Signed in on A...
    let response = http()
        .post(format!("{}/session", a.url()))
        .header("authorization", format!("Bearer {ADMIN}"))
        .json(&json!({"user": "alice"}))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or("no cookie")?
        .to_owned();
    // ...listening on B.
    let mut on_b = SseConnection::open(
        &format!("{}/notifications/stream", b.url()),
        &[("cookie", &cookie)],
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
    let titles = |data: Option<String>| -> TestResult<String> {
        let data: Value = serde_json::from_str(&data.unwrap_or_default())?;
        Ok(data["title"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(titles(on_b.next_event().await?.data)?, "for alice");
    assert_eq!(titles(on_b.next_event().await?.data)?, "for all");
    assert_eq!(titles(anonymous_on_b.next_event().await?.data)?, "for all");
    Ok(())
}
