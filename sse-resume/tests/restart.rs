//! In memory, a restart starts a new run: an id from the old run is answered with
//! `reset` (`unknown-id`), never read as a position among the new run's events.

use serde_json::Value;
use sse_shared::testing::{AppProcess, SseConnection, TestResult, http, json_data};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");

async fn note(app: &AppProcess, text: &str) -> TestResult<String> {
    let response = http()
        .post(format!("{}/events", app.url()))
        .body(text.to_owned())
        .send()
        .await?;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await?;
    Ok(created["id"].as_str().ok_or("no id")?.to_owned())
}

#[tokio::test]
async fn an_id_from_before_a_restart_gets_a_reset_not_a_silent_skip() -> TestResult {
    // A slow ticker: the notes are what this test follows.
    let args = ["--interval-ms", "3600000", "--note-burst", "100"];
    let mut first = AppProcess::spawn(BIN, &args).await?;
    let mut old_ids = Vec::new();
    for i in 0..5 {
        old_ids.push(note(&first, &format!("old {i}")).await?);
    }
    let port = first.port()?.to_string();
    first.stop().await?;

    let restarted = [&args[..], &["--port", port.as_str()]].concat();
    let second = AppProcess::spawn(BIN, &restarted).await?;
    let mut new_ids = Vec::new();
    for i in 0..10 {
        new_ids.push(note(&second, &format!("new {i}")).await?);
    }
    for id in &new_ids {
        assert!(!old_ids.contains(id), "{id} was issued by both runs");
    }

    // The client that had seen the old run's 5th event comes back.
    let url = format!("{}/events", second.url());
    let mut conn = SseConnection::open(&url, &[("last-event-id", &old_ids[4])]).await?;
    let reset = conn.next_event().await?;
    assert_eq!(reset.event.as_deref(), Some("reset"), "{reset:?}");
    let data: Value = json_data(&reset)?;
    assert_eq!(data["reason"], "unknown-id");
    assert_eq!(data["latest"].as_str(), new_ids.last().map(String::as_str));
    // Then live: the next event is the next note, not a replay of the new run.
    let live = conn.next_event().await?;
    assert_eq!(live.event.as_deref(), Some("live"), "{live:?}");
    let next = note(&second, "after the reset").await?;
    let event = conn.next_event().await?;
    assert_eq!(event.id.as_deref(), Some(next.as_str()));
    assert_eq!(event.data.as_deref(), Some("after the reset"));
    Ok(())
}
