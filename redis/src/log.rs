//! A Redis stream as the shared log behind a [`Hub`], so several instances serve one
//! audience.
//!
//! ```text
//! publish(event) -> XADD key MAXLEN ~ history * e <json>   (Redis assigns the id)
//! reader task    -> XREAD BLOCK .. STREAMS key <last id>   (one per process)
//!                -> hub.append_with_id(id, event)           (the frame is built here,
//!                                                            once per process)
//! ```
//!
//! Event ids are the stream's ids (`1700000000000-0`), so a client can resume on any
//! instance. At start the last `history` entries are loaded into the local hub, so an
//! instance can replay from the moment it starts. When Redis goes away, publishes fail
//! (the caller answers 503), the reader retries with backoff and, once back, resumes
//! from the last id it had, so nothing published meanwhile is lost.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sse_shared::hub::{EventId, Hub, HubEvent, PublishError, Start};
use sse_shared::publish::SharedLog;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{RedisLogError, connect, redact};

/// How long one `XREAD` waits for new entries before asking again.
const BLOCK: Duration = Duration::from_secs(2);
/// The reader's backoff between reconnects: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));
/// The field each entry keeps its event in, as JSON.
const FIELD: &str = "e";

/// Appends the entries in ARGV[3..] only while the lease KEYS[2] holds ARGV[1], in one
/// step: a producer that stalled past its lease can never append beside the new holder.
const FENCED_XADD: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return false end
local ids = {}
for i = 3, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i])
end
return ids";

/// The shared log: publishes go to Redis, and a reader feeds the local hub.
pub struct RedisLog<E> {
    key: String,
    max_len: usize,
    pub(crate) client: Client,
    publisher: ConnectionManager,
    hub: Hub<E>,
    /// The last entry the reader has dealt with, delivered or skipped. Its own, not the
    /// hub's newest id: an entry it skips moves it too, so the next `XREAD` never
    /// returns that entry again.
    cursor: parking_lot::Mutex<Option<EventId>>,
}

impl<E> RedisLog<E>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    /// Connects to `url`, loads the stream `key`'s recent entries into `hub`, and
    /// fails if Redis cannot be reached.
    pub async fn connect(
        url: &str,
        key: impl Into<String>,
        hub: Hub<E>,
    ) -> Result<Arc<Self>, RedisLogError> {
        let shown = redact(url);
        let connect_error = |source| RedisLogError::Connect {
            url: shown.clone(),
            source,
        };
        let client = Client::open(url).map_err(connect_error)?;
        let publisher = connect(&client, Duration::from_secs(2))
            .await
            .map_err(connect_error)?;
        hub.take_ids_from_shared_log();
        let log = Self {
            key: key.into(),
            max_len: hub.limits().max_events,
            client,
            publisher,
            hub,
            cursor: parking_lot::Mutex::new(None),
        };
        log.load_recent().await.map_err(|e| match e {
            RedisLogError::Unavailable(source) => connect_error(source),
            other => other,
        })?;
        Ok(Arc::new(log))
    }

    /// The local hub that subscribers read.
    pub fn hub(&self) -> &Hub<E> {
        &self.hub
    }

    /// Appends `events` in one step, all or none, in order, and only while the lease
    /// `fence` names (`(key, holder)`, see [`crate::lease::RedisLease`])
    /// is held by that holder; `None` appends unconditionally.
    pub async fn publish_fenced(
        &self,
        events: &[E],
        fence: Option<(&str, &str)>,
    ) -> Result<Vec<EventId>, RedisLogError> {
        let Some((lease_key, holder)) = fence else {
            return self.publish_batch(events).await;
        };
        let mut script = redis::cmd("EVAL");
        script.arg(FENCED_XADD).arg(2).arg(&self.key).arg(lease_key);
        script.arg(holder).arg(self.max_len);
        for event in events {
            script.arg(serde_json::to_string(event)?);
        }
        let result: Result<Option<Vec<String>>, _> =
            script.query_async(&mut self.publisher.clone()).await;
        let ids = result.inspect_err(|_| {
            self.hub.observer().backend_error();
        })?;
        parse_ids(ids.ok_or(RedisLogError::NotHolder)?)
    }

    /// Waits (at most `within`) until the local hub holds every entry the stream holds
    /// now, so a new producer goes on from the last entry in Redis, not from a hub
    /// whose reader is still behind.
    pub async fn catch_up(&self, within: Duration) -> Result<(), RedisLogError> {
        // Subscribed first: whatever the reader delivers after the check wakes us.
        let mut delivered = self.hub.subscribe(Start::Live);
        let newest: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.publisher.clone())
            .await?;
        let Some(newest) = newest
            .ids
            .first()
            .and_then(|e| e.id.parse::<EventId>().ok())
        else {
            return Ok(());
        };
        let caught_up = async {
            while self.cursor.lock().is_none_or(|cursor| cursor < newest) {
                if delivered.next_batch().await.is_none() {
                    break;
                }
            }
        };
        tokio::time::timeout(within, caught_up)
            .await
            .map_err(|_| RedisLogError::Behind(within))
    }

    /// Appends `events` in one transaction (`MULTI`/`EXEC`): all or none, in order;
    /// every instance's reader (this one's too) then hands them to its subscribers.
    pub async fn publish_batch(&self, events: &[E]) -> Result<Vec<EventId>, RedisLogError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for event in events {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg(FIELD)
                .arg(serde_json::to_string(event)?);
        }
        let result: Result<Vec<String>, _> = pipe.query_async(&mut self.publisher.clone()).await;
        let ids = result.inspect_err(|_| {
            self.hub.observer().backend_error();
        })?;
        parse_ids(ids)
    }

    /// Starts the reader: it feeds the hub until `shutdown`, reconnecting with backoff
    /// whenever Redis goes away, and resuming after the last id it delivered.
    pub fn spawn_reader(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        let log = Arc::clone(self);
        tokio::spawn(async move { log.read(shutdown).await })
    }

    async fn read(&self, shutdown: CancellationToken) {
        let observer = self.hub.observer();
        let mut wait = BACKOFF.0;
        loop {
            let e: RedisLogError = tokio::select! {
                () = shutdown.cancelled() => return,
                error = self.session(&mut wait) => error,
            };
            observer.backend_up(false);
            observer.backend_error();
            tracing::warn!("Redis reader: {e}; retrying in {wait:?}");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(BACKOFF.1);
        }
    }

    /// Reads on one connection until something fails, and returns what did.
    async fn session(&self, wait: &mut Duration) -> RedisLogError {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(BLOCK + Duration::from_secs(2)));
        let mut conn = match self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(e) => return e.into(),
        };
        // Entries Redis trimmed while this reader was away are lost to our subscribers:
        // say so (they get `reset`) rather than go on as if nothing had been missed.
        match stream_info(&mut conn, &self.key).await {
            Ok((_, Some(trimmed))) => {
                let mut cursor = self.cursor.lock();
                if cursor.is_some_and(|c| c < trimmed) {
                    tracing::warn!(%trimmed, "Redis trimmed entries this reader had not read");
                    *cursor = Some(trimmed);
                    self.hub.raise_floor(trimmed);
                }
            }
            Ok((_, None)) => {}
            Err(e) => return e,
        }
        loop {
            if let Err(e) = self.read_once(&mut conn).await {
                return e;
            }
            // A successful read: Redis is there.
            self.hub.observer().backend_up(true);
            *wait = BACKOFF.0;
        }
    }

    /// One `XREAD`: waits up to [`BLOCK`] for entries after the reader's cursor.
    async fn read_once(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisLogError> {
        let after = self
            .cursor
            .lock()
            .map_or_else(|| "0-0".to_owned(), stream_id);
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(1000)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(after)
            .query_async(conn)
            .await?;
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                self.deliver(&entry);
            }
        }
        Ok(())
    }

    /// Loads the last `history` entries, oldest first.
    async fn load_recent(&self) -> Result<(), RedisLogError> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(self.max_len)
            .query_async(&mut self.publisher.clone())
            .await?;
        for entry in reply.ids.iter().rev() {
            self.deliver(entry);
        }
        // What came before the oldest entry loaded is gone for this instance: trimmed
        // from Redis, or older than the history it keeps.
        let mut conn = self.publisher.clone();
        let (length, trimmed) = stream_info(&mut conn, &self.key).await?;
        let mut floor = trimmed;
        if let Some(oldest) = reply.ids.last().and_then(|e| e.id.parse::<EventId>().ok())
            && length > reply.ids.len()
        {
            floor = floor.max(Some(just_before(oldest)));
        }
        if let Some(floor) = floor {
            self.hub.raise_floor(floor);
        }
        Ok(())
    }

    /// Hands one entry to the hub and moves the cursor past it; an entry this code
    /// cannot read (another version wrote it, or someone by hand) is counted, logged
    /// once and skipped rather than stopping the stream for everyone.
    fn deliver(&self, entry: &StreamId) {
        let Ok(id) = entry.id.parse::<EventId>() else {
            // Redis never gives such an id; without one there is no cursor to move.
            tracing::error!(id = entry.id, "an entry whose id is not a stream id");
            return;
        };
        {
            let mut cursor = self.cursor.lock();
            if cursor.is_some_and(|c| id <= c) {
                return; // seen before (a reconnect read it again)
            }
            *cursor = Some(id);
        }
        let event = entry
            .get::<String>(FIELD)
            .ok_or_else(|| "no event field".to_owned())
            .and_then(|json| serde_json::from_str::<E>(&json).map_err(|e| e.to_string()));
        let skipped = match event {
            Ok(event) => self
                .hub
                .append_with_id(id, event)
                .err()
                .map(|e| e.to_string()),
            Err(e) => Some(e),
        };
        if let Some(why) = skipped {
            self.hub.observer().backend_skipped();
            tracing::error!(%id, "skipping an entry this version cannot carry: {why}");
        }
    }
}

/// The stream's length, and the newest id that is no longer in it (trimmed or
/// deleted), if any: from `XINFO STREAM`'s `entries-added` (Redis 7) against its length
/// and first entry. A stream that does not exist yet is empty and has lost nothing.
async fn stream_info<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    key: &str,
) -> Result<(usize, Option<EventId>), RedisLogError> {
    let reply: redis::RedisResult<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await;
    let fields = match reply {
        Ok(redis::Value::Array(items)) => items,
        Ok(redis::Value::Map(pairs)) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Ok(_) => return Ok((0, None)),
        Err(e) if e.to_string().contains("no such key") => return Ok((0, None)),
        Err(e) => return Err(e.into()),
    };
    let text = |value: &redis::Value| match value {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        redis::Value::SimpleString(text) => Some(text.clone()),
        redis::Value::Int(n) => Some(n.to_string()),
        _ => None,
    };
    let (mut length, mut added) = (0u64, 0u64);
    let (mut first, mut last) = (None, None);
    for pair in fields.chunks(2) {
        let [key, value] = pair else { break };
        let number = || text(value).and_then(|n| n.parse().ok()).unwrap_or(0);
        let id = || text(value).and_then(|id| id.parse::<EventId>().ok());
        match text(key).as_deref() {
            Some("length") => length = number(),
            Some("entries-added") => added = number(),
            Some("recorded-first-entry-id") => first = id(),
            Some("last-generated-id") => last = id(),
            _ => {}
        }
    }
    let lost = match (added > length, length, first) {
        (false, _, _) => None,
        (true, 0, _) => last,
        (true, _, first) => first.map(just_before),
    };
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    Ok((length, lost.filter(|id| *id != EventId::ZERO)))
}

/// The largest id below `id` (a cursor there has seen everything before `id`).
fn just_before(id: EventId) -> EventId {
    match id.seq.checked_sub(1) {
        Some(seq) => EventId { ms: id.ms, seq },
        None => EventId {
            ms: id.ms.saturating_sub(1),
            seq: u64::MAX,
        },
    }
}

/// The ids `XADD` answered.
fn parse_ids(ids: Vec<String>) -> Result<Vec<EventId>, RedisLogError> {
    ids.into_iter()
        .map(|id| id.parse().map_err(|_| RedisLogError::BadId(id)))
        .collect()
}

/// A stream id as Redis writes it (always `MS-SEQ`).
fn stream_id(id: EventId) -> String {
    format!("{}-{}", id.ms, id.seq)
}

impl<E> SharedLog<E> for RedisLog<E>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    fn append(&self, events: Vec<E>) -> BoxFuture<'_, Result<Vec<EventId>, PublishError>> {
        Box::pin(async move { Ok(self.publish_batch(&events).await?) })
    }
}
