//! Who is online across instances, counted by open streams: sse-chat's `Presence` with
//! `--redis`.
//!
//! The counts live in Redis and each change runs as one Lua script that updates the
//! counts *and* appends the `joined` / `left` event to the room's stream, so joins and
//! leaves from different instances can never be reordered against the counts. Each
//! instance registers its open streams under its own key and sends a heartbeat; when
//! an instance dies, another one sweeps its streams within seconds and appends the
//! leaves it owed. An instance that finds it was swept (Redis was out of its reach for
//! longer than that) registers its open streams again, and a leave that fails is sent
//! again until Redis takes it. A leave that reaches Redis before its stream's enter
//! (the enter timed out, and went on its way) makes that enter count for nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sse_shared::hub::HubObserver;
use sse_shared::secret::random_token;
use tokio_util::sync::CancellationToken;

use crate::{Beating, DEAD_AFTER, RedisLogError, connect_url, heartbeat};

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

/// Presence in Redis, next to the event stream it appends joins and leaves to.
pub struct RedisPresence {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    stream: String,
    /// The event stream's length cap (the history's).
    cap: usize,
    /// Where failed calls are reported, with the event log's (`sse_backend_errors`).
    errors: Arc<dyn HubObserver>,
    /// This instance's open streams, as sent to Redis (the operation's arguments), to
    /// register them again after a sweep.
    open: Mutex<HashMap<String, [String; 5]>>,
    shutdown: CancellationToken,
}

impl RedisPresence {
    /// Presence at `url` under keys starting with `prefix`, appending to the stream
    /// `stream` capped at `cap` entries; its heartbeat, and the retries of failed
    /// leaves, run until `shutdown`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        (stream, cap): (&str, usize),
        errors: Arc<dyn HubObserver>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, RedisLogError> {
        let presence = Arc::new(Self {
            conn: connect_url(url).await?,
            prefix: prefix.to_owned(),
            instance: random_token(),
            stream: stream.to_owned(),
            cap,
            errors,
            open: Mutex::new(HashMap::new()),
            shutdown,
        });
        let beating = Arc::clone(&presence);
        let shutdown = presence.shutdown.clone();
        tokio::spawn(heartbeat("presence", beating, shutdown));
        Ok(presence)
    }

    /// The stream `stream` of `member` (shown as `profile`) is open; appends `joined`
    /// when it is their first anywhere. `left` is kept in case this instance dies. Call
    /// [`RedisPresence::leave`] for the stream however this ends, error included.
    pub async fn enter<P: Serialize, E: Serialize>(
        &self,
        stream: &str,
        member: &str,
        profile: &P,
        (joined, left): (&E, &E),
    ) -> Result<(), RedisLogError> {
        let (profile, joined, left) = (json(profile)?, json(joined)?, json(left)?);
        let args = [stream.into(), member.into(), profile, joined, left];
        self.open.lock().insert(stream.to_owned(), args.clone());
        self.script("enter", &args).await.map(|_| ())
    }

    /// The stream `stream` of `member` closed; appends their leave when it was their
    /// last anywhere, and then answers `true`. A leave Redis does not take is tried
    /// again (it counts once however often it arrives) until it does, or until the
    /// shutdown, after which the sweep of this instance takes care of it.
    pub async fn leave(&self, stream: &str, member: &str) -> Result<bool, RedisLogError> {
        // Gone from what a re-registration sends before the leave is sent.
        self.open.lock().remove(stream);
        let args = [stream.to_owned(), member.to_owned()];
        let mut wait = Duration::from_millis(100);
        loop {
            let failed = match self.script("leave", &args).await {
                Ok(left) => return Ok(left),
                Err(e) => e,
            };
            tracing::warn!("a leave failed, trying again in {wait:?}: {failed}");
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(failed),
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RETRY_AT_MOST);
        }
    }

    /// The profiles of the members online now.
    pub async fn online<P: DeserializeOwned>(&self) -> Result<Vec<P>, RedisLogError> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = redis::cmd("HKEYS")
            .arg(self.key("online"))
            .query_async(&mut conn)
            .await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let profiles: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.key("profiles"))
            .arg(&members)
            .query_async(&mut conn)
            .await?;
        let profiles = profiles.into_iter().flatten();
        Ok(profiles
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect())
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }

    /// [`SCRIPT`]'s `op` with `args`, for this instance.
    fn command(&self, op: &str, args: &[String]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT).arg(5);
        for key in ["online", "profiles", "leaves"] {
            cmd.arg(self.key(key));
        }
        cmd.arg(&self.stream).arg(self.key("instances"));
        let mine = self.key(&format!("instance:{}", self.instance));
        cmd.arg(op).arg(mine).arg(self.cap).arg(args);
        cmd
    }

    /// Runs `op` with `args`; answers whether it appended an event.
    async fn script(&self, op: &str, args: &[String]) -> Result<bool, RedisLogError> {
        let result: redis::RedisResult<redis::Value> = self
            .command(op, args)
            .query_async(&mut self.conn.clone())
            .await;
        // The script answers the appended event's id, or nil (false) when none was.
        let appended = result.inspect_err(|_| {
            self.errors.backend_error();
        })?;
        Ok(!matches!(appended, redis::Value::Nil))
    }

    /// This instance was swept (its members left): enter its open streams again. A
    /// stream that closes meanwhile may have its leave reach Redis before this enter,
    /// so each one gone by the end is left again (leaving twice counts once).
    async fn register_again(&self) {
        let open: Vec<[String; 5]> = self.open.lock().values().cloned().collect();
        tracing::warn!(
            "this instance was swept from presence; registering {} streams again",
            open.len()
        );
        for args in &open {
            if let Err(e) = self.script("enter", args).await {
                tracing::warn!("cannot register a stream again: {e}");
            }
        }
        for [stream, member, ..] in open {
            if !self.open.lock().contains_key(&stream)
                && let Err(e) = self.script("leave", &[stream, member]).await
            {
                tracing::warn!("cannot leave a stream that closed: {e}");
            }
        }
    }
}

impl Beating for RedisPresence {
    async fn beat(&self) -> redis::RedisResult<(i64, i64)> {
        let dead_after = DEAD_AFTER.as_millis().to_string();
        let args = [self.instance.clone(), dead_after, self.prefix.clone()];
        self.command("beat", &args)
            .query_async(&mut self.conn.clone())
            .await
    }

    async fn swept_self(&self) {
        self.register_again().await;
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(value)
}
