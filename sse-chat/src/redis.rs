//! With `--redis`: a room whose members and presence every instance shares. The Redis
//! code is the `sse-redis` crate's ([`RedisMembers`], [`RedisPresence`]); this module of
//! the binary only fits it to the room's [`Members`] and [`Presence`], so the library
//! (what you copy for one process) never meets Redis.

use std::sync::Arc;

use salvo::async_trait;
use sse_chat::members::FORGET_AFTER;
use sse_chat::{ChatEvent, ChatRoom, Members, Presence, RoomError, RoomLimits, User};
use sse_redis::{RedisLogError, RedisMembers, RedisPresence};
use sse_shared::publish::Publisher;
use tokio_util::sync::CancellationToken;

/// A room on `log` (a Redis stream) whose members and presence are kept in Redis at
/// `url`; presence's heartbeat runs until `shutdown`.
pub async fn room(
    log: Publisher<ChatEvent>,
    url: &str,
    limits: RoomLimits,
    shutdown: CancellationToken,
) -> Result<Arc<ChatRoom>, RedisLogError> {
    let silent = limits.forget_silent_after;
    let members = RedisMembers::connect(url, "sse-chat:members", FORGET_AFTER, silent).await?;
    let hub = log.hub();
    let stream = ("sse-chat:events", hub.limits().max_events);
    let errors = hub.observer();
    let presence = RedisPresence::connect(url, "sse-chat:presence", stream, errors, shutdown);
    let presence = SharedPresence(presence.await?);
    let members = SharedMembers(members);
    Ok(ChatRoom::new(
        log,
        Arc::new(members),
        Arc::new(presence),
        limits,
    ))
}

fn unavailable(e: RedisLogError) -> RoomError {
    RoomError::Unavailable(e.into())
}

struct SharedMembers(RedisMembers);

#[async_trait]
impl Members for SharedMembers {
    async fn add(&self, key: &str, user: &User) -> Result<(), RoomError> {
        self.0.add(key, user).await.map_err(unavailable)
    }
    async fn find(&self, key: &str) -> Result<Option<(User, bool)>, RoomError> {
        self.0.find(key).await.map_err(unavailable)
    }
    async fn posted(&self, key: &str, user: &User) -> Result<(), RoomError> {
        self.0.posted(key, user).await.map_err(unavailable)
    }
    async fn release(&self, key: &str) -> Result<(), RoomError> {
        self.0.release(key).await.map_err(unavailable)
    }
}

struct SharedPresence(Arc<RedisPresence>);

#[async_trait]
impl Presence for SharedPresence {
    async fn enter(&self, stream: &str, user: &User) -> Result<(), RoomError> {
        let events = (
            &ChatEvent::Join(user.clone()),
            &ChatEvent::Leave(user.clone()),
        );
        let entered = self.0.enter(stream, &user.id, user, events).await;
        entered.map_err(unavailable)
    }
    async fn leave(&self, stream: &str, user: &User) -> Result<bool, RoomError> {
        self.0.leave(stream, &user.id).await.map_err(unavailable)
    }
    async fn online(&self) -> Result<Vec<User>, RoomError> {
        self.0.online().await.map_err(unavailable)
    }
}
