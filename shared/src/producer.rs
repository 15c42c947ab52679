//! One job, one instance: a [`Producer`] publishes for a job that must run once across
//! instances (a ticker, a market simulator). In memory it always runs; on a shared log
//! it runs while it holds a [`SharedLease`] (`sse_redis::RedisLease`), and the log
//! refuses its appends once the lease is another's.
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
//! use sse_shared::producer::{Held, Producer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut ticker = Producer::in_memory(Hub::new(HistoryLimits::default()));
//! // In memory this instance always runs the job; with a lease, only its holder does.
//! assert_ne!(ticker.holds().await, Held::No);
//! ticker.publish(vec![Note("tick".into())]).await?;
//! assert!(ticker.hub().latest().is_some());
//! # Ok(())
//! # }
//! ```

use futures_util::future::BoxFuture;

use crate::hub::{EventId, Hub, HubEvent, PublishError};
use crate::publish::check;

/// One instance's claim to run a job on a shared log.
pub trait SharedLease<E>: Send {
    /// Whether this instance holds the lease now, taking or renewing it. When it has
    /// just taken it, or `catch_up` asks, it first waits until its hub holds everything
    /// the log holds (and answers [`Held::Taken`]), so the job goes on from the log's
    /// last event, not from a hub whose reader is behind.
    fn holds(&mut self, catch_up: bool) -> BoxFuture<'_, Held>;

    /// Appends `events` only while the lease is this instance's, checked by the log in
    /// the same step: a holder that stalled past its lease never appends beside the
    /// new one.
    fn append(&mut self, events: Vec<E>) -> BoxFuture<'_, Result<Vec<EventId>, PublishError>>;

    /// Gives the lease up (on shutdown), so another instance takes over at once.
    fn release(&mut self) -> BoxFuture<'_, ()>;
}

/// Whether this instance runs the job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// Another instance does (or the log is unreachable).
    No,
    /// This one, since its last step.
    Still,
    /// This one, from now: what the job kept from before may be stale, so rebuild it
    /// from the hub, which holds everything the log does.
    Taken,
}

/// Publishes for a job that runs on one instance at a time (see [`SharedLease`]).
pub struct Producer<E> {
    hub: Hub<E>,
    lease: Option<Box<dyn SharedLease<E>>>,
    /// The next [`Producer::holds`] answers `Taken`: at the start, and after a failed
    /// publish (it may have been appended all the same, or the lease may have moved).
    stale: bool,
}

impl<E: HubEvent> Producer<E> {
    /// The only instance: publishes straight into `hub`.
    pub fn in_memory(hub: Hub<E>) -> Self {
        Self::new(hub, None)
    }

    /// One of several instances: publishes through `lease` while it holds it; `hub` is
    /// this instance's, fed by the shared log.
    pub fn leased(hub: Hub<E>, lease: Box<dyn SharedLease<E>>) -> Self {
        Self::new(hub, Some(lease))
    }

    fn new(hub: Hub<E>, lease: Option<Box<dyn SharedLease<E>>>) -> Self {
        Self {
            hub,
            lease,
            stale: true,
        }
    }

    /// The hub this producer's events reach.
    pub fn hub(&self) -> &Hub<E> {
        &self.hub
    }

    /// Whether this instance runs the job now (always, in memory).
    pub async fn holds(&mut self) -> Held {
        let held = match &mut self.lease {
            None if self.stale => Held::Taken,
            None => Held::Still,
            Some(lease) => lease.holds(self.stale).await,
        };
        self.stale = held == Held::No;
        held
    }

    /// Publishes `events` as one unit, only while this instance holds the lease.
    pub async fn publish(&mut self, events: Vec<E>) -> Result<Vec<EventId>, PublishError> {
        let published = match &mut self.lease {
            None => self.hub.publish_batch(events),
            Some(lease) => match check(&self.hub, &events) {
                Ok(()) => lease.append(events).await,
                Err(e) => Err(e),
            },
        };
        self.stale |= published.is_err();
        published
    }

    /// Gives the lease up, so another instance takes over at once.
    pub async fn release(mut self) {
        if let Some(lease) = &mut self.lease {
            lease.release().await;
        }
    }
}
