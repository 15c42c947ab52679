//! sse-chat across two instances on one Redis: messages, identities and presence are
//! shared; a killed instance's members leave within seconds.

use std::time::Duration;

use serde_json::Value;
use sse_shared::testing::{AppProcess, RedisServer, SseConnection, TestResult, http};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");

struct Member {
    conn: SseConnection,
    token: String,
    online: Vec<String>,
}

async fn join(base: &str, query: &str) -> TestResult<Member> {
    join_with(base, query, &[]).await
}

async fn join_with(base: &str, query: &str, headers: &[(&str, &str)]) -> TestResult<Member> {
    let mut conn = SseConnection::open(&format!("{base}/chat/events?{query}"), headers).await?;
    let welcome = conn.next_event().await?;
    assert_eq!(welcome.event.as_deref(), Some("welcome"));
    let data: Value = serde_json::from_str(welcome.data.as_deref().unwrap_or_default())?;
    let online = data["online"]
        .as_array()
        .ok_or("no online list")?
        .iter()
        .filter_map(|u| u["name"].as_str().map(str::to_owned))
        .collect();
    Ok(Member {
        conn,
        token: data["token"].as_str().ok_or("no token")?.to_owned(),
        online,
    })
}

/// The next join, leave or message, as "join:alice", "leave:alice" or "alice: text".
async fn next(conn: &mut SseConnection, limit: Duration) -> TestResult<String> {
    loop {
        let event = conn.next_within(limit).await?;
        let data: Value = serde_json::from_str(event.data.as_deref().unwrap_or("null"))?;
        match event.event.as_deref() {
            Some("join") | Some("leave") => {
                return Ok(format!(
                    "{}:{}",
                    event.event.unwrap_or_default(),
                    data["user"]["name"].as_str().unwrap_or_default()
                ));
            }
            Some("message") => {
                return Ok(format!(
                    "{}: {}",
                    data["from"]["name"].as_str().unwrap_or_default(),
                    data["text"].as_str().unwrap_or_default()
                ));
            }
            _ => continue,
        }
    }
}

fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn post(base: &str, token: &str, text: &str) -> TestResult<u16> {
    let response = http()
        .post(format!("{base}/chat/messages"))
        .header("authorization", format!("Bearer {token}"))
        .body(text.to_owned())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn two_instances_share_messages_identities_and_presence() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let a = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let b = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let wait = Duration::from_secs(10);

    let mut alice = join(a.url(), "name=alice").await?;
    assert_eq!(next(&mut alice.conn, wait).await?, "join:alice");
    let mut bob = join(b.url(), "name=bob").await?;
    assert_eq!(bob.online, ["alice", "bob"], "B knows who is online on A");
    assert_eq!(next(&mut alice.conn, wait).await?, "join:bob");

    // A message posted on A reaches B's member, and alice's token works on B as well.
    assert_eq!(post(a.url(), &alice.token, "hi from A").await?, 202);
    assert_eq!(post(b.url(), &alice.token, "hi via B").await?, 202);
    for member in [&mut alice, &mut bob] {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let event = next(&mut member.conn, wait).await?;
            if event.starts_with("alice: ") {
                seen.push(event);
            }
        }
        assert_eq!(seen, ["alice: hi from A", "alice: hi via B"]);
    }

    // Redis holds a hash of each token, never the token: a member who posted keeps a
    // day-long TTL.
    let mut redis_conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sse-chat:members:token:*")
        .query_async(&mut redis_conn)
        .await?;
    let alice_key = format!("sse-chat:members:token:{}", sha256_hex(&alice.token));
    assert!(keys.contains(&alice_key), "{keys:?}");
    for key in &keys {
        assert!(
            !key.contains(&alice.token) && !key.contains(&bob.token),
            "{key}"
        );
        let value: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut redis_conn)
            .await?;
        assert!(
            !value.contains(&alice.token) && !value.contains(&bob.token),
            "{value}"
        );
    }
    let ttl: i64 = redis::cmd("TTL")
        .arg(&alice_key)
        .query_async(&mut redis_conn)
        .await?;
    assert!(ttl > 86_000, "a poster's TTL: {ttl}");

    // A member who never posted is forgotten a minute after their last stream closed.
    let silent = join(a.url(), "name=silent").await?;
    let silent_key = format!("sse-chat:members:token:{}", sha256_hex(&silent.token));
    drop(silent);
    sse_shared::testing::wait_until(wait, "the silent member's TTL to drop", || {
        let mut conn = redis_conn.clone();
        let key = silent_key.clone();
        async move {
            let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await?;
            Ok((1..=60).contains(&ttl))
        }
    })
    .await?;
    for _ in 0..2 {
        let event = next(&mut bob.conn, wait).await?;
        assert!(event.ends_with(":silent"), "{event}");
    }

    // A second tab of alice's, on B, carrying her cookie: still one member. Closing one
    // tab is not leaving.
    let cookie = format!("chat-member={}", alice.token);
    let second_tab = join_with(b.url(), "name=alice", &[("cookie", &cookie)]).await?;
    assert_eq!(second_tab.online, ["alice", "bob"]);
    drop(alice);
    assert_eq!(post(b.url(), &bob.token, "still here?").await?, 202);
    assert_eq!(
        next(&mut bob.conn, wait).await?,
        "bob: still here?",
        "no leave, no second join"
    );
    drop(second_tab);
    assert_eq!(next(&mut bob.conn, wait).await?, "leave:alice");
    Ok(())
}

#[tokio::test]
async fn a_killed_instance_members_leave_within_seconds() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let mut a = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let b = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let _carol = join(a.url(), "name=carol").await?;
    let mut dave = join(b.url(), "name=dave").await?;
    assert_eq!(dave.online, ["carol", "dave"]);
    a.kill().await?;
    // B's heartbeat sweeps A's presence once A has been silent for 5 s.
    loop {
        let event = next(&mut dave.conn, Duration::from_secs(15)).await?;
        if event == "leave:carol" {
            break;
        }
    }
    let again = join(b.url(), "name=erin").await?;
    assert_eq!(again.online, ["dave", "erin"]);
    Ok(())
}
