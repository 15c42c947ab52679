//! One job, one instance: a lease in Redis that its holder keeps renewing.
//!
//! A job that must run once across instances (a market simulator, a ticker) asks
//! [`Lease::holds`] before each step. The holder's key expires `ttl` after its last
//! renewal, so when the holder dies another instance takes over within `ttl`. Renewal
//! happens every `ttl / 3`, and a holder that cannot reach Redis stops at once. A holder
//! that stalls longer than `ttl` may still believe it holds the lease, so producers
//! append through [`Lease::fence`]: Redis appends only while the lease is theirs.
//! Without Redis the lease is always held.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::secret::random_token;

/// Take the key if it is free, or extend it if it is already ours.
const HOLD: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
elseif redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0";

/// Give the key up, if it is ours.
const RELEASE: &str = r"
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0";

/// The right to run a job.
pub struct Lease {
    redis: Option<(ConnectionManager, String)>,
    me: String,
    ttl: Duration,
    held_until: Option<Instant>,
}

impl Lease {
    /// A lease that is always held (one process, no Redis).
    pub fn local() -> Self {
        Self {
            redis: None,
            me: String::new(),
            ttl: Duration::MAX,
            held_until: None,
        }
    }

    /// A lease on the Redis key `key`, expiring `ttl` after its holder's last renewal.
    pub async fn redis(
        url: &str,
        key: impl Into<String>,
        ttl: Duration,
    ) -> redis::RedisResult<Self> {
        let conn =
            crate::backend::redis_log::connect(&redis::Client::open(url)?, Duration::from_secs(1))
                .await?;
        Ok(Self {
            redis: Some((conn, key.into())),
            me: random_token(),
            ttl,
            held_until: None,
        })
    }

    /// A lease on `key` in Redis when there is a URL, else a local one.
    pub async fn open(
        redis_url: Option<&str>,
        key: &str,
        ttl: Duration,
    ) -> redis::RedisResult<Self> {
        match redis_url {
            Some(url) => Self::redis(url, key, ttl).await,
            None => Ok(Self::local()),
        }
    }

    /// Whether this instance holds the lease now, taking or renewing it as needed.
    pub async fn holds(&mut self) -> bool {
        let Some((conn, key)) = &mut self.redis else {
            return true;
        };
        let now = Instant::now();
        // Renewed recently enough: still ours, with two thirds of the ttl to spare.
        if self.held_until.is_some_and(|until| now < until) {
            return true;
        }
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let held: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(HOLD)
            .arg(1)
            .arg(&*key)
            .arg(&self.me)
            .arg(ttl_ms)
            .query_async(conn)
            .await;
        match held {
            Ok(1) => {
                if self.held_until.is_none() {
                    tracing::info!(key = %key, "took the lease");
                }
                self.held_until = Some(now + self.ttl / 3);
                true
            }
            Ok(_) => {
                self.held_until = None;
                false
            }
            Err(e) => {
                if self.held_until.is_some() {
                    tracing::warn!(key = %key, "lost the lease: {e}");
                }
                self.held_until = None;
                false
            }
        }
    }

    /// The lease's key and this holder's token, for an append that must happen only
    /// while the lease is ours ([`RedisLog::publish_fenced`](super::redis_log::RedisLog::publish_fenced));
    /// `None` without Redis.
    pub fn fence(&self) -> Option<(&str, &str)> {
        self.redis
            .as_ref()
            .map(|(_, key)| (key.as_str(), self.me.as_str()))
    }

    /// Forgets that the lease was held (a fenced append found it taken): the next
    /// [`Lease::holds`] asks Redis.
    pub fn lost(&mut self) {
        if self.held_until.take().is_some() {
            tracing::warn!("the producer lease was taken over; stepping back");
        }
    }

    /// Gives the lease up (on shutdown), so another instance takes over at once.
    pub async fn release(&mut self) {
        if let Some((conn, key)) = &mut self.redis {
            let released: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&*key)
                .arg(&self.me)
                .query_async(conn)
                .await;
            if let Err(e) = released {
                tracing::warn!(key = %key, "could not release the lease: {e}");
            }
        }
        self.held_until = None;
    }
}
