//! With `--redis`: active subscriptions every instance shares. The Redis code is the
//! `sse-redis` crate's ([`RedisSubscriptions`]); this module of the binary only fits it
//! to the hub's [`Registry`], so the library (what you copy for one process) never
//! meets Redis.

use std::sync::Arc;

use salvo::async_trait;
use serde_json::Value;
use sse_redis::{RedisLogError, RedisSubscriptions};
use sse_shared::hub::Hub;
use sse_topics::Update;
use sse_topics::subscriptions::{Registry, RegistryError, announcement};
use tokio_util::sync::CancellationToken;

/// The registry in Redis at `url`, announcing on the updates' stream `stream` (which
/// feeds `hub`); its heartbeat runs until `shutdown`.
pub async fn registry(
    url: &str,
    stream: &str,
    hub: &Hub<Update>,
    shutdown: CancellationToken,
) -> Result<Arc<dyn Registry>, RedisLogError> {
    let stream = (stream, hub.limits().max_events);
    let errors = hub.observer();
    let prefix = "sse-topics:subscriptions";
    let shared = RedisSubscriptions::connect(url, prefix, stream, errors, shutdown).await?;
    Ok(Arc::new(SharedRegistry(shared)))
}

struct SharedRegistry(Arc<RedisSubscriptions>);

fn unavailable(e: RedisLogError) -> RegistryError {
    RegistryError(e.into())
}

#[async_trait]
impl Registry for SharedRegistry {
    async fn enter(&self, subscriber: &str, docs: Vec<Value>) -> Result<(), RegistryError> {
        let starts: Vec<Update> = docs.iter().map(|d| announcement(d, true)).collect();
        let ends: Vec<Update> = docs.iter().map(|d| announcement(d, false)).collect();
        let entered = self.0.enter(subscriber, &docs, (&starts, &ends)).await;
        entered.map_err(unavailable)
    }

    async fn leave(&self, subscriber: &str) -> Result<(), RegistryError> {
        self.0.leave(subscriber).await.map_err(unavailable)
    }

    async fn all(&self) -> Result<Vec<Value>, RegistryError> {
        let documents = self.0.documents().await.map_err(unavailable)?;
        // Each subscriber's document is the list of its subscriptions. One that does
        // not read (written by something else) is skipped, not everyone's answer.
        let each = documents.iter().filter_map(|d| {
            let list = serde_json::from_str::<Vec<Value>>(d);
            list.inspect_err(|e| tracing::warn!("skipping a subscriber document in Redis: {e}"))
                .ok()
        });
        Ok(each.flatten().collect())
    }
}
