//! Who is subscribed, across instances: sse-topics' active subscriptions with `--redis`.
//!
//! Each subscriber is registered with its document (what the subscriptions API lists)
//! and the events that announce its start and its end. One Lua script registers it
//! *and* appends its start events to the updates' stream, and another forgets it and
//! appends its end events, so the list and the announcements never disagree. Each
//! instance keeps its subscribers under its own key and sends a heartbeat; when an
//! instance dies, another one sweeps its subscribers within seconds and appends the
//! end events they were registered with. An instance that finds it was swept (Redis was
//! out of its reach) registers its subscribers again; a leave that fails is tried again
//! at each heartbeat.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sse_shared::hub::HubObserver;
use sse_shared::secret::random_token;
use tokio_util::sync::CancellationToken;

use crate::{Beating, DEAD_AFTER, RedisLogError, connect_url, heartbeat};

/// KEYS: documents and end events (subscriber -> JSON), the updates' stream, the
/// instances (by last heartbeat). ARGV: the operation, this instance's key, the
/// stream's length cap, then the operation's arguments. An instance's key is the set
/// of its subscribers.
const SCRIPT: &str = r"
local docs, ends, stream, instances = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, mine, cap = ARGV[1], ARGV[2], ARGV[3]
local function append(events)
  for _, event in ipairs(cjson.decode(events)) do
    redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', 'e', event)
  end
end
-- A subscriber ends (once): forgotten, and its end events appended. One that ends
-- before it was registered (the enter failed, or is late) is marked gone for an hour,
-- so that its enter counts for nothing if it comes.
local function leave(key, id)
  if redis.call('SREM', key, id) == 0 then
    redis.call('SADD', key .. ':gone', id)
    redis.call('EXPIRE', key .. ':gone', 3600)
    return 0
  end
  local owed = redis.call('HGET', ends, id)
  redis.call('HDEL', docs, id)
  redis.call('HDEL', ends, id)
  if owed then append(owed) end
  return 1
end
if op == 'enter' then
  local id = ARGV[4]
  if redis.call('SISMEMBER', mine .. ':gone', id) == 1 then return 0 end
  if redis.call('SADD', mine, id) == 0 then return 0 end
  redis.call('HSET', docs, id, ARGV[5])
  redis.call('HSET', ends, id, ARGV[7])
  append(ARGV[6])
  return 1
end
if op == 'leave' then return leave(mine, ARGV[4]) end
-- 'beat': this instance is alive (by Redis's clock); instances silent for ARGV[5] ms
-- are dead, and their subscribers end. Answers whether this instance had been unknown
-- (its first beat, or it was swept), and how many instances were swept.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unknown = redis.call('ZADD', instances, now, ARGV[4])
local dead = redis.call('ZRANGEBYSCORE', instances, '-inf', now - tonumber(ARGV[5]))
for _, instance in ipairs(dead) do
  redis.call('ZREM', instances, instance)
  local key = ARGV[6] .. ':instance:' .. instance
  for _, id in ipairs(redis.call('SMEMBERS', key)) do leave(key, id) end
  redis.call('DEL', key, key .. ':gone')
end
return {unknown, #dead}";

/// Subscribers in Redis, next to the updates' stream their announcements go to.
pub struct RedisSubscriptions {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    stream: String,
    /// The stream's length cap (the history's).
    cap: usize,
    /// Where failed calls are reported, with the event log's (`sse_backend_errors`).
    errors: Arc<dyn HubObserver>,
    /// This instance's subscribers, as sent to Redis (the enter's arguments), to
    /// register them again after a sweep.
    open: Mutex<HashMap<String, [String; 4]>>,
    /// Subscribers whose leave Redis did not take yet.
    owed: Mutex<HashSet<String>>,
    shutdown: CancellationToken,
}

impl RedisSubscriptions {
    /// Subscribers at `url` under keys starting with `prefix`, announced on the stream
    /// `stream` capped at `cap` entries; the heartbeat runs until `shutdown`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        (stream, cap): (&str, usize),
        errors: Arc<dyn HubObserver>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, RedisLogError> {
        let subscriptions = Arc::new(Self {
            conn: connect_url(url).await?,
            prefix: prefix.to_owned(),
            instance: random_token(),
            stream: stream.to_owned(),
            cap,
            errors,
            open: Mutex::default(),
            owed: Mutex::default(),
            shutdown,
        });
        let beating = Arc::clone(&subscriptions);
        let shutdown = subscriptions.shutdown.clone();
        tokio::spawn(heartbeat("subscriptions", beating, shutdown));
        Ok(subscriptions)
    }

    /// Registers `subscriber` with `document` and appends `starts`; `ends` are appended
    /// when it leaves, or when this instance dies. Call [`RedisSubscriptions::leave`]
    /// however the subscription ends, error included.
    pub async fn enter<D: Serialize, E: Serialize>(
        &self,
        subscriber: &str,
        document: &D,
        (starts, ends): (&[E], &[E]),
    ) -> Result<(), RedisLogError> {
        let events = |events: &[E]| -> serde_json::Result<String> {
            let each: serde_json::Result<Vec<String>> =
                events.iter().map(serde_json::to_string).collect();
            serde_json::to_string(&each?)
        };
        let document = serde_json::to_string(document)?;
        let args = [subscriber.into(), document, events(starts)?, events(ends)?];
        self.open.lock().insert(subscriber.to_owned(), args.clone());
        self.script("enter", &args).await
    }

    /// `subscriber` is gone: forgets it and appends its end events. A leave Redis does
    /// not take is tried again at each heartbeat (it counts once however often it
    /// arrives).
    pub async fn leave(&self, subscriber: &str) -> Result<(), RedisLogError> {
        self.open.lock().remove(subscriber);
        let left = self.script("leave", &[subscriber.to_owned()]).await;
        if left.is_err() {
            self.owed.lock().insert(subscriber.to_owned());
        }
        left
    }

    /// The documents of every subscriber, on every instance.
    pub async fn documents(&self) -> Result<Vec<String>, RedisLogError> {
        let documents = redis::cmd("HVALS")
            .arg(self.key("docs"))
            .query_async(&mut self.conn.clone())
            .await;
        Ok(documents.inspect_err(|_| {
            self.errors.backend_error();
        })?)
    }

    fn key(&self, what: &str) -> String {
        format!("{}:{what}", self.prefix)
    }

    /// [`SCRIPT`]'s `op` with `args`, for this instance.
    fn command(&self, op: &str, args: &[String]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT).arg(4);
        cmd.arg(self.key("docs")).arg(self.key("ends"));
        cmd.arg(&self.stream).arg(self.key("instances"));
        let mine = self.key(&format!("instance:{}", self.instance));
        cmd.arg(op).arg(mine).arg(self.cap).arg(args);
        cmd
    }

    async fn script(&self, op: &str, args: &[String]) -> Result<(), RedisLogError> {
        let result: redis::RedisResult<redis::Value> = self
            .command(op, args)
            .query_async(&mut self.conn.clone())
            .await;
        result.inspect_err(|_| {
            self.errors.backend_error();
        })?;
        Ok(())
    }

    /// This instance was swept (its subscribers ended): registers those still open
    /// again, announcing their start again.
    async fn register_again(&self) {
        let open: Vec<[String; 4]> = self.open.lock().values().cloned().collect();
        tracing::warn!(
            "this instance was swept; registering {} subscribers again",
            open.len()
        );
        for args in open {
            if let Err(e) = self.script("enter", &args).await {
                tracing::warn!("cannot register a subscriber again: {e}");
            }
            if !self.open.lock().contains_key(&args[0]) {
                let _ = self.leave(&args[0]).await;
            }
        }
    }
}

impl Beating for RedisSubscriptions {
    /// Also sends the leaves still owed.
    async fn beat(&self) -> redis::RedisResult<(i64, i64)> {
        let dead_after = DEAD_AFTER.as_millis().to_string();
        let args = [self.instance.clone(), dead_after, self.prefix.clone()];
        let beaten = self
            .command("beat", &args)
            .query_async(&mut self.conn.clone())
            .await;
        let owed: Vec<String> = self.owed.lock().drain().collect();
        for subscriber in owed {
            if let Err(e) = self.leave(&subscriber).await {
                tracing::warn!("a leave failed again, tried at the next beat: {e}");
            }
        }
        beaten
    }

    async fn swept_self(&self) {
        self.register_again().await;
    }
}
