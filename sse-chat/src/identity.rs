//! Identities behind secret tokens: who a token stands for, in one process or shared by
//! every instance through Redis.
//!
//! [`Identities::issue`] gives a new member a fresh random id (64 bits: it never
//! repeats, across restarts and a lost or flushed Redis, where a counter would start
//! again at 1 and give a newcomer someone else's number) and a fresh 128-bit token;
//! [`Identities::find`] answers who a token is. Only a SHA-256 of each token is kept (in
//! memory and in Redis), so a dump of either holds no credential; a plain hash is
//! enough because the tokens are random, not passwords.
//!
//! Forgetting keeps the table bounded by real members, not by joins: a member who has
//! posted is forgotten a day after their token was last used; one who never posted, a
//! minute after their last stream closed ([`Identities::release`]), so open-and-drop
//! joins leave nothing behind. In Redis both are key TTLs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sse_shared::event_log::SharedLogError;
use sse_shared::secret::random_token;

/// How long a member's token stays valid after its last use.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a member who never posted is kept after their last stream closed, by
/// default (long enough for a reconnect to keep the identity).
pub const FORGET_SILENT_AFTER: Duration = Duration::from_secs(60);

/// Tokens (by hash) and who they stand for.
pub struct Identities<U> {
    place: Place<U>,
    forget_silent_after: Duration,
}

enum Place<U> {
    /// One process.
    Memory(Mutex<Known<U>>),
    /// Every instance, under keys starting with the prefix.
    Redis(ConnectionManager, String),
}

/// The in-memory table.
pub struct Known<U> {
    by_hash: HashMap<String, Entry<U>>,
    max: usize,
}

/// One member: who, and what forgetting them depends on.
#[derive(Serialize, Deserialize)]
pub struct Entry<U> {
    pub identity: U,
    pub posted: bool,
    #[serde(skip)]
    forget_at: Option<Instant>,
}

impl<U> Entry<U> {
    fn expired(&self, now: Instant) -> bool {
        self.forget_at.is_some_and(|at| now >= at)
    }
}

/// Why a token could not be issued or looked up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// As many identities as allowed are in use.
    #[error("too many members")]
    Full,
    /// Redis could not answer.
    #[error(transparent)]
    Unavailable(#[from] SharedLogError),
}

impl From<redis::RedisError> for IdentityError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(SharedLogError(e.into()))
    }
}

/// What is stored for a token: its SHA-256, in hex.
fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// In Redis: shorten a silent member's TTL when their last stream closed.
const RELEASE: &str = r"
local stored = redis.call('GET', KEYS[1])
if stored and not cjson.decode(stored).posted then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 0";

impl<U> Identities<U>
where
    U: Serialize + DeserializeOwned + Clone,
{
    /// In memory (at most `max` at once), or in Redis under `prefix` when there is a
    /// connection; a silent member is forgotten `forget_silent_after` their last stream
    /// closed.
    pub fn open(
        redis: Option<ConnectionManager>,
        prefix: &str,
        max: usize,
        forget_silent_after: Duration,
    ) -> Self {
        let place = match redis {
            None => Place::Memory(Mutex::new(Known {
                by_hash: HashMap::new(),
                max,
            })),
            Some(conn) => Place::Redis(conn, prefix.to_owned()),
        };
        Self {
            place,
            forget_silent_after,
        }
    }

    /// A new identity: `make` builds it from a fresh id (16 hex digits); returns its
    /// token and it.
    pub async fn issue(
        &self,
        make: impl FnOnce(String) -> U,
    ) -> Result<(String, U), IdentityError> {
        let token = random_token();
        let id = random_token()[..16].to_owned();
        match &self.place {
            Place::Memory(known) => {
                let mut known = known.lock();
                if known.by_hash.len() >= known.max {
                    let now = Instant::now();
                    known.by_hash.retain(|_, entry| !entry.expired(now));
                    if known.by_hash.len() >= known.max {
                        return Err(IdentityError::Full);
                    }
                }
                let identity = make(id);
                let entry = Entry {
                    identity: identity.clone(),
                    posted: false,
                    forget_at: Some(Instant::now() + FORGET_AFTER),
                };
                known.by_hash.insert(hash(&token), entry);
                Ok((token, identity))
            }
            Place::Redis(conn, prefix) => {
                let mut conn = conn.clone();
                let identity = make(id);
                let entry = Entry {
                    identity: identity.clone(),
                    posted: false,
                    forget_at: None,
                };
                let json = serde_json::to_string(&entry).map_err(|e| SharedLogError(e.into()))?;
                let () = redis::cmd("SET")
                    .arg(format!("{prefix}:token:{}", hash(&token)))
                    .arg(json)
                    .arg("EX")
                    .arg(FORGET_AFTER.as_secs())
                    .query_async(&mut conn)
                    .await?;
                Ok((token, identity))
            }
        }
    }

    /// Who `token` stands for, and whether they have posted (the token then stays
    /// valid another day).
    pub async fn find(&self, token: &str) -> Result<Option<(U, bool)>, IdentityError> {
        match &self.place {
            Place::Memory(known) => {
                let mut known = known.lock();
                let now = Instant::now();
                let key = hash(token);
                if known.by_hash.get(&key).is_some_and(|e| e.expired(now)) {
                    known.by_hash.remove(&key);
                }
                Ok(known.by_hash.get_mut(&key).map(|entry| {
                    entry.forget_at = Some(now + FORGET_AFTER);
                    (entry.identity.clone(), entry.posted)
                }))
            }
            Place::Redis(conn, prefix) => {
                let json: Option<String> = redis::cmd("GETEX")
                    .arg(format!("{prefix}:token:{}", hash(token)))
                    .arg("EX")
                    .arg(FORGET_AFTER.as_secs())
                    .query_async(&mut conn.clone())
                    .await?;
                let entry = json.and_then(|json| serde_json::from_str::<Entry<U>>(&json).ok());
                Ok(entry.map(|entry| (entry.identity, entry.posted)))
            }
        }
    }

    /// Notes that `token`'s member has posted: they are kept for a day, not a minute.
    pub async fn posted(&self, token: &str, identity: &U) -> Result<(), IdentityError> {
        match &self.place {
            Place::Memory(known) => {
                if let Some(entry) = known.lock().by_hash.get_mut(&hash(token)) {
                    entry.posted = true;
                }
                Ok(())
            }
            Place::Redis(conn, prefix) => {
                let entry = Entry {
                    identity: identity.clone(),
                    posted: true,
                    forget_at: None,
                };
                let json = serde_json::to_string(&entry).map_err(|e| SharedLogError(e.into()))?;
                // XX: never brings back a token that was forgotten meanwhile.
                let _: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}:token:{}", hash(token)))
                    .arg(json)
                    .arg("XX")
                    .arg("EX")
                    .arg(FORGET_AFTER.as_secs())
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(())
            }
        }
    }

    /// The member's last stream closed: one who never posted is forgotten soon.
    pub async fn release(&self, token: &str) -> Result<(), IdentityError> {
        match &self.place {
            Place::Memory(known) => {
                if let Some(entry) = known.lock().by_hash.get_mut(&hash(token))
                    && !entry.posted
                {
                    entry.forget_at = Some(Instant::now() + self.forget_silent_after);
                }
                Ok(())
            }
            Place::Redis(conn, prefix) => {
                let () = redis::cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(format!("{prefix}:token:{}", hash(token)))
                    .arg(self.forget_silent_after.as_secs().max(1))
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(())
            }
        }
    }

    /// Frees the identities whose time is up (in memory; Redis forgets by its TTLs).
    /// Run every few seconds ([`crate::ChatRoom::open`] does), so a forgotten member's
    /// memory comes back when they are forgotten, not when the table is full.
    pub fn forget_expired(&self) {
        if let Place::Memory(known) = &self.place {
            let now = Instant::now();
            known.lock().by_hash.retain(|_, entry| !entry.expired(now));
        }
    }

    /// How many identities are held in memory now (`None` with Redis, which forgets by
    /// its TTLs).
    pub fn remembered(&self) -> Option<usize> {
        match &self.place {
            Place::Memory(known) => Some(known.lock().by_hash.len()),
            Place::Redis(..) => None,
        }
    }
}
