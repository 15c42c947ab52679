//! Where events are published: straight into this process's [`Hub`], or into a log
//! that several instances share (the `sse-redis` crate keeps one in a Redis stream),
//! whose reader feeds every instance's hub, this one's too. Subscribers always read the
//! hub; only publishing differs, so an example is written once for both.
//!
//! A job that must run on one instance at a time (a ticker, a market simulator)
//! publishes through a `producer::Producer` instead.

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
