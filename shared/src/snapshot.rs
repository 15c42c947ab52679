//! What a stream that starts with a snapshot needs from the hub, beyond subscribing:
//! the newest retained events (to go on from the last tick), a look at the history
//! under the same lock that fixes a subscription's cursor (so the snapshot and the
//! stream agree exactly), a first frame, and the `live` marker after a replay.
//!
//! ```
//! # use bytes::Bytes;
//! # use sse_shared::frame::{Frame, FrameError};
//! # use sse_shared::hub::{EventId, HubEvent};
//! # struct Note(String);
//! # impl HubEvent for Note {
//! #     fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
//! #         Ok(Frame::new().id(&id.to_string())?.data(&self.0).finish())
//! #     }
//! # }
//! use sse_shared::hub::{HistoryLimits, Hub, Start};
//! use sse_shared::snapshot::{find_newest, subscribe_with};
//!
//! let hub = Hub::new(HistoryLimits::default());
//! for text in ["a", "b"] {
//!     hub.publish(Note(text.into()))?;
//! }
//! assert_eq!(find_newest(&hub, |n| Some(n.0.clone())).as_deref(), Some("b"));
//! // A snapshot that agrees exactly with where the stream starts.
//! let (stream, seen) = subscribe_with(&hub, Start::Live, |_| true, |newest| newest.count());
//! assert_eq!(seen, 2);
//! # let _ = stream;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use bytes::Bytes;

use crate::hub::{EventId, Hub, HubEvent, Start, Subscription};
use crate::wake::Wake;

/// The first `Some` that `find` returns for `hub`'s retained events, newest first
/// (for example, the last tick, to go on from it).
pub fn find_newest<E: HubEvent, R>(hub: &Hub<E>, find: impl FnMut(&E) -> Option<R>) -> Option<R> {
    let history = hub.inner.history.read();
    history.newest_first().map(|s| &*s.event).find_map(find)
}

/// The id of the oldest retained event for which `found` holds (for example, the
/// event a client-chosen id names, where ids may repeat and the first one counts).
pub fn find_oldest<E: HubEvent>(
    hub: &Hub<E>,
    mut found: impl FnMut(EventId, &E) -> bool,
) -> Option<EventId> {
    let history = hub.inner.history.read();
    let mut events = history.oldest_first();
    events.find(|s| found(s.id, &s.event)).map(|s| s.id)
}

/// Like [`Hub::subscribe_filtered`], and also runs `inspect` over the retained events,
/// newest first, under the same lock that fixes the cursor: a snapshot built there
/// agrees exactly with where the subscription starts.
pub fn subscribe_with<E: HubEvent, R>(
    hub: &Hub<E>,
    start: Start,
    filter: impl Fn(&E) -> bool + Send + Sync + 'static,
    inspect: impl FnOnce(&mut dyn Iterator<Item = &E>) -> R,
) -> (Subscription<E>, R) {
    let wake = hub.inner.wake.subscribe();
    let history = hub.inner.history.read();
    let inspected = inspect(&mut history.newest_first().map(|s| &*s.event));
    let subscription = hub.start_at(&history, start, Box::new(filter), Wake::Every(wake));
    (subscription, inspected)
}

impl<E: HubEvent> Subscription<E> {
    /// Whether the stream will start with `event: reset` (the client's id could not be
    /// honoured), so the caller can follow it with a fresh snapshot.
    pub fn starts_with_reset(&self) -> bool {
        self.was_reset
    }

    /// Sends `frame` first: after a reset, if there is one, and before any event.
    pub fn send_first(mut self, frame: Bytes) -> Self {
        self.pending.push(frame);
        self
    }

    /// After the first read (the replay), send `event: live` with data
    /// `{"after": "<id>"}`: everything before it was replayed, everything after is live.
    /// The marker has no `id:` and is not kept in the history.
    pub fn with_live_marker(mut self) -> Self {
        self.live_marker = true;
        self
    }
}
