//! Who is online, counted by open streams: [`Presence`], kept in this process by
//! [`MemoryPresence`], or across instances
//! (`--redis`: `main.rs` gives the room the `sse-redis` crate's).
//!
//! A member is online while at least one of their streams is open anywhere: two tabs
//! are one member. [`Presence::enter`] publishes `join` when a member's first stream
//! opens, [`Presence::leave`] publishes `leave` when the last one closes. Each stream
//! has its own id, so entering or leaving twice with one stream counts once: a stream
//! may leave whether or not its enter went through.

use std::collections::HashMap;

use parking_lot::Mutex;
use salvo::async_trait;
use sse_shared::hub::Hub;

use super::{ChatEvent, RoomError, User};

/// Who is online.
#[async_trait]
pub trait Presence: Send + Sync {
    /// The stream `stream` of `user` is open; publishes `join` when it is their first.
    /// Call [`Presence::leave`] for the stream however this ends, error included.
    async fn enter(&self, stream: &str, user: &User) -> Result<(), RoomError>;
    /// The stream `stream` of `user` closed; publishes `leave` and answers `true` when
    /// it was their last.
    async fn leave(&self, stream: &str, user: &User) -> Result<bool, RoomError>;
    /// The members online now.
    async fn online(&self) -> Result<Vec<User>, RoomError>;
}

/// Presence in this process, publishing into the room's hub.
pub struct MemoryPresence {
    hub: Hub<ChatEvent>,
    counts: Mutex<Counts>,
}

/// Which member each open stream is, and each member's open streams.
#[derive(Default)]
struct Counts {
    streams: HashMap<String, String>,
    members: HashMap<String, (usize, User)>,
}

impl MemoryPresence {
    /// Presence that publishes joins and leaves into `hub`.
    pub fn new(hub: Hub<ChatEvent>) -> Self {
        let counts = Mutex::default();
        Self { hub, counts }
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn enter(&self, stream: &str, user: &User) -> Result<(), RoomError> {
        let mut counts = self.counts.lock();
        if counts.streams.contains_key(stream) {
            return Ok(());
        }
        if !counts.members.contains_key(&user.id) {
            // Published under the lock, so joins and leaves keep their order.
            self.hub.publish(ChatEvent::Join(user.clone()))?;
        }
        counts.streams.insert(stream.to_owned(), user.id.clone());
        let entry = counts.members.entry(user.id.clone());
        entry.or_insert((0, user.clone())).0 += 1;
        Ok(())
    }

    async fn leave(&self, stream: &str, user: &User) -> Result<bool, RoomError> {
        let mut counts = self.counts.lock();
        if counts.streams.remove(stream).is_none() {
            return Ok(false);
        }
        let Some(entry) = counts.members.get_mut(&user.id) else {
            return Ok(false);
        };
        entry.0 -= 1;
        if entry.0 > 0 {
            return Ok(false);
        }
        counts.members.remove(&user.id);
        self.hub.publish(ChatEvent::Leave(user.clone()))?;
        Ok(true)
    }

    async fn online(&self) -> Result<Vec<User>, RoomError> {
        let counts = self.counts.lock();
        Ok(counts.members.values().map(|(_, u)| u.clone()).collect())
    }
}
