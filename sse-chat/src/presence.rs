//! Who is online, counted by open streams, in one process or across instances.
//!
//! A member is online while at least one of their streams is open anywhere: two tabs
//! are one member. [`Presence::enter`] publishes the `joined` event when a member's
//! first stream opens, [`Presence::leave`] the `left` event when the last one closes.
//! Each stream has its own id, so entering or leaving twice with one stream counts
//! once: a stream may leave whether or not its enter went through, and a leave or an
//! enter may be sent again.
//!
//! With Redis, the counts live in Redis and each change runs as one Lua script that
//! updates the counts *and* appends the event to the stream, so joins and leaves from
//! different instances can never be reordered against the counts. Each instance
//! registers its open streams under its own key and sends a heartbeat; when an instance
//! dies, another one sweeps its streams within seconds and publishes the leaves it
//! owed. An instance that finds it was swept (Redis was out of its reach for longer
//! than that) registers its open streams again, and a leave that fails is sent again
//! until Redis takes it. A leave that reaches Redis before its stream's enter (the
//! enter timed out, and went on its way) makes that enter count for nothing.

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
/// The longest wait between two tries of a leave Redis did not take.
const RETRY_AT_MOST: Duration = Duration::from_secs(5);

/// The presence script. KEYS: online (member -> open streams anywhere), profiles and
/// leaves (member -> JSON), the event stream, the instances (by last heartbeat).
/// ARGV: the operation, this instance's key, the stream's length cap, then the
/// operation's arguments. An instance's key maps each of its open streams to its member.
pub const SCRIPT: &str = r"
local online, profiles, leaves, stream, instances = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op, mine, cap = ARGV[1], ARGV[2], ARGV[3]
local function append(event)
  return redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', 'e', event)
end
-- A stream opens (once per stream id, and never after it left); the member's first
-- anywhere appends `joined`.
local function enter(key, id, member, profile, joined, left)
  if redis.call('SISMEMBER', key .. ':gone', id) == 1 then return false end
  if redis.call('HSETNX', key, id, member) == 0 then return false end
  redis.call('HSET', profiles, member, profile)
  redis.call('HSET', leaves, member, left)
  if redis.call('HINCRBY', online, member, 1) == 1 then return append(joined) end
  return false
end
-- A stream closes (once per stream id); the member's last anywhere appends their leave.
-- A leave that comes before its enter (which failed, or is late) marks the stream gone
-- for an hour, so that the enter counts for nothing if it comes.
local function leave(key, id, member)
  if redis.call('HDEL', key, id) == 0 then
    redis.call('SADD', key .. ':gone', id)
    redis.call('EXPIRE', key .. ':gone', 3600)
    return false
  end
  if redis.call('HINCRBY', online, member, -1) > 0 then return false end
  local left = redis.call('HGET', leaves, member)
  redis.call('HDEL', online, member)
  redis.call('HDEL', profiles, member)
  redis.call('HDEL', leaves, member)
  if left then return append(left) end
  return false
end
if op == 'enter' then return enter(mine, ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]) end
if op == 'leave' then return leave(mine, ARGV[4], ARGV[5]) end
-- 'beat': this instance is alive (by Redis's clock); instances silent for ARGV[5] ms
-- are dead, and their streams leave. Answers whether this instance had been unknown
-- (its first beat, or it was swept), and how many were swept.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unknown = redis.call('ZADD', instances, now, ARGV[4])
local dead = redis.call('ZRANGEBYSCORE', instances, '-inf', now - tonumber(ARGV[5]))
for _, instance in ipairs(dead) do
  redis.call('ZREM', instances, instance)
  local key = ARGV[6] .. ':instance:' .. instance
  local streams = redis.call('HGETALL', key)
  for i = 1, #streams, 2 do leave(key, streams[i], streams[i + 1]) end
  redis.call('DEL', key, key .. ':gone')
end
return {unknown, #dead}";

/// Presence in memory, or in Redis.
pub struct Presence<E, P> {
    log: EventLog<E>,
    place: Place<P>,
}

enum Place<P> {
    Memory(Mutex<Counts<P>>),
    Redis(RedisPresence),
}

/// In memory: which member each open stream is, and each member's open streams.
struct Counts<P> {
    streams: HashMap<String, String>,
    members: HashMap<String, (usize, P)>,
}

struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    stream: String,
    /// This instance's open streams, as sent to Redis (the operation's arguments), to
    /// register them again after a sweep.
    open: Mutex<HashMap<String, [String; 5]>>,
    shutdown: CancellationToken,
}

impl RedisPresence {
    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }

    /// [`SCRIPT`] with this instance's keys: `op` with `args`, appending to a stream
    /// capped at `cap` entries.
    fn command(&self, op: &str, cap: usize, args: &[String]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT).arg(5);
        for key in ["online", "profiles", "leaves"] {
            cmd.arg(self.key(key));
        }
        cmd.arg(&self.stream).arg(self.key("instances"));
        let mine = self.key(&format!("instance:{}", self.instance));
        cmd.arg(op).arg(mine).arg(cap).arg(args);
        cmd
    }
}

impl<E, P> Presence<E, P>
where
    E: HubEvent + Serialize + DeserializeOwned,
    P: Serialize + DeserializeOwned + Clone + Send + 'static,
{
    /// Presence kept next to `log`: in memory for a memory log; in Redis, under keys
    /// starting with `prefix`, for a Redis log on the stream `stream_key` (its
    /// heartbeat, and the retries of failed leaves, run until `shutdown`).
    pub fn open(
        log: EventLog<E>,
        redis: Option<ConnectionManager>,
        prefix: &str,
        stream_key: &str,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let place = match redis {
            None => Place::Memory(Mutex::new(Counts {
                streams: HashMap::new(),
                members: HashMap::new(),
            })),
            Some(conn) => Place::Redis(RedisPresence {
                conn,
                prefix: prefix.to_owned(),
                instance: random_token(),
                stream: stream_key.to_owned(),
                open: Mutex::new(HashMap::new()),
                shutdown,
            }),
        };
        let presence = Arc::new(Self { log, place });
        if let Place::Redis(_) = presence.place {
            let beating = Arc::clone(&presence);
            tokio::spawn(async move { beating.heartbeat().await });
        }
        presence
    }

    /// The stream `stream` of `member` (shown as `profile`) is open; publishes
    /// `joined` when it is their first anywhere. `left` is kept in case this instance
    /// dies. Call [`Presence::leave`] for the stream however this ends, error included.
    pub async fn enter(
        &self,
        stream: &str,
        member: &str,
        profile: &P,
        joined: E,
        left: E,
    ) -> Result<(), PublishFailed> {
        match &self.place {
            Place::Memory(counts) => {
                let mut counts = counts.lock();
                if counts.streams.contains_key(stream) {
                    return Ok(());
                }
                if !counts.members.contains_key(member) {
                    // Published under the lock, so joins and leaves keep their order.
                    self.publish_now(joined)?;
                }
                counts.streams.insert(stream.to_owned(), member.to_owned());
                let entry = counts.members.entry(member.to_owned());
                entry.or_insert((0, profile.clone())).0 += 1;
                Ok(())
            }
            Place::Redis(redis) => {
                let (profile, joined, left) = (json(profile)?, json(&joined)?, json(&left)?);
                let args = [stream.into(), member.into(), profile, joined, left];
                redis.open.lock().insert(stream.to_owned(), args.clone());
                self.script(redis, "enter", &args).await.map(|_| ())
            }
        }
    }

    /// The stream `stream` of `member` closed; publishes `left` when it was their last
    /// anywhere, and then answers `true`. With Redis, a leave Redis does not take is
    /// tried again (it counts once however often it arrives) until it does, or until
    /// the shutdown, after which the sweep of this instance takes care of it.
    pub async fn leave(&self, stream: &str, member: &str, left: E) -> Result<bool, PublishFailed> {
        match &self.place {
            Place::Memory(counts) => {
                let mut counts = counts.lock();
                if counts.streams.remove(stream).is_none() {
                    return Ok(false);
                }
                let Some(entry) = counts.members.get_mut(member) else {
                    return Ok(false);
                };
                entry.0 -= 1;
                if entry.0 > 0 {
                    return Ok(false);
                }
                counts.members.remove(member);
                self.publish_now(left)?;
                Ok(true)
            }
            Place::Redis(redis) => {
                // Gone from what a re-registration sends before the leave is sent.
                redis.open.lock().remove(stream);
                let args = [stream.to_owned(), member.to_owned()];
                let mut wait = Duration::from_millis(100);
                loop {
                    let failed = match self.script(redis, "leave", &args).await {
                        Ok(left) => return Ok(left),
                        Err(e) => e,
                    };
                    tracing::warn!("a leave failed, trying again in {wait:?}: {failed}");
                    tokio::select! {
                        () = redis.shutdown.cancelled() => return Err(failed),
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(RETRY_AT_MOST);
                }
            }
        }
    }

    /// The profiles of the members online now.
    pub async fn online(&self) -> Result<Vec<P>, SharedLogError> {
        match &self.place {
            Place::Memory(counts) => {
                let counts = counts.lock();
                Ok(counts.members.values().map(|(_, p)| p.clone()).collect())
            }
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
        // A Redis log always comes with Redis presence, whose script appends the event.
        if self.log.is_shared() {
            return Ok(());
        }
        self.log
            .hub()
            .publish(event)
            .map(|_| ())
            .map_err(PublishFailed::from)
    }

    /// Runs [`SCRIPT`]'s `op` for this instance; answers whether it appended an event.
    async fn script(
        &self,
        redis: &RedisPresence,
        op: &str,
        args: &[String],
    ) -> Result<bool, PublishFailed> {
        let cap = self.log.hub().limits().max_events;
        let result: redis::RedisResult<redis::Value> = redis
            .command(op, cap, args)
            .query_async(&mut redis.conn.clone())
            .await;
        // The script answers the appended event's id, or nil (false) when none was.
        result
            .map(|v| !matches!(v, redis::Value::Nil))
            .map_err(|e| {
                self.log.hub().metrics().backend_errors.inc();
                PublishFailed::from(SharedLogError(e.into()))
            })
    }

    /// Every [`HEARTBEAT`] until the shutdown: says this instance is alive, sweeps the
    /// dead ones, and registers this instance's open streams again when it finds it
    /// was swept itself.
    async fn heartbeat(&self) {
        let Place::Redis(redis) = &self.place else {
            return;
        };
        let mut beat = tokio::time::interval(HEARTBEAT);
        let mut first = true;
        loop {
            tokio::select! {
                () = redis.shutdown.cancelled() => return,
                _ = beat.tick() => {}
            }
            let args = [
                redis.instance.clone(),
                DEAD_AFTER.as_millis().to_string(),
                redis.prefix.clone(),
            ];
            let cap = self.log.hub().limits().max_events;
            let beaten: redis::RedisResult<(i64, i64)> = redis
                .command("beat", cap, &args)
                .query_async(&mut redis.conn.clone())
                .await;
            match beaten {
                Ok((unknown, swept)) => {
                    if swept > 0 {
                        tracing::info!("swept {swept} dead instance(s) from presence");
                    }
                    if unknown == 1 && !first {
                        self.register_again(redis).await;
                    }
                    first = false;
                }
                Err(e) => tracing::warn!("presence heartbeat failed: {e}"),
            }
        }
    }

    /// This instance was swept (its members left): enter its open streams again. A
    /// stream that closes meanwhile may have its leave reach Redis before this enter,
    /// so each one gone by the end is left again (leaving twice counts once).
    async fn register_again(&self, redis: &RedisPresence) {
        let open: Vec<[String; 5]> = redis.open.lock().values().cloned().collect();
        tracing::warn!(
            "this instance was swept from presence; registering {} streams again",
            open.len()
        );
        for args in &open {
            if let Err(e) = self.script(redis, "enter", args).await {
                tracing::warn!("cannot register a stream again: {e}");
            }
        }
        for [stream, member, ..] in open {
            if !redis.open.lock().contains_key(&stream)
                && let Err(e) = self.script(redis, "leave", &[stream, member]).await
            {
                tracing::warn!("cannot leave a stream that closed: {e}");
            }
        }
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, SharedLogError> {
    serde_json::to_string(value).map_err(|e| SharedLogError(e.into()))
}
