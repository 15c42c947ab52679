//! Where events are published: straight into this process's [`Hub`], or into a log
//! that several instances share (the `sse-redis` crate keeps one in a Redis stream),
//! whose reader feeds every instance's hub, this one's too. Subscribers always read the
//! hub; only publishing differs, so an example is written once for both.
//!
//! A job that must run on one instance at a time (a ticker, a market simulator)
//! publishes through a `producer::Producer` instead.
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
//! use sse_shared::publish::Publisher;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let log = Publisher::in_memory(Hub::new(HistoryLimits::default()));
//! let mut reader = log.hub().subscribe(Start::Live);
//! let id = log.publish(Note("hello".into())).await?; // the same call with Redis
//! let frames = reader.next_batch().await.ok_or("the hub is gone")?;
//! assert_eq!(&frames[..], format!("id: {id}\ndata: hello\n\n").as_bytes());
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::hub::{EventId, Hub, HubEvent, PublishError};

/// A log several instances share (`sse_redis::RedisLog`). Its reader hands every
/// entry, this instance's own too, to the local hub.
pub trait SharedLog<E>: Send + Sync + 'static {
    /// Appends `events` in order, all or none; returns the ids the log gave them.
    fn append(&self, events: Vec<E>) -> BoxFuture<'_, Result<Vec<EventId>, PublishError>>;
}

/// The publishing side of a hub: the hub itself, or a shared log that feeds it.
pub struct Publisher<E> {
    hub: Hub<E>,
    shared: Option<Arc<dyn SharedLog<E>>>,
}

impl<E> Clone for Publisher<E> {
    fn clone(&self) -> Self {
        Self {
            hub: self.hub.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<E: HubEvent> Publisher<E> {
    /// One process: publishing goes straight into `hub`.
    pub fn in_memory(hub: Hub<E>) -> Self {
        Self { hub, shared: None }
    }

    /// Several processes: publishing goes to `log`, whose reader feeds `hub`.
    pub fn shared(hub: Hub<E>, log: Arc<dyn SharedLog<E>>) -> Self {
        Self {
            hub,
            shared: Some(log),
        }
    }

    /// The hub subscribers read.
    pub fn hub(&self) -> &Hub<E> {
        &self.hub
    }

    /// Whether events go through a shared log (and reach the hub through its reader).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Publishes `event`; returns its id.
    pub async fn publish(&self, event: E) -> Result<EventId, PublishError> {
        let ids = self.publish_batch(vec![event]).await?;
        ids.first()
            .copied()
            .ok_or_else(|| PublishError::Unavailable("the log gave no id".into()))
    }

    /// Publishes `events` as one unit, in order; returns their ids.
    pub async fn publish_batch(&self, events: Vec<E>) -> Result<Vec<EventId>, PublishError> {
        match &self.shared {
            None => self.hub.publish_batch(events),
            Some(log) => {
                check(&self.hub, &events)?;
                log.append(events).await
            }
        }
    }
}

/// Refused here, not skipped later by the reader of every instance.
pub(crate) fn check<E: HubEvent>(hub: &Hub<E>, events: &[E]) -> Result<(), PublishError> {
    events.iter().try_for_each(|event| hub.check(event))
}
