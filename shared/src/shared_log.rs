//! What a hub fed by a log several instances share needs (the `sse-redis` crate's
//! reader calls these): the log's ids instead of a run of its own, appends that carry
//! the log's ids, and the log's floor when it lost entries.
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
//! use sse_shared::hub::{HistoryLimits, Hub};
//!
//! let hub = Hub::new(HistoryLimits::default());
//! hub.take_ids_from_shared_log(); // before the reader delivers anything
//! let id = EventId { ms: 1_700_000_000_000, seq: 0 }; // a Redis stream entry's id
//! assert_eq!(hub.append_with_id(id, Note("from another instance".into())).ok(), Some(true));
//! // A reader that reconnects may see it again: skipped.
//! assert_eq!(hub.append_with_id(id, Note("again".into())).ok(), Some(false));
//! assert_eq!(hub.latest(), Some(id));
//! ```

use std::sync::Arc;

use crate::hub::{EventId, Hub, HubEvent, PublishError, ring};

impl<E: HubEvent> Hub<E> {
    /// Appends an event that already has its id, read from a log other processes share
    /// (the `sse-redis` reader). Ids must grow: one at or below the newest is a repeat
    /// and is skipped (a reader that reconnects may see it again).
    pub fn append_with_id(&self, id: EventId, event: E) -> Result<bool, PublishError> {
        let keyed = self.inner.keyed.lock();
        let rung = {
            let mut history = self.inner.history.write();
            // The log's ids, not a run of ours, from now on.
            history.run = None;
            if history.latest.is_some_and(|latest| id <= latest) {
                return Ok(false);
            }
            let stored = self.store(id, event)?;
            let rung = (!keyed.is_empty()).then(|| (id, Arc::clone(&stored.event)));
            self.append(&mut history, stored);
            rung
        };
        ring(&keyed, rung.as_slice());
        drop(keyed);
        self.inner.observer.published(1);
        self.inner.wake.send_replace(());
        Ok(true)
    }

    /// From now on this hub's ids are a shared log's, not a run of its own: called by
    /// the log's reader before it delivers anything, so that a client's id is judged
    /// as the log's even while the hub is still empty.
    pub fn take_ids_from_shared_log(&self) {
        self.inner.history.write().run = None;
    }

    /// Says that the shared log has lost everything up to `up_to` (trimmed while this
    /// instance was not reading, or before it started): a subscriber whose cursor is
    /// older is reset (`lagged`), and a `Last-Event-ID` older gets `history-gap`.
    pub fn raise_floor(&self, up_to: EventId) {
        {
            let mut history = self.inner.history.write();
            if history.evicted_up_to.is_some_and(|e| e >= up_to) {
                return;
            }
            history.evicted_up_to = Some(up_to);
        }
        self.inner.keyed.lock().wake_all();
        self.inner.wake.send_replace(());
    }
}
