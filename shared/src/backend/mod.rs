//! Where events are published: this process's memory, or a Redis stream that several
//! instances share ([`redis_log`]). Subscribers always read the local [`Hub`]; only
//! publishing differs. [`lease`] runs one job (a producer) across instances.
//!
//! Everything Redis is in this folder: an example that runs in memory only needs
//! [`EventLog::Memory`] and never the rest.

pub mod lease;
pub mod redis_log;

use std::sync::Arc;
use std::time::Duration;

use salvo::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::hub::{EventId, Hub, HubEvent, PublishError};
use lease::Lease;
use redis_log::{RedisLog, RedisLogError};

/// The option that switches an example to the shared Redis backend.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (e.g. redis://127.0.0.1:6379): publish through a Redis stream so
    /// several instances serve one audience. In memory when unset.
    #[arg(long = "redis", env = "REDIS_URL")]
    pub url: Option<String>,
}

/// The publishing side of a hub.
pub enum EventLog<E> {
    /// One process: publish straight into the hub.
    Memory(Hub<E>),
    /// Several processes: publish to Redis; a reader feeds the hub.
    Redis(Arc<RedisLog<E>>),
}

impl<E> Clone for EventLog<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Memory(hub) => Self::Memory(hub.clone()),
            Self::Redis(log) => Self::Redis(Arc::clone(log)),
        }
    }
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishFailed {
    /// The event itself was refused (too large, or not framable).
    #[error(transparent)]
    Rejected(#[from] PublishError),
    /// The shared log could not take it.
    #[error(transparent)]
    Unavailable(#[from] RedisLogError),
}

impl From<PublishFailed> for ApiError {
    fn from(failure: PublishFailed) -> Self {
        match failure {
            PublishFailed::Rejected(PublishError::TooLarge { size, max }) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("The event is {size} bytes; the history holds at most {max}."),
            ),
            PublishFailed::Rejected(PublishError::Frame(e)) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            PublishFailed::Unavailable(e) => {
                tracing::warn!("publish failed: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend-unavailable",
                    "The shared event store (Redis) is unreachable; nothing was published. Try again shortly.",
                )
                .retry_after(Duration::from_secs(1))
            }
        }
    }
}

impl<E> EventLog<E>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    /// In memory without `redis_url`; otherwise the Redis stream `key`, with its reader
    /// running until `shutdown`. Fails when Redis cannot be reached.
    pub async fn open(
        redis_url: Option<&str>,
        key: &str,
        hub: Hub<E>,
        shutdown: CancellationToken,
    ) -> Result<Self, RedisLogError> {
        match redis_url {
            None => Ok(Self::Memory(hub)),
            Some(url) => {
                let log = RedisLog::connect(url, key, hub).await?;
                log.spawn_reader(shutdown);
                Ok(Self::Redis(log))
            }
        }
    }

    /// The hub subscribers read.
    pub fn hub(&self) -> &Hub<E> {
        match self {
            Self::Memory(hub) => hub,
            Self::Redis(log) => log.hub(),
        }
    }

    /// Publishes `events` as one unit, in order; returns their ids.
    pub async fn publish_batch(&self, events: Vec<E>) -> Result<Vec<EventId>, PublishFailed> {
        match self {
            Self::Memory(hub) => Ok(hub.publish_batch(events)?),
            Self::Redis(log) => {
                // Refused here, not skipped by every reader later.
                for event in &events {
                    log.hub().check(event)?;
                }
                Ok(log.publish_batch(&events).await?)
            }
        }
    }

    /// Publishes `events` as one unit for the holder of `lease` (a producer): with
    /// Redis, appended only while the lease is still this instance's, checked by Redis
    /// in the same step (else `lease` is marked lost and nothing is appended).
    pub async fn publish_held(
        &self,
        lease: &mut Lease,
        events: Vec<E>,
    ) -> Result<Vec<EventId>, PublishFailed> {
        match self {
            Self::Memory(hub) => Ok(hub.publish_batch(events)?),
            Self::Redis(log) => {
                // Refused here, not skipped by every reader later.
                for event in &events {
                    log.hub().check(event)?;
                }
                let appended = log.publish_fenced(&events, lease.fence()).await;
                if let Err(RedisLogError::NotHolder) = appended {
                    lease.lost();
                }
                Ok(appended?)
            }
        }
    }

    /// Waits (at most `within`) until the hub holds everything the shared log holds
    /// now: what a new producer does before it goes on from the hub's last event.
    pub async fn caught_up(&self, within: Duration) -> Result<(), PublishFailed> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(log) => Ok(log.catch_up(within).await?),
        }
    }

    /// Publishes `event`; returns its id.
    pub async fn publish(&self, event: E) -> Result<EventId, PublishFailed> {
        match self {
            Self::Memory(hub) => Ok(hub.publish(event)?),
            Self::Redis(log) => {
                log.hub().check(&event)?;
                Ok(log.publish(&event).await?)
            }
        }
    }
}
