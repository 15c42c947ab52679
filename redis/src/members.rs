//! Members behind secret tokens, shared by every instance: sse-chat's `Members` with
//! `--redis`. Each member is one key, `<prefix>:token:<key>`, holding
//! `{"member": .., "posted": bool}` as JSON; forgetting is the key's TTL: a day after the
//! token's last use, or `forget_silent_after` the last stream of one who never posted
//! closed.

use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{RedisLogError, connect_url};

/// In Redis: shorten a silent member's TTL when their last stream closed.
const RELEASE: &str = r"
local stored = redis.call('GET', KEYS[1])
if stored and not cjson.decode(stored).posted then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 0";

/// What is stored per member.
#[derive(Serialize, Deserialize)]
struct Stored<M> {
    member: M,
    posted: bool,
}

/// Members in Redis, under keys starting with a prefix.
pub struct RedisMembers {
    conn: ConnectionManager,
    prefix: String,
    forget_after: Duration,
    forget_silent_after: Duration,
}

impl RedisMembers {
    /// Members at `url` under `prefix`: kept `forget_after` their last use, or
    /// `forget_silent_after` their release when they never posted.
    pub async fn connect(
        url: &str,
        prefix: &str,
        forget_after: Duration,
        forget_silent_after: Duration,
    ) -> Result<Self, RedisLogError> {
        Ok(Self {
            conn: connect_url(url).await?,
            prefix: prefix.to_owned(),
            forget_after,
            forget_silent_after,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:token:{key}", self.prefix)
    }

    /// Adds `member` under `key` (a hash of its token), as one who has not posted.
    pub async fn add<M: Serialize>(&self, key: &str, member: &M) -> Result<(), RedisLogError> {
        self.store(key, member, false, false).await
    }

    /// The member under `key`, and whether they have posted; the key then stays
    /// another `forget_after`.
    pub async fn find<M: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(M, bool)>, RedisLogError> {
        let json: Option<String> = redis::cmd("GETEX")
            .arg(self.key(key))
            .arg("EX")
            .arg(self.forget_after.as_secs())
            .query_async(&mut self.conn.clone())
            .await?;
        let stored = json.and_then(|json| serde_json::from_str::<Stored<M>>(&json).ok());
        Ok(stored.map(|s| (s.member, s.posted)))
    }

    /// Notes that the member under `key` has posted (unless they were forgotten).
    pub async fn posted<M: Serialize>(&self, key: &str, member: &M) -> Result<(), RedisLogError> {
        self.store(key, member, true, true).await
    }

    /// The member's last stream closed: one who never posted is forgotten soon.
    pub async fn release(&self, key: &str) -> Result<(), RedisLogError> {
        let () = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(key))
            .arg(self.forget_silent_after.as_secs().max(1))
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn store<M: Serialize>(
        &self,
        key: &str,
        member: &M,
        posted: bool,
        only_if_there: bool,
    ) -> Result<(), RedisLogError> {
        let json = serde_json::to_string(&Stored { member, posted })?;
        let mut set = redis::cmd("SET");
        set.arg(self.key(key)).arg(json);
        if only_if_there {
            // XX: never brings back a member forgotten meanwhile.
            set.arg("XX");
        }
        set.arg("EX").arg(self.forget_after.as_secs());
        let _: Option<String> = set.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }
}
