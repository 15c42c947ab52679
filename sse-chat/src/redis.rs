//! With `--redis`: a room whose members and presence every instance shares. The Redis
//! code is the `sse-redis` crate's ([`RedisMembers`], [`RedisPresence`]); this file
//! only fits it to the room's [`Members`] and [`Presence`].

use std::sync::Arc;

use salvo::async_trait;
use sse_redis::{RedisLogError, RedisMembers, RedisPresence};
use sse_shared::event_log::EventLog;
use tokio_util::sync::CancellationToken;

use crate::members::{FORGET_AFTER, Members};
use crate::presence::Presence;
use crate::{ChatEvent, ChatRoom, RoomError, RoomLimits, User};

/// A room on `log` (a Redis stream) whose members and presence are kept in Redis at
/// `url`; presence's heartbeat runs until `shutdown`.
pub async fn room(
    log: EventLog<ChatEvent>,
    url: &str,
    limits: RoomLimits,
    shutdown: CancellationToken,
) -> Result<Arc<ChatRoom>, RedisLogError> {
    let silent = limits.forget_silent_after;
    let members = RedisMembers::connect(url, "sse-chat:members", FORGET_AFTER, silent).await?;
    let hub = log.hub();
    let stream = ("sse-chat:events", hub.limits().max_events);
    let errors = hub.metrics().backend_errors.clone();
    let presence = RedisPresence::connect(url, "sse-chat:presence", stream, errors, shutdown);
    let presence = presence.await?;
    Ok(ChatRoom::new(log, Arc::new(members), presence, limits))
}

impl From<RedisLogError> for RoomError {
    fn from(e: RedisLogError) -> Self {
        RoomError::Unavailable(e.into())
    }
}

#[async_trait]
impl Members for RedisMembers {
    async fn add(&self, key: &str, user: &User) -> Result<(), RoomError> {
        Ok(RedisMembers::add(self, key, user).await?)
    }
    async fn find(&self, key: &str) -> Result<Option<(User, bool)>, RoomError> {
        Ok(RedisMembers::find(self, key).await?)
    }
    async fn posted(&self, key: &str, user: &User) -> Result<(), RoomError> {
        Ok(RedisMembers::posted(self, key, user).await?)
    }
    async fn release(&self, key: &str) -> Result<(), RoomError> {
        Ok(RedisMembers::release(self, key).await?)
    }
}

#[async_trait]
impl Presence for RedisPresence {
    async fn enter(&self, stream: &str, user: &User) -> Result<(), RoomError> {
        let events = (
            &ChatEvent::Join(user.clone()),
            &ChatEvent::Leave(user.clone()),
        );
        Ok(RedisPresence::enter(self, stream, &user.id, user, events).await?)
    }
    async fn leave(&self, stream: &str, user: &User) -> Result<bool, RoomError> {
        Ok(RedisPresence::leave(self, stream, &user.id).await?)
    }
    async fn online(&self) -> Result<Vec<User>, RoomError> {
        Ok(RedisPresence::online(self).await?)
    }
}
