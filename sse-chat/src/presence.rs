//! Who is online, counted by open streams, in one process or across instances.
//!
//! A member is online while at least one of their streams is open anywhere: two tabs
//! are one member. [`Presence::enter`] publishes the `joined` event when a member's
//! first stream opens, [`Presence::leave`] the `left` event when the last one closes.
//!
//! With Redis, the counts live in Redis and each change runs as one Lua script that
//! updates the counts *and* appends the event to the stream, so joins and leaves from
//! different instances can never be reordered against the counts. Each instance also
//! keeps its own counts and a heartbeat; when an instance dies, another one sweeps its
//! counts within seconds and publishes the leaves it owed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use sse_shared::event_log::{EventLog, PublishFailed, SharedLogError};
use sse_shared::hub::HubEvent;
use sse_shared::secret::random_token;

/// How often an instance says it is alive, and how long until it counts as dead.
const HEARTBEAT: Duration = Duration::from_secs(1);
const DEAD_AFTER: Duration = Duration::from_secs(5);

const ENTER: &str = r"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
if redis.call('HINCRBY', KEYS[2], ARGV[1], 1) == 1 then
  return redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'e', ARGV[3])
end
return false";

const LEAVE: &str = r"
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
  return redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
end
return false";

/// Records this instance's heartbeat (by Redis's clock), then sweeps dead instances:
/// their counts come off the totals, and a member who is then online nowhere leaves.
const HEARTBEAT_AND_SWEEP: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, instance in ipairs(dead) do
  redis.call('ZREM', KEYS[1], instance)
  local key = ARGV[3] .. ':instance:' .. instance
  local counts = redis.call('HGETALL', key)
  for i = 1, #counts, 2 do
    local member = counts[i]
    if redis.call('HINCRBY', KEYS[2], member, -tonumber(counts[i + 1])) <= 0 then
      redis.call('HDEL', KEYS[2], member)
      redis.call('HDEL', KEYS[3], member)
      local leave = redis.call('HGET', KEYS[4], member)
      redis.call('HDEL', KEYS[4], member)
      if leave then redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'e', leave) end
    end
  end
  redis.call('DEL', key)
end
return #dead";

/// Presence in memory, or in Redis.
pub struct Presence<E, P> {
    log: EventLog<E>,
    place: Place<P>,
}

enum Place<P> {
    Memory(Mutex<HashMap<String, (usize, P)>>),
    Redis(RedisPresence),
}

struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    stream: String,
}

impl RedisPresence {
    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }
}

impl<E, P> Presence<E, P>
where
    E: HubEvent + Serialize + DeserializeOwned,
    P: Serialize + DeserializeOwned + Clone + Send + 'static,
{
    /// Presence kept next to `log`: in memory for a memory log; in Redis, under keys
    /// starting with `prefix`, for a Redis log on the stream `stream_key` (its
    /// heartbeat runs until `shutdown`).
    pub fn open(
        log: EventLog<E>,
        redis: Option<ConnectionManager>,
        prefix: &str,
        stream_key: &str,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let place = match redis {
            None => Place::Memory(Mutex::new(HashMap::new())),
            Some(conn) => Place::Redis(RedisPresence {
                conn,
                prefix: prefix.to_owned(),
                instance: random_token(),
                stream: stream_key.to_owned(),
            }),
        };
        let presence = Arc::new(Self { log, place });
        if let Place::Redis(_) = presence.place {
            let beating = Arc::clone(&presence);
            tokio::spawn(async move { beating.heartbeat(shutdown).await });
        }
        presence
    }

    /// One more open stream for `member` (shown as `profile`); publishes `joined` when
    /// it is their first anywhere. `left` is kept in case this instance dies.
    pub async fn enter(
        &self,
        member: &str,
        profile: &P,
        joined: E,
        left: E,
    ) -> Result<(), PublishFailed> {
        match &self.place {
            Place::Memory(counts) => {
                let mut counts = counts.lock();
                let entry = counts
                    .entry(member.to_owned())
                    .or_insert((0, profile.clone()));
                entry.0 += 1;
                if entry.0 == 1 {
                    // Published under the lock, so joins and leaves keep their order.
                    self.publish_now(joined)?;
                }
                Ok(())
            }
            Place::Redis(redis) => {
                let (profile, joined, left) = (json(profile)?, json(&joined)?, json(&left)?);
                self.script(redis, ENTER, member, &[&profile, &joined, &left])
                    .await
                    .map(|_| ())
            }
        }
    }

    /// One stream fewer for `member`; publishes `left` when it was their last anywhere,
    /// and then answers `true`.
    pub async fn leave(&self, member: &str, left: E) -> Result<bool, PublishFailed> {
        match &self.place {
            Place::Memory(counts) => {
                let mut counts = counts.lock();
                let Some(entry) = counts.get_mut(member) else {
                    return Ok(false);
                };
                entry.0 -= 1;
                if entry.0 == 0 {
                    counts.remove(member);
                    self.publish_now(left)?;
                    return Ok(true);
                }
                Ok(false)
            }
            Place::Redis(redis) => {
                let left = json(&left)?;
                let appended = self.script(redis, LEAVE, member, &[&left]).await?;
                Ok(appended)
            }
        }
    }

    /// The profiles of the members online now.
    pub async fn online(&self) -> Result<Vec<P>, SharedLogError> {
        match &self.place {
            Place::Memory(counts) => Ok(counts.lock().values().map(|(_, p)| p.clone()).collect()),
            Place::Redis(redis) => {
                let mut conn = redis.conn.clone();
                let members: Vec<String> = redis::cmd("HKEYS")
                    .arg(redis.key("online"))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| SharedLogError(e.into()))?;
                if members.is_empty() {
                    return Ok(Vec::new());
                }
                let profiles: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(redis.key("profiles"))
                    .arg(&members)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| SharedLogError(e.into()))?;
                Ok(profiles
                    .into_iter()
                    .flatten()
                    .filter_map(|json| serde_json::from_str(&json).ok())
                    .collect())
            }
        }
    }

    fn publish_now(&self, event: E) -> Result<(), PublishFailed> {
        // A Redis log always comes with Redis presence, whose scripts append the event.
        if self.log.is_shared() {
            return Ok(());
        }
        self.log
            .hub()
            .publish(event)
            .map(|_| ())
            .map_err(PublishFailed::from)
    }

    async fn script(
        &self,
        redis: &RedisPresence,
        script: &str,
        member: &str,
        args: &[&str],
    ) -> Result<bool, PublishFailed> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(5)
            .arg(redis.key(&format!("instance:{}", redis.instance)))
            .arg(redis.key("online"))
            .arg(redis.key("profiles"))
            .arg(redis.key("leaves"))
            .arg(&redis.stream)
            .arg(member);
        for arg in args {
            cmd.arg(*arg);
        }
        cmd.arg(self.log.hub().limits().max_events);
        let result: redis::RedisResult<redis::Value> =
            cmd.query_async(&mut redis.conn.clone()).await;
        // The scripts answer the appended event's id, or nil (false) when none was.
        result
            .map(|v| !matches!(v, redis::Value::Nil))
            .map_err(|e| {
                self.log.hub().metrics().backend_errors.inc();
                PublishFailed::from(SharedLogError(e.into()))
            })
    }

    async fn heartbeat(&self, shutdown: CancellationToken) {
        let Place::Redis(redis) = &self.place else {
            return;
        };
        let mut beat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = beat.tick() => {}
            }
            let swept: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg(HEARTBEAT_AND_SWEEP)
                .arg(5)
                .arg(redis.key("instances"))
                .arg(redis.key("online"))
                .arg(redis.key("profiles"))
                .arg(redis.key("leaves"))
                .arg(&redis.stream)
                .arg(&redis.instance)
                .arg(DEAD_AFTER.as_millis() as u64)
                .arg(&redis.prefix)
                .arg(self.log.hub().limits().max_events)
                .query_async(&mut redis.conn.clone())
                .await;
            match swept {
                Ok(0) => {}
                Ok(n) => tracing::info!("swept {n} dead instance(s) from presence"),
                Err(e) => tracing::warn!("presence heartbeat failed: {e}"),
            }
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, SharedLogError> {
    serde_json::to_string(value).map_err(|e| SharedLogError(e.into()))
}
