//! # sse-counter: the smallest useful SSE stream
//!
//! `GET /events` sends `data: N` every interval, counting from 1, each with `id: N`.
//! When the connection drops, the browser reconnects with `Last-Event-ID: N` and the
//! count goes on at N+1: the id is the cursor, so the client, not the server, remembers
//! where it was. A garbage id gets `event: reset` and a count from 1, never an error
//! status (an `EventSource` would give up for good on one).
//!
//! Built on salvo's own `salvo::sse`: each client has its own count, so formatting an
//! event per client costs nothing, and no client text reaches an event name or id
//! (`SseEvent::name` and `id` panic on a line break). Climb to the shared core's
//! `event_stream` and `hub` modules, as the other examples do, when one event
//! goes to many clients (serialize it once), when client text names events, or when
//! a reconnect must replay a history.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::StreamExt;
use salvo::affix_state;
use salvo::http::header::HeaderValue;
use salvo::prelude::*;
use salvo::sse::{SseEvent, SseKeepAlive};
use salvo_oapi::endpoint;
use sse_shared::page;
use sse_shared::resume::{Reset, ResetReason, last_event_id};
use sse_shared::stream_route::{StreamRoute, StreamSettings};
use tokio::time::{MissedTickBehavior, interval};

/// The page's own files; the layout and shared stylesheet come from `sse_shared::page`.
const FILES: [(&str, &str); 2] = [
    ("counter.css", include_str!("../static/counter.css")),
    ("counter.js", include_str!("../static/counter.js")),
];

/// The counter's routes: `GET /events` and the page. The interval is in every
/// handler's `Depot` (salvo's `affix_state`). (`#[endpoint]` describes a route for
/// OpenAPI; `main.rs` serves the description, see `contract.rs`.)
pub fn router(every: Duration) -> Router {
    Router::new()
        .hoop(affix_state::inject(Interval(every)))
        .push(Router::with_path("events").hoop(StreamRoute).get(count))
        .push(page::routes(
            "SSE counter",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// How long between two numbers.
#[derive(Clone, Copy)]
struct Interval(Duration);

/// `GET /events`: a count from 1, one number per interval; resumed after
/// `Last-Event-ID` (or the `lastEventId` query parameter).
#[endpoint(
    status_codes(200, 429, 503),
    parameters(
        ("last-event-id" = Option<String>, Header, description = "The last id seen: the count goes on after it."),
        ("lastEventId" = Option<String>, Query, description = "The same, for a page that reconnects by hand (the header wins).")
    )
)]
async fn count(req: &mut Request, depot: &mut Depot, res: &mut Response) {
    // Where to start, and whether the client must be told its id was no good.
    let (mut n, reset) = match last_event_id(req).map(|id| id.parse::<u64>()) {
        None => (1, None),
        Some(Ok(seen)) => match seen.checked_add(1) {
            Some(next) => (next, None),
            None => (1, Some(ResetReason::UnknownId)),
        },
        Some(Err(_)) => (1, Some(ResetReason::InvalidId)),
    };
    // The production stack's `--retry-ms` and `--keep-alive-secs` (defaults without).
    let settings = StreamSettings::from_depot(depot);
    // Each stream's own `retry:`, spread so that clients dropped together (a deploy)
    // do not all come back in the same instant.
    let retry = settings.retry();
    let every = depot
        .get_typed::<Interval>()
        .map_or(Duration::from_secs(1), |i| i.0);
    let mut ticks = interval(every);
    // A client that reads slowly gets the next number late, not a burst of them.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let events = async_stream::stream! {
        yield SseEvent::default().retry(retry);
        if let Some(reason) = reset {
            // No history here, so no oldest or latest id to name; no `id:`, so
            // the client's cursor stays as it was until the next number.
            let data = Reset::new(reason, None::<u64>, None::<u64>);
            if let Ok(event) = SseEvent::default().name("reset").json(data) {
                yield event;
            }
        }
        loop {
            ticks.tick().await;
            yield SseEvent::default().id(n.to_string()).text(n.to_string());
            let Some(next) = n.checked_add(1) else { break };
            n = next;
        }
    };
    // nginx buffers proxied responses unless told not to.
    let no_buffering = HeaderValue::from_static("no");
    res.headers_mut().insert("x-accel-buffering", no_buffering);
    // A comment after `keep_alive` without a number keeps proxies from closing an
    // idle stream.
    SseKeepAlive::new(events.map(Ok::<_, Infallible>))
        .max_interval(settings.keep_alive)
        .comment(" keep-alive")
        .stream(res);
}
