//! sse-resume over real TCP, read by an independent SSE parser (`sse-stream`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use salvo::Router;
use sse_resume::ResumeEvent;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::post_limit::PostLimit;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, expect_error, http, json_data, send_raw, wait_until, within,
};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs};
use tokio::io::AsyncReadExt;

/// The app with a hub the test can publish into directly (no producer task: the test
/// decides what is published).
async fn start(limits: HistoryLimits, args: ServerArgs) -> TestResult<(TestApp, Hub<ResumeEvent>)> {
    let mut hub = None;
    let app = TestApp::start(args, |streams| {
        let created = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
        hub = Some(created.clone());
        // As `main.rs` stacks it: the notes each client address may post (10, then 2/s).
        let notes = PostLimit::per_client(10, 2, "notes");
        Router::new()
            .hoop(notes)
            .push(sse_resume::router(&Publisher::in_memory(created)))
    })
    .await?;
    Ok((app, hub.ok_or("no hub")?))
}

fn limits(max_events: usize) -> HistoryLimits {
    HistoryLimits {
        max_events,
        max_bytes: 64 * 1024 * 1024,
    }
}

fn note(hub: &Hub<ResumeEvent>, text: &str) -> TestResult<String> {
    Ok(hub.publish(ResumeEvent::Note(text.into()))?.to_string())
}

/// The ids of the next events up to and including the `live` marker.
async fn replay(conn: &mut SseConnection) -> TestResult<Vec<String>> {
    let mut ids = Vec::new();
    loop {
        let event = conn.next_event().await?;
        if event.event.as_deref() == Some("live") {
            return Ok(ids);
        }
        ids.push(event.id.ok_or("an event without an id")?);
    }
}

/// The id of the hub's `n`-th event: `RUN-n` (ids name the process's run).
fn id(hub: &Hub<ResumeEvent>, n: u64) -> String {
    format!("{}-{n}", hub.run().unwrap_or(0))
}

fn ids(hub: &Hub<ResumeEvent>, range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|n| id(hub, n)).collect()
}

/// The sequence number of an id `RUN-N`.
fn seq(id: &str) -> TestResult<u64> {
    Ok(id.rsplit('-').next().unwrap_or(id).parse()?)
}

#[tokio::test]
async fn resume_by_header_and_by_query_then_live() -> TestResult {
    let (app, hub) = start(limits(100), ServerArgs::default()).await?;
    for i in 0..10 {
        note(&hub, &format!("n{i}"))?;
    }
    let mut header =
        SseConnection::open(&app.url("/events"), &[("last-event-id", &id(&hub, 3))]).await?;
    assert_eq!(replay(&mut header).await?, ids(&hub, 4..=10));
    let query = format!("/events?lastEventId={}", id(&hub, 8));
    let mut query = SseConnection::open(&app.url(&query), &[]).await?;
    assert_eq!(replay(&mut query).await?, ids(&hub, 9..=10));
    let mut fresh = SseConnection::open(&app.url("/events"), &[]).await?;
    assert_eq!(
        replay(&mut fresh).await?,
        Vec::<String>::new(),
        "no id: live only"
    );

    note(&hub, "live one")?;
    for conn in [&mut header, &mut query, &mut fresh] {
        let event = conn.next_event().await?;
        assert_eq!(event.id, Some(id(&hub, 11)));
        assert_eq!(event.data.as_deref(), Some("live one"));
    }
    Ok(())
}

#[tokio::test]
async fn ids_that_cannot_be_honoured_get_their_reset_reason() -> TestResult {
    let (app, hub) = start(limits(5), ServerArgs::default()).await?;
    for i in 0..20 {
        note(&hub, &format!("n{i}"))?;
    }
    let huge = "7".repeat(6_000); // within the 8 KiB request head (--max-header-bytes)
    let (gap, unknown) = (id(&hub, 2), id(&hub, 999));
    let (oldest, latest) = (id(&hub, 16), id(&hub, 20));
    for (sent, reason) in [
        (gap.as_str(), "history-gap"),
        (unknown.as_str(), "unknown-id"),
        ("17", "unknown-id"), // an id of another run (here, of none)
        ("abc", "invalid-id"),
        ("-1", "invalid-id"),
        ("+5", "invalid-id"),
        (huge.as_str(), "invalid-id"),
    ] {
        let mut conn = SseConnection::open(&app.url("/events"), &[("last-event-id", sent)]).await?;
        assert_eq!(conn.status, 200, "never an error status");
        let reset = conn.next_event().await?;
        assert_eq!(reset.event.as_deref(), Some("reset"));
        let data: serde_json::Value = json_data(&reset)?;
        assert_eq!(data["reason"], reason, "for {sent:.20}");
        assert_eq!(data["oldest"], oldest);
        assert_eq!(data["latest"], latest);
        assert_eq!(replay(&mut conn).await?, Vec::<String>::new(), "then live");
    }
    // An id equal to the latest is fine: nothing to replay.
    let mut conn = SseConnection::open(&app.url("/events"), &[("last-event-id", &latest)]).await?;
    assert_eq!(replay(&mut conn).await?, Vec::<String>::new());
    Ok(())
}

/// `Last-Event-ID: 0` means "before everything": it replays the whole history while
/// the history still holds the first event, and once older events have fallen off it
/// is an id older than the history like any other (`reset`, `history-gap`, then live).
#[tokio::test]
async fn an_id_of_0_replays_the_history_until_it_has_wrapped() -> TestResult {
    let (app, hub) = start(limits(5), ServerArgs::default()).await?;
    for i in 0..5 {
        note(&hub, &format!("n{i}"))?;
    }
    let mut whole = SseConnection::open(&app.url("/events"), &[("last-event-id", "0")]).await?;
    assert_eq!(replay(&mut whole).await?, ids(&hub, 1..=5));
    note(&hub, "the first falls off")?;
    let mut wrapped = SseConnection::open(&app.url("/events"), &[("last-event-id", "0")]).await?;
    let reset = wrapped.next_event().await?;
    assert_eq!(reset.event.as_deref(), Some("reset"));
    assert_eq!(json_data(&reset)?["reason"], "history-gap");
    assert_eq!(
        replay(&mut wrapped).await?,
        Vec::<String>::new(),
        "then live"
    );
    Ok(())
}

#[tokio::test]
async fn a_posted_note_arrives_verbatim_as_one_event() -> TestResult {
    let (app, hub) = start(limits(100), ServerArgs::default()).await?;
    let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
    replay(&mut conn).await?;
    let text = "line\r\nevent: forged\n\nid: 99\rdata: x\n\n\nretry: 1\n: comment";
    let response = http().post(app.url("/events")).body(text).send().await?;
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await?;
    assert_eq!(created["id"], id(&hub, 1));

    let event = conn.next_event().await?;
    assert_eq!(event.event.as_deref(), Some("note"));
    assert_eq!(event.id, Some(id(&hub, 1)));
    // Line ends come back as LF, as the SSE grammar defines; nothing else changes.
    assert_eq!(
        event.data.as_deref(),
        Some(text.replace("\r\n", "\n").replace('\r', "\n").as_str())
    );
    // And nothing else arrived: the next event is the next note.
    http().post(app.url("/events")).body("next").send().await?;
    assert_eq!(conn.next_event().await?.data.as_deref(), Some("next"));
    Ok(())
}

#[tokio::test]
async fn bad_notes_are_refused_and_publish_nothing() -> TestResult {
    let (app, hub) = start(limits(100), ServerArgs::default()).await?;
    let too_long = "a".repeat(sse_resume::MAX_NOTE_BYTES + 1);
    let cases: [(Vec<u8>, u16, &str); 5] = [
        (Vec::new(), 400, "empty-body"),
        (vec![0xff, 0xfe, b'a'], 400, "invalid-utf8"),
        (too_long.into_bytes(), 413, "payload-too-large"),
        // Only white space was published and shown as a blank note (chat refuses it).
        (b"   ".to_vec(), 400, "blank-note"),
        (b" \n\t\r\n ".to_vec(), 400, "blank-note"),
    ];
    for (body, status, code) in cases {
        let response = http().post(app.url("/events")).body(body).send().await?;
        expect_error(response, status, code).await?;
    }
    assert_eq!(hub.latest(), None, "nothing was published");
    // The longest allowed note is accepted.
    let max = "b".repeat(sse_resume::MAX_NOTE_BYTES);
    assert_eq!(
        http()
            .post(app.url("/events"))
            .body(max)
            .send()
            .await?
            .status(),
        201
    );
    Ok(())
}

/// A publisher runs flat out while a client drops and resumes again and again: it must
/// end with every event exactly once, in order.
#[tokio::test]
async fn reconnects_racing_publishes_lose_and_repeat_nothing() -> TestResult {
    const TOTAL: u64 = 3_000;
    let (app, hub) = start(limits(TOTAL as usize), ServerArgs::default()).await?;
    let publisher = tokio::spawn({
        let hub = hub.clone();
        async move {
            for i in 0..TOTAL {
                if hub.publish(ResumeEvent::Note(format!("n{i}"))).is_err() {
                    return;
                }
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    });
    let mut seen: Vec<u64> = Vec::new();
    let mut reconnects = 0;
    within(Duration::from_secs(60), "every event", async {
        while seen.last() != Some(&TOTAL) {
            let last = seen.last().map_or("0".to_owned(), |&n| id(&hub, n));
            let mut conn =
                SseConnection::open(&app.url("/events"), &[("last-event-id", &last)]).await?;
            reconnects += 1;
            // Read a few events, then drop the connection mid-stream.
            for _ in 0..(37 + reconnects % 50) {
                let event = conn.next_event().await?;
                if let Some(id) = event.id {
                    seen.push(seq(&id)?);
                    if seen.last() == Some(&TOTAL) {
                        break;
                    }
                }
            }
        }
        TestResult::Ok(())
    })
    .await??;
    publisher.await?;
    assert!(reconnects > 10, "{reconnects} reconnects");
    assert!(
        seen == (1..=TOTAL).collect::<Vec<_>>(),
        "saw {} events, not 1..={TOTAL} once each",
        seen.len()
    );
    Ok(())
}

/// One client stops reading while 100,000 events are published: the history stays
/// within its bounds, the other clients get every event, the slow one is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_reset_and_holds_no_one_back() -> TestResult {
    const TOTAL: u64 = 100_000;
    const HISTORY: usize = 5_000;
    let (app, hub) = start(limits(HISTORY), ServerArgs::default()).await?;

    // The slow client: asks for the stream, then reads nothing.
    let mut slow = send_raw(
        app.server.local_addr(),
        b"GET /events HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\r\n",
    )
    .await?;

    // Two fast clients, each reporting how far it has read.
    let mut fast = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..2 {
        let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
        replay(&mut conn).await?;
        let read_up_to = Arc::new(AtomicU64::new(0));
        progress.push(Arc::clone(&read_up_to));
        fast.push(tokio::spawn(async move {
            let mut expected = 1u64;
            while expected <= TOTAL {
                let event = conn.next_event().await?;
                let id = seq(&event
                    .id
                    .clone()
                    .ok_or_else(|| format!("not an event: {event:?}"))?)?;
                if id != expected {
                    return Err(format!("expected {expected}, got {id}").into());
                }
                read_up_to.store(id, Ordering::Relaxed);
                expected += 1;
            }
            TestResult::Ok(expected - 1)
        }));
    }

    // 100,000 events of ~250 bytes: 25 MB, far more than the socket buffers hold.
    // The publisher waits for the fast clients (so they never fall off the history),
    // never for the slow one.
    let text = "x".repeat(200);
    let mut max_bytes = 0;
    for i in 1..=TOTAL {
        hub.publish(ResumeEvent::Note(text.clone()))?;
        if i % 500 == 0 {
            let (events, bytes) = (
                app.metric("sse_history_events").await? as usize,
                app.metric("sse_history_bytes").await? as usize,
            );
            assert!(events <= HISTORY, "{events} events retained");
            max_bytes = max_bytes.max(bytes);
            let behind = i.saturating_sub(HISTORY as u64 / 2);
            wait_until(
                Duration::from_secs(30),
                "the fast clients to keep up",
                || async { Ok(progress.iter().all(|p| p.load(Ordering::Relaxed) >= behind)) },
            )
            .await?;
        }
    }
    for client in fast {
        assert_eq!(
            within(Duration::from_secs(60), "a fast client", client).await???,
            TOTAL
        );
    }
    assert!(max_bytes <= HISTORY * 300, "history held {max_bytes} bytes");

    // Now the slow client reads: somewhere in it is a reset for lagging.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    within(Duration::from_secs(60), "the slow client's reset", async {
        while !String::from_utf8_lossy(&raw[raw.len().saturating_sub(1 << 17)..])
            .contains("\"reason\":\"lagged\"")
        {
            let n = slow.read(&mut buf).await?;
            if n == 0 {
                return Err("the slow stream closed without a reset".into());
            }
            raw.extend_from_slice(&buf[..n]);
            // Keep only the tail: the test itself must not hold 25 MB.
            if raw.len() > 1 << 20 {
                raw.drain(..raw.len() - (1 << 18));
            }
        }
        TestResult::Ok(())
    })
    .await??;
    // Only the slow client fell behind, once: after its reset it reads from the newest.
    assert_eq!(app.metric("sse_streams_lagged_total").await?, 1.0);
    Ok(())
}

#[tokio::test]
async fn a_note_flood_from_one_address_gets_429_and_others_still_post() -> TestResult {
    // Behind a trusted proxy, so the test can speak for two client addresses.
    let args = ServerArgs {
        trusted_proxies: vec!["127.0.0.1".parse()?],
        ..ServerArgs::default()
    };
    let (app, _) = start(HistoryLimits::default(), args).await?;
    let post = |client: &'static str| {
        http()
            .post(app.url("/events"))
            .header("x-forwarded-for", client)
            .body("x".repeat(16 * 1024))
            .send()
    };
    let began = std::time::Instant::now();
    let (mut created, mut refused) = (0u64, 0u64);
    for _ in 0..300 {
        let response = within(Duration::from_secs(10), "a note", post("203.0.113.7")).await??;
        match response.status().as_u16() {
            201 => created += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                let error: serde_json::Value = response.json().await?;
                assert_eq!(error["error"], "rate-limited");
                refused += 1;
            }
            other => return Err(format!("unexpected status {other}").into()),
        }
    }
    // The burst of 10, plus 2 a second for as long as the flood took.
    let allowed = 10 + 2 * (began.elapsed().as_secs() + 1);
    assert!(
        created <= allowed,
        "{created} notes accepted, at most {allowed} allowed"
    );
    assert_eq!(created + refused, 300);
    assert_eq!(
        app.metric("sse_history_events").await? as u64,
        created,
        "refused notes never reach the history"
    );

    let other = within(
        Duration::from_secs(10),
        "another client's note",
        post("203.0.113.8"),
    )
    .await??;
    assert_eq!(other.status(), 201, "another address has its own allowance");
    Ok(())
}

#[tokio::test]
async fn each_stream_gets_its_own_retry_and_zero_jitter_is_exact() -> TestResult {
    for (jitter, expect_spread) in [(25, true), (0, false)] {
        let args = ServerArgs {
            retry_jitter_pct: jitter,
            ..ServerArgs::default()
        };
        let (app, _hub) = start(limits(10), args).await?;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..30 {
            let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
            let retry = conn.next().await?.retry.ok_or("no retry first")?;
            assert!((2250..=3750).contains(&retry), "{retry}");
            seen.insert(retry);
        }
        if expect_spread {
            assert!(seen.len() >= 20, "too few distinct values: {seen:?}");
        } else {
            assert_eq!(seen.into_iter().collect::<Vec<_>>(), [3000]);
        }
    }
    Ok(())
}
