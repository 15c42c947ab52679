//! sse-chat over real TCP, read by an independent SSE parser (`sse-stream`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use serde_json::Value;
use sse_chat::{ChatRoom, RoomLimits};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, WAIT, expect_error, http, json_data, reqwest, set_cookie,
    wait_until,
};
use sse_shared::{HistoryLimits, Hub, ServerArgs, Streams};

use common::ReadWelcome;

/// Join and post limits high enough for the many members these tests make from one
/// address; the tests of those limits use [`start_with`] and the defaults.
fn roomy() -> RoomLimits {
    RoomLimits {
        join_burst: 1000,
        ip_post_burst: 1000,
        ..RoomLimits::default()
    }
}

async fn start(args: ServerArgs) -> TestResult<(TestApp, Arc<ChatRoom>)> {
    start_with(args, roomy()).await
}

async fn start_with(args: ServerArgs, limits: RoomLimits) -> TestResult<(TestApp, Arc<ChatRoom>)> {
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let room = ChatRoom::in_memory(hub, limits);
    let router = sse_chat::router(&room);
    Ok((TestApp::serve(args, streams, router).await?, room))
}

const COOKIE: &str = "chat-member";

/// Opens a stream as the member `token` names, carrying it the way the page does: in
/// the member cookie.
async fn rejoin(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> TestResult<Member> {
    let cookie = format!("{COOKIE}={token}");
    let mut all = vec![("cookie", cookie.as_str())];
    all.extend_from_slice(headers);
    open(&app.url("/chat/events"), &all).await
}

/// Names of the members online, in order.
async fn online(room: &ChatRoom) -> TestResult<Vec<String>> {
    Ok(room.online().await?.into_iter().map(|u| u.name).collect())
}

/// A member's open stream, and what its welcome said.
struct Member {
    conn: SseConnection,
    id: String,
    token: String,
}

async fn join(app: &TestApp, name: &str) -> TestResult<Member> {
    let url = format!("{}?name={}", app.url("/chat/events"), urlencode(name));
    open(&url, &[]).await
}

async fn open(url: &str, headers: &[(&str, &str)]) -> TestResult<Member> {
    let mut conn = SseConnection::open(url, headers).await?;
    assert_eq!(conn.status, 200);
    let welcome = conn.chat_welcome().await?;
    Ok(Member {
        conn,
        id: welcome.user_id,
        token: welcome.token,
    })
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn post(
    app: &TestApp,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> TestResult<reqwest::Response> {
    Ok(http()
        .post(app.url("/chat/messages"))
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .send()
        .await?)
}

/// The next event of a kind, skipping others; returns (id, data).
async fn next_of(conn: &mut SseConnection, kind: &str) -> TestResult<(String, Value)> {
    loop {
        let event = conn.next_event().await?;
        if event.event.as_deref() == Some(kind) {
            let data = json_data(&event)?;
            return Ok((event.id.unwrap_or_default(), data));
        }
    }
}

#[tokio::test]
async fn two_members_chat_and_see_one_order() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let mut alice = join(&app, "alice").await?;
    let mut bob = join(&app, "bob").await?;
    let (_, joined) = next_of(&mut alice.conn, "join").await?; // her own
    assert_eq!(joined["user"]["name"], "alice");
    let (_, joined) = next_of(&mut alice.conn, "join").await?;
    assert_eq!(joined["user"]["name"], "bob");

    let response = post(&app, &alice.token, "hi bob").await?;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await?;
    assert_eq!(post(&app, &bob.token, "hi alice").await?.status(), 202);

    for member in [&mut alice, &mut bob] {
        let (id, first) = next_of(&mut member.conn, "message").await?;
        assert_eq!(Value::String(id), accepted["id"]);
        assert_eq!(first["from"]["name"], "alice");
        assert_eq!(first["text"], "hi bob");
        assert!(first["at"].as_str().is_some_and(|at| at.ends_with('Z')));
        let (_, second) = next_of(&mut member.conn, "message").await?;
        assert_eq!(second["from"]["name"], "bob");
        assert_eq!(second["text"], "hi alice");
    }
    assert_ne!(alice.id, bob.id);
    Ok(())
}

#[tokio::test]
async fn fifty_members_each_get_every_message_once_in_one_order() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let mut members = Vec::new();
    for i in 0..50 {
        members.push(join(&app, &format!("m{i}")).await?);
    }
    let tokens: Vec<String> = members.iter().map(|m| m.token.clone()).collect();
    let app = &app;
    try_join_all(tokens.iter().enumerate().map(|(i, token)| async move {
        for n in 0..2 {
            let status = post(app, token, format!("{i}:{n}")).await?.status();
            if status != 202 {
                return Err(format!("post {i}:{n}: {status}").into());
            }
        }
        TestResult::Ok(())
    }))
    .await?;
    let orders = try_join_all(members.iter_mut().map(|member| async move {
        let mut seen = Vec::new();
        while seen.len() < 100 {
            let (id, message) = next_of(&mut member.conn, "message").await?;
            seen.push((id, message["text"].as_str().unwrap_or_default().to_owned()));
        }
        TestResult::Ok(seen)
    }))
    .await?;
    let mut texts: Vec<&str> = orders[0].iter().map(|(_, t)| t.as_str()).collect();
    for order in &orders[1..] {
        assert_eq!(order, &orders[0], "every member sees the same order");
    }
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 100, "every message once");
    Ok(())
}

#[tokio::test]
async fn presence_two_tabs_are_one_member_and_leave_comes_with_the_last() -> TestResult {
    // No keep-alive within the test: the close itself must be seen, not a failed write.
    let args = ServerArgs {
        keep_alive: Duration::from_secs(600),
        ..ServerArgs::default()
    };
    let (app, room) = start(args).await?;
    let mut watcher = join(&app, "watcher").await?;
    next_of(&mut watcher.conn, "join").await?;
    let first_tab = join(&app, "alice").await?;
    let (_, joined) = next_of(&mut watcher.conn, "join").await?;
    assert_eq!(joined["user"]["id"], first_tab.id);

    // A second tab with the same cookie: the same member, no second join.
    let second_tab = rejoin(&app, &first_tab.token, &[]).await?;
    assert_eq!(second_tab.id, first_tab.id);
    assert_eq!(online(&room).await?, ["alice", "watcher"]);

    // Closing one tab is not leaving; closing the last is, once.
    drop(first_tab);
    wait_until(WAIT, "the server to see the first tab close", || async {
        Ok(app.metric("sse_open_streams").await? == 2.0)
    })
    .await?;
    let marker = post(&app, &watcher.token, "after the first tab").await?;
    assert_eq!(marker.status(), 202);
    let (_, message) = next_of(&mut watcher.conn, "message").await?;
    assert_eq!(
        message["text"], "after the first tab",
        "no leave came before it"
    );
    drop(second_tab);
    // hyper reads the client's FIN while the stream is idle: the leave goes out at once.
    let leave = watcher.conn.next().await?;
    assert_eq!(leave.event.as_deref(), Some("leave"));
    let data: Value = json_data(&leave)?;
    assert_eq!(data["user"]["name"], "alice");
    assert_eq!(online(&room).await?, ["watcher"]);
    Ok(())
}

#[tokio::test]
async fn the_welcome_lists_who_is_online() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let _alice = join(&app, "alice").await?;
    let mut conn =
        SseConnection::open(&format!("{}?name=bob", app.url("/chat/events")), &[]).await?;
    // (`chat_welcome` checks the token: 128 bits as 32 hex digits.)
    let welcome = conn.chat_welcome().await?;
    assert_eq!(welcome.online, ["alice", "bob"]);
    assert_eq!(welcome.data["user"]["name"], "bob");
    Ok(())
}

#[tokio::test]
async fn tricky_text_arrives_verbatim() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let alice = join(&app, "alice").await?;
    let mut bob = join(&app, "bob").await?;
    let text =
        "a\rb\nc\r\nd\n\ndata: forged\nevent: join\nid: 999\n<script>alert(1)</script> \u{0}";
    assert_eq!(post(&app, &alice.token, text).await?.status(), 202);
    let (_, message) = next_of(&mut bob.conn, "message").await?;
    assert_eq!(message["text"], text, "JSON carries CR and NUL exactly");
    assert_eq!(message["from"]["id"], alice.id);
    Ok(())
}

#[tokio::test]
async fn every_rejection_has_its_status_and_publishes_nothing() -> TestResult {
    let (app, room) = start(ServerArgs::default()).await?;
    let alice = join(&app, "alice").await?;
    let latest = room.hub().latest();

    let no_token = http()
        .post(app.url("/chat/messages"))
        .body("hi")
        .send()
        .await?;
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (no_token, 401, "unauthorized"),
        (
            post(&app, "0123456789abcdef0123456789abcdef", "hi").await?,
            401,
            "unauthorized",
        ),
        (
            post(&app, &alice.token, vec![0xc3, 0x28]).await?,
            400,
            "invalid-utf8",
        ),
        (post(&app, &alice.token, "").await?, 400, "empty-body"),
        (
            post(&app, &alice.token, " \n\t").await?,
            400,
            "empty-message",
        ),
        (
            post(&app, &alice.token, "x".repeat(2001)).await?,
            413,
            "payload-too-large",
        ),
    ];
    for (response, status, code) in cases {
        expect_error(response, status, code).await?;
    }
    assert_eq!(room.hub().latest(), latest, "nothing was published");
    assert_eq!(
        post(&app, &alice.token, "x".repeat(2000)).await?.status(),
        202
    );

    let long = "n".repeat(33);
    for (name, ok) in [
        ("", false),
        ("   ", false),
        (long.as_str(), false),
        ("bad\u{7}bell", false),
        ("new\nline", false),
        ("evil\u{202e}name", false),
        ("isolate\u{2066}x", false),
        ("Zoë 🦀", true),
        (&long[..32], true),
    ] {
        let url = format!("{}?name={}", app.url("/chat/events"), urlencode(name));
        let response = http().get(url).send().await?;
        if ok {
            assert_eq!(response.status(), 200, "{name:?}");
        } else {
            expect_error(response, 400, "invalid-name").await?;
        }
    }
    // No name and no known token: who is this?
    for headers in [
        vec![],
        vec![("cookie", format!("{COOKIE}=nope"))],
        vec![("authorization", "Bearer nope".to_owned())],
    ] {
        let mut request = http().get(app.url("/chat/events"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let anonymous = request.send().await?;
        expect_error(anonymous, 401, "unknown-token").await?;
    }
    Ok(())
}

#[tokio::test]
async fn posting_faster_than_the_rate_gets_429_with_retry_after() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let alice = join(&app, "alice").await?;
    let mut accepted = 0;
    let response = loop {
        let response = post(&app, &alice.token, format!("m{accepted}")).await?;
        if response.status() != 202 {
            break response;
        }
        accepted += 1;
        assert!(accepted < 40, "never limited");
    };
    assert_eq!(response.status(), 429);
    assert!(
        accepted >= 10,
        "a burst of 10 is allowed, limited after {accepted}"
    );
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error: Value = response.json().await?;
    assert_eq!(error["error"], "rate-limited");
    Ok(())
}

#[tokio::test]
async fn a_reconnect_gets_exactly_what_it_missed() -> TestResult {
    let args = ServerArgs {
        keep_alive: Duration::from_secs(1),
        ..ServerArgs::default()
    };
    let (app, room) = start(args).await?;
    let alice = join(&app, "alice").await?;
    let mut bob = join(&app, "bob").await?;
    assert_eq!(post(&app, &alice.token, "before").await?.status(), 202);
    let (last_seen, _) = next_of(&mut bob.conn, "message").await?;
    let (bob_id, bob_token) = (bob.id.clone(), bob.token.clone());
    drop(bob);
    wait_until(WAIT, "bob to leave", || async {
        Ok(room.online().await?.iter().all(|u| u.id != bob_id))
    })
    .await?;
    for text in ["one", "two", "three"] {
        assert_eq!(post(&app, &alice.token, text).await?.status(), 202);
    }
    let mut back = rejoin(&app, &bob_token, &[("last-event-id", &last_seen)]).await?;
    assert_eq!(back.id, bob_id, "the cookie keeps the identity");
    let mut missed = Vec::new();
    for _ in 0..5 {
        let event = back.conn.next_event().await?;
        let data: Value = json_data(&event)?;
        let what = match event.event.as_deref() {
            Some("message") => data["text"].as_str().unwrap_or_default().to_owned(),
            Some(kind) => format!(
                "{kind}:{}",
                data["user"]["name"].as_str().unwrap_or_default()
            ),
            None => "?".into(),
        };
        missed.push(what);
    }
    assert_eq!(missed, ["leave:bob", "one", "two", "three", "join:bob"]);
    Ok(())
}

#[tokio::test]
async fn a_member_reconnecting_over_and_over_pushes_no_message_out_of_the_history() -> TestResult {
    let args = ServerArgs {
        keep_alive: Duration::from_secs(1),
        ..ServerArgs::default()
    };
    let streams = Streams::from_args(&args);
    // Room for six events: the churn below makes ten joins and leaves.
    let limits = HistoryLimits {
        max_events: 6,
        ..HistoryLimits::default()
    };
    let room = ChatRoom::in_memory(Hub::new(limits), roomy());
    let app = TestApp::serve(args, streams, sse_chat::router(&room)).await?;
    let alice = join(&app, "alice").await?;
    let mut bob = join(&app, "bob").await?;
    assert_eq!(post(&app, &alice.token, "one").await?.status(), 202);
    let (seen, _) = next_of(&mut bob.conn, "message").await?;
    assert_eq!(post(&app, &alice.token, "two").await?.status(), 202);
    let bob_token = bob.token.clone();
    drop(bob);
    // A known member's reconnects are not joins of new members: no join limit applies.
    let mallory = join(&app, "mallory").await?;
    let (mallory_id, mallory_token) = (mallory.id.clone(), mallory.token.clone());
    drop(mallory);
    for _ in 0..5 {
        wait_until(WAIT, "mallory to leave", || async {
            Ok(room.online().await?.iter().all(|u| u.id != mallory_id))
        })
        .await?;
        drop(rejoin(&app, &mallory_token, &[]).await?);
    }
    let mut back = rejoin(&app, &bob_token, &[("last-event-id", &seen)]).await?;
    loop {
        let event = back.conn.next_event().await?;
        match event.event.as_deref() {
            Some("reset") => return Err(format!("reset: {:?}", event.data).into()),
            Some("message") => {
                assert_eq!(json_data(&event)?["text"], "two");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_new_member_gets_the_last_50_messages() -> TestResult {
    let (app, room) = start(ServerArgs::default()).await?;
    let alice = join(&app, "alice").await?;
    for i in 0..60 {
        // Straight into the room's history: the rate limit is not under test here.
        room.hub().publish(sse_chat::ChatEvent::Message {
            from: sse_chat::User {
                id: alice.id.clone(),
                name: "alice".into(),
            },
            text: format!("m{i}"),
            at: "2026-01-01T00:00:00Z".into(),
        })?;
    }
    let mut carol = join(&app, "carol").await?;
    let mut texts = Vec::new();
    while texts.len() < 50 {
        let (_, message) = next_of(&mut carol.conn, "message").await?;
        texts.push(message["text"].as_str().unwrap_or_default().to_owned());
    }
    let expected: Vec<String> = (10..60).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected);
    Ok(())
}

/// A `POST /chat/messages` carrying the member cookie instead of a bearer header.
async fn post_with_cookie(app: &TestApp, token: &str, text: &str) -> TestResult<reqwest::Response> {
    Ok(http()
        .post(app.url("/chat/messages"))
        .header("cookie", format!("{COOKIE}={token}"))
        .body(text.to_owned())
        .send()
        .await?)
}

#[tokio::test]
async fn the_token_travels_in_an_httponly_cookie_and_never_in_a_url() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let url = format!("{}?name=alice", app.url("/chat/events"));
    let mut alice = open(&url, &[]).await?;
    let set_cookie = set_cookie(&alice.conn.headers)?;
    assert!(
        set_cookie.starts_with(&format!("{COOKIE}={};", alice.token)),
        "{set_cookie}"
    );
    let lower = set_cookie.to_ascii_lowercase();
    for attribute in ["httponly", "samesite=strict", "path=/", "max-age=86400"] {
        assert!(
            lower.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(!lower.contains("secure"), "plain HTTP: {set_cookie}");

    // The cookie posts as alice, and so does the bearer header (for other clients).
    assert_eq!(
        post_with_cookie(&app, &alice.token, "by cookie")
            .await?
            .status(),
        202
    );
    assert_eq!(post(&app, &alice.token, "by bearer").await?.status(), 202);
    for text in ["by cookie", "by bearer"] {
        let (_, message) = next_of(&mut alice.conn, "message").await?;
        assert_eq!(message["text"], text);
        assert_eq!(message["from"]["id"], alice.id);
    }

    // A token in the URL stands for nobody: a post is 401, a stream without a name is
    // 401, and with a name it is a new member, not alice.
    let in_url = http()
        .post(app.url(&format!("/chat/messages?token={}", alice.token)))
        .body("from the URL")
        .send()
        .await?;
    assert_eq!(in_url.status(), 401);
    let stream = http()
        .get(app.url(&format!("/chat/events?token={}", alice.token)))
        .send()
        .await?;
    assert_eq!(stream.status(), 401);
    let url = format!(
        "{}?name=alice&token={}",
        app.url("/chat/events"),
        alice.token
    );
    let other = open(&url, &[]).await?;
    assert_ne!(other.id, alice.id, "a token in the URL kept the identity");
    assert_ne!(other.token, alice.token);
    Ok(())
}

#[tokio::test]
async fn a_join_flood_from_one_address_gets_429_and_another_address_still_joins() -> TestResult {
    // 127.0.0.1 is a trusted proxy here, so X-Forwarded-For names the client.
    let args = ServerArgs {
        trusted_proxies: vec!["127.0.0.1".parse()?],
        ..ServerArgs::default()
    };
    let limits = RoomLimits::default();
    let (app, room) = start_with(args, limits).await?;
    let from = |ip: &'static str| ("x-forwarded-for", ip);
    let mut joined = Vec::new();
    let mut refused = 0;
    for i in 0..50 {
        let url = format!("{}?name=flood{i}", app.url("/chat/events"));
        let conn = SseConnection::open(&url, &[from("203.0.113.7")]).await?;
        if conn.status == 429 {
            let wait = conn
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok());
            assert!(
                wait.is_some_and(|w| w.parse::<u64>().is_ok_and(|w| (1..=7).contains(&w))),
                "{wait:?}"
            );
            refused += 1;
        } else {
            assert_eq!(conn.status, 200);
            joined.push(conn);
        }
    }
    let burst = usize::try_from(limits.join_burst)?;
    assert_eq!(joined.len(), burst, "the burst, then nothing more");
    assert_eq!(refused, 50 - burst);
    let error: Value = http()
        .get(format!("{}?name=late", app.url("/chat/events")))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(error["error"], "rate-limited");
    // Another address is not held back, and a reconnect is not a join.
    let other = open(
        &format!("{}?name=neighbour", app.url("/chat/events")),
        &[from("198.51.100.1")],
    )
    .await?;
    let again = rejoin(&app, &other.token, &[from("203.0.113.7")]).await?;
    assert_eq!(again.id, other.id);
    assert_eq!(
        room.members_remembered(),
        Some(burst + 1),
        "the member table stays bounded"
    );
    Ok(())
}

#[tokio::test]
async fn a_silent_member_is_forgotten_soon_after_leaving_and_a_poster_is_not() -> TestResult {
    let limits = RoomLimits {
        forget_silent_after: Duration::from_millis(300),
        ..roomy()
    };
    let (app, room) = start_with(ServerArgs::default(), limits).await?;
    let silent = join(&app, "silent").await?;
    let poster = join(&app, "poster").await?;
    assert_eq!(post(&app, &poster.token, "hello").await?.status(), 202);
    let (silent_token, poster_token) = (silent.token.clone(), poster.token.clone());
    assert_eq!(room.members_remembered(), Some(2));
    drop(silent);
    drop(poster);
    wait_until(WAIT, "the silent member to be forgotten", || async {
        Ok(room.members_remembered() == Some(1))
    })
    .await?;
    assert_eq!(post(&app, &silent_token, "still me?").await?.status(), 401);
    assert_eq!(post(&app, &poster_token, "still me").await?.status(), 202);
    Ok(())
}

#[tokio::test]
async fn posts_are_limited_per_address_across_identities() -> TestResult {
    let limits = RoomLimits {
        ip_post_burst: 5,
        ip_posts_per_second: 1,
        ..roomy()
    };
    let (app, _room) = start_with(ServerArgs::default(), limits).await?;
    // Three identities from one address, each well within its own allowance of 10.
    let mut members = Vec::new();
    for name in ["a", "b", "c"] {
        members.push(join(&app, name).await?);
    }
    let mut statuses = Vec::new();
    for member in &members {
        for n in 0..2 {
            statuses.push(
                post(&app, &member.token, format!("{n}"))
                    .await?
                    .status()
                    .as_u16(),
            );
        }
    }
    assert_eq!(
        statuses,
        [202, 202, 202, 202, 202, 429],
        "five from the address, then 429"
    );
    Ok(())
}

#[tokio::test]
async fn a_members_token_never_reaches_another_members_stream() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let mut bob = join(&app, "bob").await?;
    let alice = join(&app, "alice").await?;
    // A second tab of alice's (her cookie) and a message: more events about her.
    let mut tab = rejoin(&app, &alice.token, &[]).await?;
    assert_eq!(post(&app, &alice.token, "hello").await?.status(), 202);
    next_of(&mut tab.conn, "message").await?;
    // Every byte bob's stream carried up to alice's message: her join and the message.
    let mut seen = Vec::new();
    loop {
        let event = bob.conn.next().await?;
        let done = event.event.as_deref() == Some("message");
        seen.push(format!("{event:?}"));
        if done {
            break;
        }
    }
    let seen = seen.join("\n");
    assert!(seen.contains("alice"), "bob saw alice: {seen}");
    assert!(
        !seen.contains(&alice.token),
        "alice's token in bob's stream: {seen}"
    );
    // Her own tab was welcomed with it: the token is in the room, just not in bob's bytes.
    assert_eq!(tab.token, alice.token);
    Ok(())
}

/// A stale or planted member cookie does not shadow a valid bearer token (the rule
/// notify follows too): the bearer is the credential when there is one.
#[tokio::test]
async fn a_bad_cookie_does_not_shadow_a_valid_bearer() -> TestResult {
    let (app, _room) = start(ServerArgs::default()).await?;
    let mut alice = join(&app, "alice").await?;
    let response = http()
        .post(app.url("/chat/messages"))
        .header("cookie", format!("{COOKIE}=garbage"))
        .header("authorization", format!("Bearer {}", alice.token))
        .body("bearer wins")
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    let (_, message) = next_of(&mut alice.conn, "message").await?;
    assert_eq!(message["from"]["id"], alice.id);
    // A reconnect the same way is alice, not a new member.
    let bearer = format!("Bearer {}", alice.token);
    let again = rejoin(&app, "garbage", &[("authorization", &bearer)]).await?;
    assert_eq!(again.id, alice.id);
    Ok(())
}

/// Forgotten members are freed when they are forgotten, not when the table reaches its
/// cap: 50 silent members join and leave, and the table comes back to the one member
/// who posted; that member's post allowance is freed once it has refilled.
#[tokio::test]
async fn forgotten_members_and_refilled_allowances_are_freed_without_waiting_for_the_cap()
-> TestResult {
    let limits = RoomLimits {
        forget_silent_after: Duration::from_millis(200),
        ..roomy()
    };
    let (app, room) = start_with(ServerArgs::default(), limits).await?;
    let poster = join(&app, "poster").await?;
    assert_eq!(post(&app, &poster.token, "hello").await?.status(), 202);
    assert_eq!(room.post_allowances(), 1);
    let silent = try_join_all((0..50).map(|i| {
        let app = &app;
        async move { join(app, &format!("silent{i}")).await }
    }))
    .await?;
    assert_eq!(room.members_remembered(), Some(51));
    drop(silent);
    wait_until(WAIT, "the silent members' memory to be freed", || async {
        Ok(room.members_remembered() == Some(1) && room.post_allowances() == 0)
    })
    .await?;
    drop(poster);
    Ok(())
}
