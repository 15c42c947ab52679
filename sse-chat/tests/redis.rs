//! sse-chat across two instances on one Redis: messages, identities and presence are
//! shared; a killed instance's members leave within seconds; while Redis is down a post
//! gets 503 and nothing is lost after it comes back.

mod common;

use std::time::Duration;

use serde_json::Value;
use sse_chat::RoomLimits;
use sse_shared::config::ServerArgs;
use sse_shared::hub::{HistoryLimits, Hub};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::streams::Streams;
use sse_shared::testing::{
    AppProcess, Fault, FaultyProxy, RedisServer, SseConnection, TestApp, TestResult, WAIT,
    expect_backend_down, http, metric, wait_until, within,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::ReadWelcome;

// The binary's Redis wiring, as `main.rs` uses it.
#[path = "../src/redis.rs"]
mod redis_room;

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
    let welcome = conn.chat_welcome().await?;
    Ok(Member {
        conn,
        token: welcome.token,
        online: welcome.online,
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

/// The presence script's operations, as they travel in a command.
const ENTER: &[u8] = b"$5\r\nenter\r\n";
const LEAVE: &[u8] = b"$5\r\nleave\r\n";

/// sse-chat in this process: its event log on `redis`, members and presence on
/// `presence_url` (the proxy, to fail them), joins per address not limited.
async fn chat_on(redis: &RedisServer, presence_url: &str) -> TestResult<TestApp> {
    let args = ServerArgs {
        max_streams_per_ip: 1000,
        ..ServerArgs::default()
    };
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let token = streams.shutdown_token();
    let log = sse_redis::publisher(Some(&redis.url()), "sse-chat:events", hub, token).await?;
    let limits = RoomLimits {
        join_burst: 1000,
        ..RoomLimits::default()
    };
    let room = redis_room::room(log, presence_url, limits, streams.shutdown_token()).await?;
    let router = sse_chat::router(&room);
    TestApp::serve(args, streams, router).await
}

/// The members Redis counts as online.
async fn online_in_redis(redis: &RedisServer) -> TestResult<Vec<String>> {
    let mut conn = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    Ok(redis::cmd("HKEYS")
        .arg("sse-chat:presence:online")
        .query_async(&mut conn)
        .await?)
}

#[tokio::test]
async fn two_hundred_joins_cut_while_redis_stalls_leave_no_one_online() -> TestResult {
    let redis = RedisServer::start().await?;
    let proxy = FaultyProxy::start(&redis).await?;
    let app = chat_on(&redis, &proxy.url).await?;
    // The first enter stalls the presence connection for longer than a command may
    // take (2 s): the enters behind it time out, though Redis runs them afterwards, and
    // their clients have gone by then.
    proxy.arm(ENTER, Fault::Stall(Duration::from_secs(3)));
    let addr = app.url("").trim_start_matches("http://").to_owned();
    let mut cut = Vec::new();
    for n in 0..200 {
        let mut conn = TcpStream::connect(&addr).await?;
        let request = format!(
            "GET /chat/events?name=cut{n} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await?;
        cut.push(conn);
    }
    // Each join holds its stream's guard while it waits on the stalled Redis.
    wait_until(WAIT, "the 200 joins to wait on Redis", || async {
        Ok(app.metric("sse_open_streams").await? == 200.0)
    })
    .await?;
    drop(cut); // cut mid-request
    assert!(proxy.has_struck(), "the enters met the stall");
    // A join while the stall lasts is refused with 503 once its command times out (2 s);
    // one after it queues behind every enter and leave of the cut joins, so its welcome
    // shows what Redis holds once they have all run.
    let url = app.url("/chat/events?name=later");
    let later = within(WAIT, "a join once the stall is over", async {
        loop {
            let mut conn = SseConnection::open(&url, &[]).await?;
            if conn.status != 503 {
                let welcome = conn.chat_welcome().await?;
                return TestResult::Ok((conn, welcome));
            }
        }
    })
    .await??;
    assert_eq!(later.1.online, ["later"]);
    assert_eq!(online_in_redis(&redis).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_leave_that_redis_did_not_take_is_sent_again() -> TestResult {
    let redis = RedisServer::start().await?;
    let proxy = FaultyProxy::start(&redis).await?;
    let app = chat_on(&redis, &proxy.url).await?;
    let mut watcher = join(&app.url(""), "name=watcher").await?;
    let leaving = join(&app.url(""), "name=leaving").await?;
    assert_eq!(next(&mut watcher.conn, WAIT).await?, "join:watcher");
    assert_eq!(next(&mut watcher.conn, WAIT).await?, "join:leaving");
    // The leave's connection is lost before the command reaches Redis.
    proxy.arm(LEAVE, Fault::Cut);
    drop(leaving);
    assert_eq!(next(&mut watcher.conn, WAIT).await?, "leave:leaving");
    assert!(proxy.has_struck(), "the leave met the cut");
    assert_eq!(online_in_redis(&redis).await?.len(), 1, "only the watcher");
    Ok(())
}

#[tokio::test]
async fn an_instance_swept_while_alive_registers_its_members_again() -> TestResult {
    let redis = RedisServer::start().await?;
    let app = chat_on(&redis, &redis.url()).await?;
    let mut frank = join(&app.url(""), "name=frank").await?;
    assert_eq!(next(&mut frank.conn, WAIT).await?, "join:frank");
    // Another instance sweeps this one as dead, as it would after a 5 s Redis blip here.
    let mut conn = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let keys = ["online", "profiles", "leaves"].map(|k| format!("sse-chat:presence:{k}"));
    let (swept_flag, swept): (i64, i64) = redis::cmd("EVAL")
        .arg(sse_redis::presence::SCRIPT)
        .arg(5)
        .arg(&keys)
        .arg("sse-chat:events")
        .arg("sse-chat:presence:instances")
        .arg("beat")
        .arg("")
        .arg(1000)
        .arg("the-sweeper")
        .arg(0) // everyone who beat before now is dead
        .arg("sse-chat:presence")
        .query_async(&mut conn)
        .await?;
    // Swept: this instance, and the sweeper itself (it beat "before now" too).
    assert_eq!((swept_flag, swept), (1, 2));
    assert_eq!(next(&mut frank.conn, WAIT).await?, "leave:frank");
    // Its next heartbeat finds it was swept: frank, still connected, is back.
    assert_eq!(next(&mut frank.conn, WAIT).await?, "join:frank");
    assert_eq!(online_in_redis(&redis).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn while_redis_is_down_a_post_gets_503_and_the_room_recovers_without_it() -> TestResult {
    let mut redis = RedisServer::start().await?;
    let url = redis.url();
    let a = AppProcess::spawn(BIN, &["--redis", &url]).await?;
    let wait = Duration::from_secs(10);
    let mut alice = join(a.url(), "name=alice").await?;
    assert_eq!(next(&mut alice.conn, wait).await?, "join:alice");

    redis.stop().await?;
    let response = http()
        .post(format!("{}/chat/messages", a.url()))
        .header("authorization", format!("Bearer {}", alice.token))
        .body("while down")
        .send()
        .await?;
    expect_backend_down(response, a.url()).await?;
    assert!(metric(a.url(), "sse_backend_errors_total").await? >= 1.0);

    redis.restart().await?;
    within(Duration::from_secs(15), "a post to succeed again", async {
        while post(a.url(), &alice.token, "after").await? != 202 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        TestResult::Ok(())
    })
    .await??;
    // Presence may be said again around the outage; the refused post never arrives.
    loop {
        let got = next(&mut alice.conn, wait).await?;
        assert_ne!(got, "alice: while down");
        if got == "alice: after" {
            break;
        }
    }
    Ok(())
}
