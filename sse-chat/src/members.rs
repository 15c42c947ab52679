//! Who a member token stands for: [`Members`], kept in this process by
//! [`MemoryMembers`], or shared by every instance
//! (`--redis`: `main.rs` gives the room the `sse-redis` crate's).
//!
//! Members are stored under a SHA-256 of their token ([`token_key`]), so a dump of the
//! table holds no credential; a plain hash is enough because tokens are random, not
//! passwords. Forgetting keeps the table bounded by real members, not by joins: a member
//! who has posted is forgotten a day after their token was last used; one who never
//! posted, a minute after their last stream closed ([`Members::release`]), so
//! open-and-drop joins leave nothing behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use salvo::async_trait;
use sha2::{Digest, Sha256};

use super::{RoomError, User};

/// How long a member's token stays valid after its last use.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a member who never posted is kept after their last stream closed, by
/// default (long enough for a reconnect to keep the identity).
pub const FORGET_SILENT_AFTER: Duration = Duration::from_secs(60);

/// The room's members, by [`token_key`].
#[async_trait]
pub trait Members: Send + Sync {
    /// Adds `user`, who has not posted yet; [`RoomError::Full`] when no more fit.
    async fn add(&self, key: &str, user: &User) -> Result<(), RoomError>;
    /// The member under `key`, and whether they have posted (their token then stays
    /// valid another [`FORGET_AFTER`]).
    async fn find(&self, key: &str) -> Result<Option<(User, bool)>, RoomError>;
    /// Notes that the member has posted: they are kept for a day, not a minute.
    async fn posted(&self, key: &str, user: &User) -> Result<(), RoomError>;
    /// The member's last stream closed: one who never posted is forgotten soon.
    async fn release(&self, key: &str) -> Result<(), RoomError>;
    /// Frees what has expired (in memory; Redis forgets by key TTLs).
    fn forget_expired(&self) {}
    /// How many members are held in memory (`None` when they are not in memory).
    fn remembered(&self) -> Option<usize> {
        None
    }
}

/// What members are stored under: the token's SHA-256, in hex.
pub fn token_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Members in this process, at most `max` at once.
pub struct MemoryMembers {
    by_key: Mutex<HashMap<String, Entry>>,
    max: usize,
    forget_silent_after: Duration,
}

struct Entry {
    user: User,
    posted: bool,
    forget_at: Instant,
}

impl MemoryMembers {
    /// Room for `max` members; a silent one is forgotten `forget_silent_after` their
    /// last stream closed.
    pub fn new(max: usize, forget_silent_after: Duration) -> Self {
        Self {
            by_key: Mutex::new(HashMap::new()),
            max,
            forget_silent_after,
        }
    }
}

#[async_trait]
impl Members for MemoryMembers {
    async fn add(&self, key: &str, user: &User) -> Result<(), RoomError> {
        let mut by_key = self.by_key.lock();
        let now = Instant::now();
        if by_key.len() >= self.max {
            by_key.retain(|_, entry| entry.forget_at > now);
            if by_key.len() >= self.max {
                return Err(RoomError::Full);
            }
        }
        let (user, posted, forget_at) = (user.clone(), false, now + FORGET_AFTER);
        by_key.insert(
            key.to_owned(),
            Entry {
                user,
                posted,
                forget_at,
            },
        );
        Ok(())
    }

    async fn find(&self, key: &str) -> Result<Option<(User, bool)>, RoomError> {
        let mut by_key = self.by_key.lock();
        let now = Instant::now();
        if by_key.get(key).is_some_and(|e| e.forget_at <= now) {
            by_key.remove(key);
        }
        Ok(by_key.get_mut(key).map(|entry| {
            entry.forget_at = now + FORGET_AFTER;
            (entry.user.clone(), entry.posted)
        }))
    }

    async fn posted(&self, key: &str, _: &User) -> Result<(), RoomError> {
        if let Some(entry) = self.by_key.lock().get_mut(key) {
            entry.posted = true;
        }
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), RoomError> {
        if let Some(entry) = self.by_key.lock().get_mut(key)
            && !entry.posted
        {
            entry.forget_at = Instant::now() + self.forget_silent_after;
        }
        Ok(())
    }

    fn forget_expired(&self) {
        let now = Instant::now();
        self.by_key.lock().retain(|_, entry| entry.forget_at > now);
    }

    fn remembered(&self) -> Option<usize> {
        Some(self.by_key.lock().len())
    }
}
