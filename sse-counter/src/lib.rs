//! # sse-counter: the smallest useful SSE stream
//!
//! `GET /events` sends `data: N` every interval, counting from 1, each with `id: N`.
//! When the connection drops, the browser reconnects with `Last-Event-ID: N` and the
//! count goes on at N+1: the id is the cursor, so the client, not the server, remembers
//! where it was. A garbage id gets `event: reset` and a count from 1, never an error
//! status (an `EventSource` would give up for good on one).
//!
//! What is not here because `sse_shared` does it: the headers, `retry:`, keep-alive,
//! connection limits, metrics, and ending the stream on shutdown.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use salvo::prelude::*;
use sse_shared::page::{self, StaticFile};
use sse_shared::resume::{ResetReason, last_event_id, reset_frame};
use sse_shared::{ApiError, Frame, Streams};
use tokio::time::{MissedTickBehavior, interval};

/// The page's own files; the layout and shared stylesheet come from `sse_shared::page`.
const FILES: [StaticFile; 2] = [
    StaticFile::style("counter.css", include_str!("../static/counter.css")),
    StaticFile::script("counter.js", include_str!("../static/counter.js")),
];

/// The counter's routes: `GET /events` and the page.
pub fn router(streams: &Streams, every: Duration) -> Router {
    Router::new()
        .push(Router::with_path("events").get(CounterStream {
            streams: streams.clone(),
            every,
        }))
        .push(page::routes(
            "SSE counter",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// `GET /events`: a count from 1 (or from `Last-Event-ID` + 1), one number per tick.
struct CounterStream {
    streams: Streams,
    every: Duration,
}

#[handler]
impl CounterStream {
    async fn handle(&self, req: &mut Request, res: &mut Response) -> Result<(), ApiError> {
        // Take a stream slot first, so a refusal is a plain 503/429 response.
        let permit = self.streams.admit(req)?;

        // Where to start, and whether the client must be told its id was no good.
        let (first, reset) = match last_event_id(req).map(|id| id.parse::<u64>()) {
            None => (1, None),
            Some(Ok(seen)) => match seen.checked_add(1) {
                Some(next) => (next, None),
                None => (1, Some(ResetReason::UnknownId)),
            },
            Some(Err(_)) => (1, Some(ResetReason::InvalidId)),
        };
        // The counter keeps no history, so there is no oldest or latest id to name.
        let reset = reset.map(|reason| reset_frame::<u64>(reason, None, None));

        let mut ticks = interval(self.every);
        // A client that reads slowly gets the next number late, not a burst of them.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let metrics = self.streams.metrics().clone();
        let count = stream::unfold((ticks, first), move |(mut ticks, n)| {
            let metrics = metrics.clone();
            async move {
                ticks.tick().await;
                metrics.events_published.inc();
                let frame = Frame::new().id_u64(n).data(&n.to_string()).finish();
                Some((frame, (ticks, n.checked_add(1)?)))
            }
        });

        self.streams
            .respond(res, permit, stream::iter(reset).chain(count));
        Ok(())
    }
}
