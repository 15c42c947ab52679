//! The binary's `GET /openapi.json` (`main.rs` serves it, from `contract.rs`): valid
//! OpenAPI 3.2 (checked by an independent validator), and every kind of event the stream
//! sends (tick, note, live, reset) is what it describes.

use sse_shared::testing::{AppProcess, Sse, SseConnection, TestResult, check_contract, http};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");

#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let app = AppProcess::spawn(BIN, &["--interval-ms", "100"]).await?;
    let events = format!("{}/events", app.url());
    // The first tick names the run: `RUN-0` is before every event of it.
    let mut live = SseConnection::open(&events, &[]).await?;
    let tick = next_of(&mut live, "tick").await?;
    let id = tick.id.ok_or("a tick without an id")?;
    let run = id.split_once('-').ok_or("not a hub id")?.0.to_owned();
    let posted = http()
        .post(&events)
        .body("a note\non two lines")
        .send()
        .await?;
    assert_eq!(posted.status(), 201);
    // A replay of everything: the first tick, the note, and `live` once caught up.
    let before_all = format!("{run}-0");
    let mut resumed = SseConnection::open(&events, &[("last-event-id", &before_all)]).await?;
    let mut read = Vec::new();
    for kind in ["tick", "note", "live"] {
        read.push(next_of(&mut resumed, kind).await?);
    }
    let mut reset = SseConnection::open(&events, &[("last-event-id", "x")]).await?;
    read.push(reset.next_event().await?);
    check_contract(
        app.url(),
        "/events",
        &read,
        &["tick", "note", "live", "reset"],
    )
    .await
}

/// The next event of `kind`, skipping others.
async fn next_of(conn: &mut SseConnection, kind: &str) -> TestResult<Sse> {
    loop {
        let event = conn.next_event().await?;
        if event.event.as_deref() == Some(kind) {
            return Ok(event);
        }
    }
}
