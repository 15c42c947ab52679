//! The Redis Streams backend of the examples, so several instances serve one audience.
//! Everything Redis is in this crate: an example that runs in memory never needs it.
//!
//! - [`log`]: [`RedisLog`], a Redis stream behind an instance's [`Hub`]: publishes
//!   are `XADD`s, and one reader per process feeds the local hub; event ids are the
//!   stream's ids, so a client resumes on any instance.
//! - [`lease`]: one producer across instances, its appends fenced in Redis.
//! - [`members`] and [`presence`]: sse-chat's members and who is online, shared by
//!   every instance.
//! - [`subscriptions`]: sse-topics' active subscriptions, shared by every instance.
//!
//! An example's `main.rs` calls [`publisher`] with the `--redis` option: with a URL the
//! hub is fed by Redis, without one it stays in memory.

pub mod lease;
pub mod log;
pub mod members;
pub mod presence;
pub mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sse_shared::{Hub, HubEvent, Producer, PublishError, Publisher};
use tokio_util::sync::CancellationToken;

pub use lease::RedisLease;
pub use log::RedisLog;
pub use members::RedisMembers;
pub use presence::RedisPresence;
pub use subscriptions::RedisSubscriptions;

/// The option that switches an example to the Redis backend.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (e.g. redis://127.0.0.1:6379): publish through a Redis stream so
    /// several instances serve one audience. In memory when unset.
    #[arg(long = "redis", env = "REDIS_URL", value_parser = redis_url)]
    pub url: Option<String>,
}

/// `text`, if the Redis client reads it as a URL: a mistake in it is an option error at
/// start (naming `--redis`), apart from a Redis that cannot be reached.
fn redis_url(text: &str) -> Result<String, String> {
    match redis::IntoConnectionInfo::into_connection_info(text) {
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(format!(
            "not a Redis URL ({e}); expected redis://[:PASSWORD@]HOST[:PORT][/DB]"
        )),
    }
}

/// In memory without `redis_url`; otherwise fed by the Redis stream `key`, whose
/// reader runs until `shutdown`. Fails when Redis cannot be reached.
pub async fn publisher<E>(
    redis_url: Option<&str>,
    key: &str,
    hub: Hub<E>,
    shutdown: CancellationToken,
) -> Result<Publisher<E>, RedisLogError>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    let Some(url) = redis_url else {
        return Ok(Publisher::in_memory(hub));
    };
    let log = RedisLog::connect(url, key, hub.clone()).await?;
    log.spawn_reader(shutdown);
    Ok(Publisher::shared(hub, log))
}

/// [`publisher`], with the [`Producer`] of `job`, a job that runs on one instance at a
/// time: in memory the only one; with Redis the holder of the lease `job`, lost `ttl`
/// after its holder's last renewal.
pub async fn publisher_and_producer<E>(
    redis_url: Option<&str>,
    key: &str,
    hub: Hub<E>,
    shutdown: CancellationToken,
    job: &str,
    ttl: Duration,
) -> Result<(Publisher<E>, Producer<E>), RedisLogError>
where
    E: HubEvent + Serialize + DeserializeOwned,
{
    let Some(url) = redis_url else {
        return Ok((Publisher::in_memory(hub.clone()), Producer::in_memory(hub)));
    };
    let log = RedisLog::connect(url, key, hub.clone()).await?;
    log.spawn_reader(shutdown);
    let lease = RedisLease::open(Arc::clone(&log), job.to_owned(), ttl).await?;
    let producer = Producer::leased(hub.clone(), Box::new(lease));
    Ok((Publisher::shared(hub, log), producer))
}

/// How often an instance of a registry in Redis (presence, subscriptions) says it is
/// alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long after its last heartbeat an instance counts as dead, and what it held (its
/// streams, its subscribers) as gone.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// What a registry in Redis (presence, subscriptions) does on its heartbeat.
trait Beating: Send + Sync + 'static {
    /// Runs the script's `beat`: this instance is alive, the dead ones are swept. Answers
    /// whether this instance was unknown, and how many instances were swept.
    fn beat(&self) -> impl Future<Output = redis::RedisResult<(i64, i64)>> + Send;
    /// This instance was swept itself: register what it holds again.
    fn swept_self(&self) -> impl Future<Output = ()> + Send;
}

/// `registry`'s heartbeat, every [`HEARTBEAT`] until `shutdown` (`what` names it in
/// the logs).
async fn heartbeat<R: Beating>(what: &'static str, registry: Arc<R>, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    let mut first = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match registry.beat().await {
            Ok((unknown, swept)) => {
                if swept > 0 {
                    tracing::info!("{what}: swept {swept} dead instance(s)");
                }
                // Unknown at its first beat is every instance's start, not a sweep.
                if unknown == 1 && !first {
                    registry.swept_self().await;
                }
                first = false;
            }
            Err(e) => tracing::warn!("{what} heartbeat failed: {e}"),
        }
    }
}

/// A connection to Redis for commands, reconnecting by itself when Redis comes back;
/// each command fails within `timeout` while Redis is away (the caller answers 503).
pub async fn connect(client: &Client, timeout: Duration) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client.get_connection_manager_with_config(config).await
}

/// A connection to Redis at `url` for commands, as [`connect`] makes it (2 s timeout);
/// fails if Redis cannot be reached.
pub async fn connect_url(url: &str) -> Result<ConnectionManager, RedisLogError> {
    let connect_error = |source| RedisLogError::Connect {
        url: redact(url),
        source,
    };
    let client = Client::open(url).map_err(connect_error)?;
    let timeout = Duration::from_secs(2);
    connect(&client, timeout).await.map_err(connect_error)
}

/// What went wrong with Redis.
#[derive(Debug, thiserror::Error)]
pub enum RedisLogError {
    /// Redis could not be reached at start.
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The URL, without any password.
        url: String,
        /// What the client said.
        source: redis::RedisError,
    },
    /// A command failed (Redis is down, or answered with an error).
    #[error("Redis is unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
    /// The event could not be encoded.
    #[error("cannot encode the event: {0}")]
    Encode(#[from] serde_json::Error),
    /// Redis answered with an id that is not a stream id.
    #[error("Redis returned {0:?}, which is not a stream id")]
    BadId(String),
    /// A fenced append found the producer lease held by someone else: nothing appended.
    #[error("the producer lease is no longer this instance's; nothing was appended")]
    NotHolder,
    /// The local hub did not catch up with the stream in time.
    #[error("the reader did not catch up with Redis within {0:?}")]
    Behind(Duration),
}

impl From<RedisLogError> for PublishError {
    fn from(e: RedisLogError) -> Self {
        PublishError::Unavailable(Box::new(e))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}
