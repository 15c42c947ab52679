//! # sse-resume: `Last-Event-ID` done right
//!
//! A producer publishes `event: tick` every interval into a shared, bounded history;
//! `POST /events` publishes `event: note`. `GET /events` replays every retained event
//! after the client's `Last-Event-ID`, then goes on live: each event exactly once, in
//! order, with no gap, also when the reconnect races a publish.
//!
//! With `--redis` (the `sse-redis` crate, wired in `main.rs`), the history is a Redis
//! stream that every instance reads: ids are the stream's ids, so a client resumes on
//! any instance, and one instance at a time (the [`Producer`]) produces the ticks.
//!
//! The tutorial's version kept one global counter and no history: a reconnecting client
//! skipped ahead to whatever the counter said, and everything published while it was
//! away was gone. Here the history *is* the queue ([`sse_shared::hub`]): a subscriber is
//! a cursor into it, so replay and live are the same read and cannot race.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use salvo::affix_state;
use salvo::http::StatusCode;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::{Deserialize, Serialize};
use sse_shared::body;
use sse_shared::error::ApiError;
use sse_shared::event_stream;
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::{EventId, Hub, HubEvent, Start};
use sse_shared::page;
use sse_shared::producer::{Held, Producer};
use sse_shared::publish::Publisher;
use sse_shared::resume::last_event_id;
use sse_shared::snapshot::find_newest;
use sse_shared::stream_route::{StreamRoute, StreamSettings};
use tokio::time::{MissedTickBehavior, interval};
use tokio_util::sync::CancellationToken;

/// The longest note `POST /events` accepts.
pub const MAX_NOTE_BYTES: usize = 16 * 1024;

const FILES: [(&str, &str); 2] = [
    ("resume.css", include_str!("../static/resume.css")),
    ("resume.js", include_str!("../static/resume.js")),
];

/// What the history carries (as JSON in Redis, when there is one).
#[derive(Serialize, Deserialize)]
pub enum ResumeEvent {
    /// The producer's heartbeat.
    Tick(Tick),
    /// Text someone posted.
    Note(String),
}

/// The `data` of `event: tick`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Tick {
    /// Counts ticks (1, 2, ...), so a client can see gaps.
    pub seq: u64,
    /// When it was made (RFC 3339, milliseconds, UTC).
    pub at: String,
}

impl HubEvent for ResumeEvent {
    // Built once per event, whatever the number of subscribers.
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        let frame = Frame::new().id(&id.to_string())?;
        Ok(match self {
            ResumeEvent::Tick(tick) => frame.event("tick")?.json(tick)?,
            // Any text is safe as data: line breaks become separate `data:` lines.
            ResumeEvent::Note(text) => frame.event("note")?.data(text),
        }
        .finish())
    }
}

/// Publishes a tick every `every` until `shutdown`, while this instance is the
/// producer (always, without Redis). With Redis, one instance at a time holds the
/// producer's lease; a new holder goes on from the last tick in Redis, and its ticks
/// are appended only while the lease is still its own, so two producers never both tick.
pub async fn produce_ticks(
    mut producer: Producer<ResumeEvent>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut next_seq = 1;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        match producer.holds().await {
            Held::No => continue,
            Held::Taken => next_seq = last_tick(producer.hub()) + 1,
            Held::Still => {}
        }
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let tick = ResumeEvent::Tick(Tick { seq: next_seq, at });
        match producer.publish(vec![tick]).await {
            Ok(_) => next_seq += 1,
            Err(e) => tracing::warn!("cannot publish a tick: {e}"),
        }
    }
    producer.release().await;
}

/// The newest tick's `seq` in the history (0 when there is none).
fn last_tick(hub: &Hub<ResumeEvent>) -> u64 {
    find_newest(hub, |event| match event {
        ResumeEvent::Tick(tick) => Some(tick.seq),
        ResumeEvent::Note(_) => None,
    })
    .unwrap_or(0)
}

/// The routes: `GET /events`, `POST /events` and the page. [`Events`] is in every
/// handler's `Depot` (salvo's `affix_state`). (`#[endpoint]` describes a route for
/// OpenAPI; `main.rs` serves the description, see `contract.rs`. Anyone may post a
/// note: `main.rs` also limits how many each client address may post, with a hoop.)
pub fn router(log: &Publisher<ResumeEvent>) -> Router {
    let events = Events { log: log.clone() };
    Router::new()
        .hoop(affix_state::inject(Arc::new(events)))
        .push(
            Router::with_path("events")
                .hoop(StreamRoute)
                .get(subscribe)
                .post(post_note),
        )
        .push(page::routes(
            "SSE resume",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// The events: the log they are published to and read from.
pub struct Events {
    log: Publisher<ResumeEvent>,
}

/// `GET /events`: every retained event after `Last-Event-ID` (none without one),
/// `live`, then live events: each once, in order, with no gap.
#[endpoint(
    status_codes(200, 429, 503),
    parameters(
        ("last-event-id" = Option<String>, Header, description = "The last id seen: replay what came after it."),
        ("lastEventId" = Option<String>, Query, description = "The same, for a page that reconnects by hand (the header wins).")
    )
)]
async fn subscribe(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let events = events(depot)?;
    // With an id: everything after it that is still retained (or `reset`, if it is
    // not an id, too old, or never issued). Without: live from now.
    let start = Start::resume_or(last_event_id(req), Start::Live);
    // `event: live` after the replay lets the page mark replayed events.
    let frames = events.log.hub().subscribe(start).with_live_marker();
    let settings = StreamSettings::from_depot(depot);
    event_stream::respond(res, &settings, frames.into_stream());
    Ok(())
}

/// What `POST /events` answers.
#[derive(Serialize, ToSchema)]
struct Created {
    /// The note's event id.
    id: String,
}

// (`429`: the limit per client address `main.rs` puts in front.)
/// `POST /events`: publishes the body as `event: note` (1 to 16 KiB of UTF-8, not only
/// spaces). `429`: too many notes from one client address.
#[endpoint(
    request_body(content = String, content_type = "text/plain", description = "The note."),
    status_codes(201, 400, 403, 408, 413, 429, 503),
    responses((status_code = 201, description = "Published.", body = Created))
)]
async fn post_note(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let events = events(depot)?;
    let text = body::text(req, MAX_NOTE_BYTES).await?;
    if text.trim().is_empty() {
        let message = "The note is only spaces; write something.";
        return Err(ApiError::bad_request("blank-note", message));
    }
    // 503 while Redis is unreachable (nothing is published then).
    let id = events.log.publish(ResumeEvent::Note(text)).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(Created { id: id.to_string() }));
    Ok(())
}

/// The [`Events`] [`router`] puts in the `Depot`.
fn events(depot: &Depot) -> Result<Arc<Events>, ApiError> {
    let events = depot.get_typed::<Arc<Events>>().cloned();
    events.map_err(|_| ApiError::internal("The events are not set up."))
}
