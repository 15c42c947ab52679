//! Identities behind secret tokens: who a token stands for, in one process or shared by
//! every instance through Redis.
//!
//! [`Identities::issue`] gives a new member the next id and a fresh 128-bit token;
//! [`Identities::find`] answers who a token is. A token is forgotten a day after it was
//! last used, so memory follows the active members, not everyone who ever came.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde::de::DeserializeOwned;

use sse_shared::backend::redis_log::RedisLogError;
use sse_shared::secret::random_token;

/// How long an unused token stays valid.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Tokens and who they stand for.
pub enum Identities<U> {
    /// One process.
    Memory(Mutex<Known<U>>),
    /// Every instance, under keys starting with the prefix.
    Redis(ConnectionManager, String),
}

/// The in-memory table.
pub struct Known<U> {
    by_token: HashMap<String, (U, Instant)>,
    next_id: u64,
    max: usize,
}

/// Why a token could not be issued or looked up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// As many identities as allowed are in use.
    #[error("too many members")]
    Full,
    /// Redis could not answer.
    #[error(transparent)]
    Unavailable(#[from] RedisLogError),
}

impl From<redis::RedisError> for IdentityError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl<U> Identities<U>
where
    U: Serialize + DeserializeOwned + Clone,
{
    /// In memory (at most `max` at once), or in Redis under `prefix` when there is a URL.
    pub async fn open(
        redis_url: Option<&str>,
        prefix: &str,
        max: usize,
    ) -> Result<Self, RedisLogError> {
        match redis_url {
            None => Ok(Self::Memory(Mutex::new(Known {
                by_token: HashMap::new(),
                next_id: 0,
                max,
            }))),
            Some(url) => {
                let conn = sse_shared::backend::redis_log::connect(
                    &redis::Client::open(url)?,
                    Duration::from_secs(2),
                )
                .await?;
                Ok(Self::Redis(conn, prefix.to_owned()))
            }
        }
    }

    /// A new identity: `make` builds it from the next id; returns its token and it.
    pub async fn issue(&self, make: impl FnOnce(u64) -> U) -> Result<(String, U), IdentityError> {
        let token = random_token();
        match self {
            Self::Memory(known) => {
                let mut known = known.lock();
                if known.by_token.len() >= known.max {
                    let now = Instant::now();
                    known
                        .by_token
                        .retain(|_, (_, used)| now.duration_since(*used) < FORGET_AFTER);
                    if known.by_token.len() >= known.max {
                        return Err(IdentityError::Full);
                    }
                }
                known.next_id += 1;
                let identity = make(known.next_id);
                known
                    .by_token
                    .insert(token.clone(), (identity.clone(), Instant::now()));
                Ok((token, identity))
            }
            Self::Redis(conn, prefix) => {
                let mut conn = conn.clone();
                let id: u64 = redis::cmd("INCR")
                    .arg(format!("{prefix}:ids"))
                    .query_async(&mut conn)
                    .await?;
                let identity = make(id);
                let json = serde_json::to_string(&identity).map_err(RedisLogError::from)?;
                let () = redis::cmd("SET")
                    .arg(format!("{prefix}:token:{token}"))
                    .arg(json)
                    .arg("EX")
                    .arg(FORGET_AFTER.as_secs())
                    .query_async(&mut conn)
                    .await?;
                Ok((token, identity))
            }
        }
    }

    /// Who `token` stands for, if anyone (and it stays valid another day).
    pub async fn find(&self, token: &str) -> Result<Option<U>, IdentityError> {
        match self {
            Self::Memory(known) => {
                let mut known = known.lock();
                Ok(known.by_token.get_mut(token).map(|(identity, used)| {
                    *used = Instant::now();
                    identity.clone()
                }))
            }
            Self::Redis(conn, prefix) => {
                let json: Option<String> = redis::cmd("GETEX")
                    .arg(format!("{prefix}:token:{token}"))
                    .arg("EX")
                    .arg(FORGET_AFTER.as_secs())
                    .query_async(&mut conn.clone())
                    .await?;
                Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
            }
        }
    }
}
