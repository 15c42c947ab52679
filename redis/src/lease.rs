//! One job, one instance: a lease in Redis that its holder keeps renewing.
//!
//! A job that must run once across instances (a market simulator, a ticker) asks
//! [`SharedLease::holds`] before each step. The holder's key expires `ttl` after its
//! last renewal, so when the holder dies another instance takes over within `ttl`.
//! Renewal happens every `ttl / 3`, and a holder that cannot reach Redis stops at once.
//! A holder that stalls longer than `ttl` may still believe it holds the lease, so its
//! appends are fenced: Redis appends only while the lease is its holder's.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sse_shared::hub::PublishError;
use sse_shared::hub::{EventId, HubEvent};
use sse_shared::producer::{Held, SharedLease};
use sse_shared::secret::random_token;
use tokio::time::Instant;

use crate::{RedisLog, RedisLogError, connect};

/// How long a new holder waits for its hub to catch up with the stream.
const CATCH_UP: Duration = Duration::from_secs(2);

/// Extend the key if it is already ours (1), or take it if it is free (2).
const HOLD: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
elseif redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 2
end
return 0";

/// Give the key up, if it is ours.
const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0";

/// The right to run a job, on the Redis key `key`, for appends to `log`.
pub struct RedisLease<E> {
    log: Arc<RedisLog<E>>,
    conn: ConnectionManager,
    key: String,
    me: String,
    ttl: Duration,
    held_until: Option<Instant>,
}

impl<E> RedisLease<E>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    /// A lease on the key `key`, expiring `ttl` after its holder's last renewal.
    pub async fn open(
        log: Arc<RedisLog<E>>,
        key: String,
        ttl: Duration,
    ) -> Result<Self, RedisLogError> {
        let conn = connect(&log.client, Duration::from_secs(1)).await?;
        Ok(Self {
            log,
            conn,
            key,
            me: random_token(),
            ttl,
            held_until: None,
        })
    }

    /// Whether this instance holds the lease now, taking or renewing it as needed.
    /// When it has just taken it, or `catch_up` asks, it first lets the hub catch up
    /// with the stream (see [`SharedLease::holds`]).
    pub async fn holds(&mut self, catch_up: bool) -> Held {
        let now = Instant::now();
        // Renewed recently enough: still ours, with two thirds of the ttl to spare.
        if !catch_up && self.held_until.is_some_and(|until| now < until) {
            return Held::Still;
        }
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let held: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(HOLD)
            .arg(1)
            .arg(&self.key)
            .arg(&self.me)
            .arg(ttl_ms)
            .query_async(&mut self.conn)
            .await;
        let taken = match held {
            Ok(1) => catch_up,
            Ok(2) => true,
            Ok(_) => {
                self.held_until = None;
                return Held::No;
            }
            Err(e) => {
                if self.held_until.take().is_some() {
                    tracing::warn!(key = %self.key, "lost the lease: {e}");
                }
                return Held::No;
            }
        };
        if taken {
            // Go on from the stream's newest entry, not from a hub still behind it.
            if let Err(e) = self.log.catch_up(CATCH_UP).await {
                tracing::warn!(key = %self.key, "holding the lease, not producing yet: {e}");
                self.held_until = None;
                return Held::No;
            }
            if self.held_until.is_none() {
                tracing::info!(key = %self.key, "took the lease");
            }
        }
        self.held_until = Some(now + self.ttl / 3);
        if taken { Held::Taken } else { Held::Still }
    }

    /// Appends `events` only while the lease is this instance's (Redis checks it in
    /// the same step); when it is not, forgets that it held it.
    pub async fn append(&mut self, events: &[E]) -> Result<Vec<EventId>, RedisLogError> {
        let appended = self
            .log
            .publish_fenced(events, Some((&self.key, &self.me)))
            .await;
        if let Err(RedisLogError::NotHolder) = appended
            && self.held_until.take().is_some()
        {
            tracing::warn!(key = %self.key, "the lease was taken over; stepping back");
        }
        appended
    }

    /// Gives the lease up (on shutdown), so another instance takes over at once.
    pub async fn release(&mut self) {
        let released: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(&self.key)
            .arg(&self.me)
            .query_async(&mut self.conn)
            .await;
        if let Err(e) = released {
            tracing::warn!(key = %self.key, "could not release the lease: {e}");
        }
        self.held_until = None;
    }
}

impl<E> SharedLease<E> for RedisLease<E>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    fn holds(&mut self, catch_up: bool) -> BoxFuture<'_, Held> {
        Box::pin(RedisLease::holds(self, catch_up))
    }

    fn append(&mut self, events: Vec<E>) -> BoxFuture<'_, Result<Vec<EventId>, PublishError>> {
        Box::pin(async move { Ok(RedisLease::append(self, &events).await?) })
    }

    fn release(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(RedisLease::release(self))
    }
}
