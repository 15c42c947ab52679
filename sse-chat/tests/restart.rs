//! Member ids never repeat: not after a restart of an in-memory room, not after Redis
//! lost its keys. A counter started again at 1 there and gave a newcomer called "alice"
//! the old alice's number. And the page starts afresh when the server cannot go on from
//! where it was (`reset`).

mod common;

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, RedisServer, SseConnection, TestResult};

use common::ReadWelcome;

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");
const WAIT: Duration = Duration::from_secs(10);

/// Joins `base`'s room as `name`; returns the member's id.
async fn join_id(base: &str, name: &str) -> TestResult<String> {
    let url = format!("{base}/chat/events?name={name}");
    let mut conn = SseConnection::open(&url, &[]).await?;
    Ok(conn.chat_welcome().await?.user_id)
}

#[tokio::test]
async fn after_a_restart_a_newcomer_never_gets_an_old_members_id_and_the_page_starts_afresh()
-> TestResult {
    let args = [
        "--retry-ms",
        "300",
        "--retry-jitter-pct",
        "0",
        "--drain-spread-ms",
        "0",
    ];
    let mut first = AppProcess::spawn(BIN, &args).await?;
    let port = first.port()?.to_string();
    let base = first.url().to_owned();
    Browser::run(async |browser| {
        browser.client.goto(&base).await?;
        browser.type_into("#name", "alice").await?;
        browser.click("#join-form button").await?;
        let before = browser
            .wait_for_text("#me", WAIT, |t| t.starts_with("alice #"))
            .await?;
        browser.type_into("#text", "before the restart").await?;
        browser.click("#send-form button").await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains("before the restart"))
            .await?;
        let old_ids = [join_id(&base, "alice").await?, join_id(&base, "bob").await?];
        first.stop().await?;

        // The same port: the page's EventSource comes back by itself, with the old run's
        // Last-Event-ID and a cookie the new run does not know.
        let restarted = [&args[..], &["--port", port.as_str()]].concat();
        let mut second = AppProcess::spawn(BIN, &restarted).await?;
        let after = browser
            .wait_for_text("#me", WAIT, |t| t.starts_with("alice #") && t != before)
            .await?;
        // The old run's messages are gone from the screen (the stream began with reset).
        browser
            .wait_for_text("#messages", WAIT, |t| !t.contains("before the restart"))
            .await?;
        for name in ["alice", "bob", "carol"] {
            let id = join_id(&base, name).await?;
            assert!(
                !old_ids.contains(&id),
                "{name} got {id}, an id of the old run"
            );
        }
        assert_ne!(before, after);
        second.stop().await
    })
    .await
}

#[tokio::test]
async fn after_redis_lost_its_keys_a_newcomer_never_gets_an_old_members_id() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let mut app = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let base = app.url().to_owned();
    let mut old_ids = Vec::new();
    for name in ["alice", "bob"] {
        old_ids.push(join_id(&base, name).await?);
    }
    // Redis restarted without persistence, evicted the keys, or was flushed.
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;
    for name in ["alice", "bob", "carol"] {
        let id = join_id(&base, name).await?;
        assert!(
            !old_ids.contains(&id),
            "{name} got {id}, an id from before the flush"
        );
    }
    app.stop().await
}
