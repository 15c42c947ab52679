//! One job, one instance: a [`Producer`] publishes for a job that must run once across
//! instances (a ticker, a market simulator). In memory it always runs; on a shared log
//! it runs while it holds a lease ([`SharedLease`]), and the log refuses its appends
//! once the lease is another's.

use std::sync::Arc;
use std::time::Duration;

use crate::hub::PublishError;
use crate::hub::{EventId, Hub, HubEvent};
use crate::publish::{Held, Publisher, SharedLease, check};

/// Publishes for a job that runs on one instance at a time (see [`SharedLease`]).
pub struct Producer<E> {
    hub: Hub<E>,
    lease: Option<Box<dyn SharedLease<E>>>,
    /// The next [`Producer::holds`] answers `Taken`: at the start, and after a failed
    /// publish (it may have been appended all the same, or the lease may have moved).
    stale: bool,
}

impl<E: HubEvent> Producer<E> {
    /// The publisher for a job that runs on one instance at a time, `name` across
    /// the instances sharing `log` (its lease is lost `ttl` after its holder's last
    /// renewal); in memory, the only instance.
    pub async fn open(log: &Publisher<E>, name: &str, ttl: Duration) -> Result<Self, PublishError> {
        let lease = match log.shared_log() {
            None => None,
            Some(shared) => Some(Arc::clone(shared).lease(name.to_owned(), ttl).await?),
        };
        Ok(Self {
            hub: log.hub().clone(),
            lease,
            stale: true,
        })
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
