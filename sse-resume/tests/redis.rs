//! sse-resume with the Redis backend: several instances, one audience. Each test starts
//! its own `redis-server` on a free port.

use std::time::Duration;

use sse_resume::{ResumeEvent, Tick};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{
    AppProcess, Fault, FaultyProxy, RedisServer, SseConnection, TestApp, TestResult, WAIT,
    expect_backend_down, http, json_data, refused_at_start, wait_until, within,
};
use sse_shared::{
    Held, HistoryLimits, Hub, Producer, PublishError, Publisher, ServerArgs, Streams,
};

const KEY: &str = "sse-resume:events";

/// An instance in this process, on the shared Redis.
async fn instance(redis: &RedisServer) -> TestResult<(TestApp, Publisher<ResumeEvent>)> {
    instance_on(&redis.url()).await
}

/// An instance in this process, on the Redis at `url` (the shared one, or a proxy to it).
async fn instance_on(url: &str) -> TestResult<(TestApp, Publisher<ResumeEvent>)> {
    let (app, log, _) = with_producer(url, Duration::from_secs(30)).await?;
    Ok((app, log))
}

/// An instance in this process, and its producer, whose lease lasts `ttl`.
async fn with_producer(
    url: &str,
    ttl: Duration,
) -> TestResult<(TestApp, Publisher<ResumeEvent>, Producer<ResumeEvent>)> {
    let args = ServerArgs::default();
    let streams = Streams::from_args(&args);
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let token = streams.shutdown_token();
    let (log, producer) =
        sse_redis::publisher_and_producer(Some(url), KEY, hub, token, LEASE_KEY, ttl).await?;
    let router = sse_resume::router(&log);
    Ok((TestApp::serve(args, streams, router).await?, log, producer))
}

async fn post(app_url: &str, text: &str) -> TestResult<String> {
    let response = http()
        .post(format!("{app_url}/events"))
        .body(text.to_owned())
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if status != 201 {
        return Err(format!("POST answered {status}: {body}").into());
    }
    Ok(body["id"].as_str().ok_or("no id")?.to_owned())
}

/// The next note's (id, text), skipping ticks and markers.
async fn next_note(conn: &mut SseConnection) -> TestResult<(String, String)> {
    loop {
        let event = conn.next_event().await?;
        match event.event.as_deref() {
            Some("note") => return Ok((event.id.ok_or("no id")?, event.data.unwrap_or_default())),
            Some("reset") => return Err(format!("unexpected reset: {:?}", event.data).into()),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_note_posted_on_one_instance_reaches_clients_of_the_other() -> TestResult {
    let redis = RedisServer::start().await?;
    let (a, _) = instance(&redis).await?;
    let (b, _) = instance(&redis).await?;
    let mut on_b = SseConnection::open(&b.url("/events"), &[]).await?;
    let id = post(&a.url(""), "from A").await?;
    assert!(id.contains('-'), "Redis stream ids: {id}");
    assert_eq!(next_note(&mut on_b).await?, (id, "from A".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_client_resumes_on_another_instance_with_an_id_from_the_first() -> TestResult {
    let redis = RedisServer::start().await?;
    let (a, _) = instance(&redis).await?;
    let (b, log_b) = instance(&redis).await?;
    let mut on_a = SseConnection::open(&a.url("/events"), &[]).await?;
    post(&a.url(""), "one").await?;
    let (last, _) = next_note(&mut on_a).await?;
    drop(on_a);
    let mut missed = Vec::new();
    for text in ["two", "three"] {
        missed.push(post(&a.url(""), text).await?);
    }
    // B has read them from Redis by the time its hub holds the last one.
    let newest: sse_shared::EventId = missed[1].parse()?;
    wait_until(WAIT, "B to read the stream", || async {
        Ok(log_b.hub().latest() >= Some(newest))
    })
    .await?;
    let mut on_b = SseConnection::open(&b.url("/events"), &[("last-event-id", &last)]).await?;
    assert_eq!(
        next_note(&mut on_b).await?,
        (missed[0].clone(), "two".to_owned())
    );
    assert_eq!(
        next_note(&mut on_b).await?,
        (missed[1].clone(), "three".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn publishing_fails_with_503_while_redis_is_down_and_nothing_is_lost_after() -> TestResult {
    let mut redis = RedisServer::start().await?;
    let (a, _) = instance(&redis).await?;
    let mut client = SseConnection::open(&a.url("/events"), &[]).await?;
    post(&a.url(""), "before").await?;
    assert_eq!(next_note(&mut client).await?.1, "before");

    redis.stop().await?;
    let response = http()
        .post(a.url("/events"))
        .body("while down")
        .send()
        .await?;
    expect_backend_down(response, &a.server.url()).await?;

    redis.restart().await?;
    // The publisher reconnects on its own; retry until Redis takes writes again.
    let base = a.url("");
    let after = within(
        Duration::from_secs(15),
        "a publish to succeed again",
        async {
            loop {
                if let Ok(id) = post(&base, "after").await {
                    return id;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await?;
    let after = Some(after);
    let (id, text) = next_note(&mut client).await?;
    assert_eq!(
        (Some(id), text.as_str()),
        (after, "after"),
        "the stream goes on, nothing twice"
    );
    wait_until(WAIT, "the backend_up gauge to recover", || async {
        Ok(a.metric("sse_backend_up").await? == 1.0)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn one_producer_across_instances_and_a_takeover_when_it_dies() -> TestResult {
    let redis = RedisServer::start().await?;
    let ttl = Duration::from_secs(1);
    let (a, _, producer_a) = with_producer(&redis.url(), ttl).await?;
    let (_b, _, producer_b) = with_producer(&redis.url(), ttl).await?;
    let every = Duration::from_millis(50);
    let producer_a = tokio::spawn(sse_resume::produce_ticks(
        producer_a,
        every,
        a.streams.shutdown_token(),
    ));
    let mut on_a = SseConnection::open(&a.url("/events"), &[]).await?;
    let mut seqs = Vec::new();
    async fn next_seq(conn: &mut SseConnection) -> TestResult<u64> {
        loop {
            let event = conn.next_event().await?;
            if event.event.as_deref() == Some("tick") {
                let data: serde_json::Value = json_data(&event)?;
                return data["seq"].as_u64().ok_or_else(|| "no seq".into());
            }
        }
    }
    for _ in 0..5 {
        seqs.push(next_seq(&mut on_a).await?);
    }
    // B's producer starts while A holds the lease: it must not tick.
    let b_token = tokio_util::sync::CancellationToken::new();
    let producer_b = tokio::spawn(sse_resume::produce_ticks(
        producer_b,
        every,
        b_token.clone(),
    ));
    for _ in 0..10 {
        seqs.push(next_seq(&mut on_a).await?);
    }
    // A dies without releasing: B takes over within the lease's ttl, going on from A's last.
    producer_a.abort();
    for _ in 0..10 {
        seqs.push(
            within(
                Duration::from_secs(5),
                "a tick after the takeover",
                next_seq(&mut on_a),
            )
            .await??,
        );
    }
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "one producer at a time, no gap, no repeat");
    b_token.cancel();
    producer_b.await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_instance_loses_its_clients_nothing() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--interval-ms", "100000"];
    let mut a = AppProcess::spawn(env!("CARGO_BIN_EXE_sse-resume"), &args).await?;
    let b = AppProcess::spawn(env!("CARGO_BIN_EXE_sse-resume"), &args).await?;
    let mut client = SseConnection::open(&format!("{}/events", a.url()), &[]).await?;
    let mut sent = Vec::new();
    let mut seen = Vec::new();
    for i in 0..5 {
        sent.push(post(b.url(), &format!("n{i}")).await?);
        seen.push(next_note(&mut client).await?.0);
    }
    a.kill().await?;
    // Published while the client is cut off.
    for i in 5..10 {
        sent.push(post(b.url(), &format!("n{i}")).await?);
    }
    let last = seen.last().cloned().unwrap_or_default();
    let mut back =
        SseConnection::open(&format!("{}/events", b.url()), &[("last-event-id", &last)]).await?;
    for _ in 5..10 {
        seen.push(next_note(&mut back).await?.0);
    }
    assert_eq!(seen, sent);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_redis_at_start_is_a_clear_error() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let redis = format!("redis://127.0.0.1:{port}");
    let (_, stderr) =
        refused_at_start(env!("CARGO_BIN_EXE_sse-resume"), &["--redis", &redis]).await?;
    assert!(stderr.contains("cannot connect to Redis"), "{stderr}");
    Ok(())
}

/// A `--redis` that is not a URL is an option error (status 2, naming `--redis`), not
/// worded as a Redis that cannot be reached.
#[tokio::test]
async fn a_redis_url_that_does_not_parse_is_an_option_error() -> TestResult {
    for value in [
        "not-a-url",
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:notaport",
    ] {
        let args = ["--redis", value];
        let (code, stderr) = refused_at_start(env!("CARGO_BIN_EXE_sse-resume"), &args).await?;
        assert_eq!(code, Some(2), "--redis {value}: {stderr}");
        assert!(stderr.contains("--redis"), "--redis {value}: {stderr}");
        assert!(
            stderr.contains("not a Redis URL"),
            "--redis {value}: {stderr}"
        );
        assert!(
            !stderr.contains("cannot connect"),
            "--redis {value}: {stderr}"
        );
    }
    Ok(())
}

/// A history Redis could not cap a stream at is refused at start, naming `--history`,
/// not reported as a Redis connection failure.
#[tokio::test]
async fn a_history_past_its_bound_is_refused_before_redis_is_tried() -> TestResult {
    let redis = "redis://127.0.0.1:1";
    for value in ["9223372036854775808", "10000001", "0"] {
        let args = ["--redis", redis, "--history", value];
        let (code, stderr) = refused_at_start(env!("CARGO_BIN_EXE_sse-resume"), &args).await?;
        assert_eq!(code, Some(2), "--history {value}: {stderr}");
        assert!(stderr.contains("--history"), "--history {value}: {stderr}");
        assert!(!stderr.contains("Redis"), "--history {value}: {stderr}");
    }
    Ok(())
}

/// `cmdstat_xread`'s call count from `INFO commandstats`.
async fn xread_calls(conn: &mut redis::aio::MultiplexedConnection) -> TestResult<u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await?;
    let line = info
        .lines()
        .find(|l| l.starts_with("cmdstat_xread:"))
        .ok_or("no XREAD stats")?;
    let calls = line.split(['=', ',']).nth(1).ok_or("no calls field")?;
    Ok(calls.parse()?)
}

#[tokio::test]
async fn an_entry_no_reader_can_read_is_skipped_once_and_the_reader_stays_idle() -> TestResult {
    let redis = RedisServer::start().await?;
    let (app, _) = instance(&redis).await?;
    let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    // What a newer version (or a person) might append: an event this one cannot decode,
    // and an entry without the event field.
    for (field, value) in [("e", r#"{"SomeFutureEvent":{}}"#), ("other", "x")] {
        let _: String = redis::cmd("XADD")
            .arg(KEY)
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut direct)
            .await?;
    }
    // The reader moves past both: a note after them arrives.
    let id = post(&app.url(""), "after the garbage").await?;
    assert_eq!(
        next_note(&mut conn).await?,
        (id, "after the garbage".to_owned())
    );
    assert_eq!(app.metric("sse_backend_skipped_entries_total").await?, 2.0);
    assert_eq!(app.metric("sse_backend_errors_total").await?, 0.0);

    // And it stays idle: a blocking XREAD every 2 s, not a spin on the same entry.
    let before = xread_calls(&mut direct).await?;
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await; // a measuring window, not a synchronisation
    let calls = xread_calls(&mut direct).await? - before;
    assert!(calls <= 3, "{calls} XREADs in {window:?}: the reader spins");
    assert_eq!(
        app.metric("sse_backend_skipped_entries_total").await?,
        2.0,
        "skipped once"
    );
    Ok(())
}

#[tokio::test]
async fn an_event_too_large_for_the_history_is_refused_before_it_reaches_redis() -> TestResult {
    let redis = RedisServer::start().await?;
    let args = ServerArgs::default();
    let streams = Streams::from_args(&args);
    let limits = HistoryLimits {
        max_events: 100,
        max_bytes: 1024,
    };
    let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
    let log = sse_redis::publisher(Some(&redis.url()), KEY, hub, streams.shutdown_token()).await?;
    let refused = log.publish(ResumeEvent::Note("x".repeat(2000))).await;
    assert!(
        matches!(refused, Err(PublishError::TooLarge { .. })),
        "{refused:?}"
    );
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let len: u64 = redis::cmd("XLEN").arg(KEY).query_async(&mut direct).await?;
    assert_eq!(len, 0, "nothing reached the stream");
    Ok(())
}

/// The reset a stream opened with `last_id` starts with, if any: its reason.
async fn reset_reason(app: &TestApp, last_id: &str) -> TestResult<Option<String>> {
    let mut conn = SseConnection::open(&app.url("/events"), &[("last-event-id", last_id)]).await?;
    loop {
        let event = conn.next_event().await?;
        match event.event.as_deref() {
            Some("reset") => {
                let data: serde_json::Value = json_data(&event)?;
                return Ok(data["reason"].as_str().map(str::to_owned));
            }
            Some("note") | Some("live") => return Ok(None),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_new_instance_on_a_trimmed_stream_answers_history_gap() -> TestResult {
    let redis = RedisServer::start().await?;
    let (_a, log) = instance(&redis).await?;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            log.publish(ResumeEvent::Note(format!("n{i}")))
                .await?
                .to_string(),
        );
    }
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let _: u64 = redis::cmd("XTRIM")
        .arg(KEY)
        .arg("MAXLEN")
        .arg(5)
        .query_async(&mut direct)
        .await?;
    // A fresh instance loads what is left, and knows what is not.
    let (b, _) = instance(&redis).await?;
    assert_eq!(
        reset_reason(&b, &ids[2]).await?.as_deref(),
        Some("history-gap")
    );
    // The oldest id still there resumes as ever. (The newest trimmed one may be told
    // `history-gap` too: Redis does not say which id it trimmed last.)
    let mut conn = SseConnection::open(&b.url("/events"), &[("last-event-id", &ids[15])]).await?;
    assert_eq!(next_note(&mut conn).await?.0, ids[16]);
    Ok(())
}

#[tokio::test]
async fn entries_trimmed_during_a_reader_outage_end_in_a_reset() -> TestResult {
    let redis = RedisServer::start().await?;
    let (a, _) = instance(&redis).await?;
    let mut conn = SseConnection::open(&a.url("/events"), &[]).await?;
    let first = post(&a.url(""), "before").await?;
    assert_eq!(next_note(&mut conn).await?.0, first);
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    // Cut the reader's connection (the one blocked in XREAD) ...
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut direct)
        .await?;
    let reader = clients
        .lines()
        .find(|l| l.contains("cmd=xread"))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .ok_or("no reader connection")?
        .to_owned();
    // ... and, before its backoff (100 ms) is over, publish and trim in one transaction.
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&reader)
        .ignore();
    for i in 0..10 {
        pipe.cmd("XADD")
            .arg(KEY)
            .arg("*")
            .arg("e")
            .arg(format!(r#"{{"Note":"lost {i}"}}"#))
            .ignore();
    }
    pipe.cmd("XTRIM").arg(KEY).arg("MAXLEN").arg(2).ignore();
    let () = pipe.query_async(&mut direct).await?;
    // The subscriber hears that it missed something, then goes on live.
    let reset = loop {
        let event = conn.next_event().await?;
        match event.event.as_deref() {
            Some("reset") => break event,
            Some("note") if event.data.as_deref().is_some_and(|d| d.starts_with("lost")) => {
                // The two left after the trim may come first; the eight trimmed never do.
                continue;
            }
            other => return Err(format!("expected a reset, got {other:?}: {event:?}").into()),
        }
    };
    let data: serde_json::Value = json_data(&reset)?;
    assert_eq!(data["reason"], "lagged", "{data}");
    let after = post(&a.url(""), "after").await?;
    loop {
        let (id, text) = next_note(&mut conn).await?;
        if text == "after" {
            assert_eq!(id, after);
            break;
        }
        assert!(text.starts_with("lost"), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn a_sigterm_gives_the_producer_lease_back_before_the_process_exits() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    // No drain: the exit follows the signal at once, so a release left to a task
    // nobody waits for would be cut off.
    let args = [
        "--redis",
        url.as_str(),
        "--interval-ms",
        "50",
        "--drain-spread-ms",
        "0",
    ];
    let mut a =
        sse_shared::testing::AppProcess::spawn(env!("CARGO_BIN_EXE_sse-resume"), &args).await?;
    let mut direct = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut conn = SseConnection::open(&format!("{}/events", a.url()), &[]).await?;
    // Ticking: it holds the lease.
    while conn.next_event().await?.event.as_deref() != Some("tick") {}
    let held: u64 = redis::cmd("EXISTS")
        .arg("sse-resume:producer")
        .query_async(&mut direct)
        .await?;
    assert_eq!(held, 1, "the lease is held");
    a.stop().await?;
    let held: u64 = redis::cmd("EXISTS")
        .arg("sse-resume:producer")
        .query_async(&mut direct)
        .await?;
    assert_eq!(
        held, 0,
        "the lease outlived its holder (another instance waits out its TTL)"
    );
    Ok(())
}

/// The `seq` of every tick in the stream, oldest first.
async fn ticks_in_redis(conn: &mut redis::aio::MultiplexedConnection) -> TestResult<Vec<u64>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(KEY)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await?;
    let mut seqs = Vec::new();
    for entry in reply.ids {
        let json: String = entry.get("e").ok_or("no event field")?;
        if let ResumeEvent::Tick(tick) = serde_json::from_str(&json)? {
            seqs.push(tick.seq);
        }
    }
    Ok(seqs)
}

const LEASE_KEY: &str = "sse-resume:producer";

/// Appends a tick to the stream as another instance's producer would.
async fn add_tick(conn: &mut redis::aio::MultiplexedConnection, seq: u64) -> TestResult {
    let tick = ResumeEvent::Tick(Tick {
        seq,
        at: "2026-12-02T00:00:00.000Z".into(),
    });
    let _: String = redis::cmd("XADD")
        .arg(KEY)
        .arg("*")
        .arg("e")
        .arg(serde_json::to_string(&tick)?)
        .query_async(conn)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_producer_that_stalled_past_its_lease_cannot_append_beside_the_new_holder() -> TestResult
{
    let redis = RedisServer::start().await?;
    let (_a, _, mut producer) = with_producer(&redis.url(), Duration::from_secs(30)).await?;
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    assert_eq!(producer.holds().await, Held::Taken);
    let tick = |seq| {
        ResumeEvent::Tick(Tick {
            seq,
            at: "2026-12-02T00:00:00.000Z".into(),
        })
    };
    producer.publish(vec![tick(1)]).await?;
    // A stall longer than the lease: it expired and another instance took it. This
    // holder renewed moments ago, so it still believes the lease is its own.
    let () = redis::cmd("SET")
        .arg(LEASE_KEY)
        .arg("the-new-holder")
        .query_async(&mut direct)
        .await?;
    assert_eq!(
        producer.holds().await,
        Held::Still,
        "within a third of the ttl it does not ask"
    );
    let refused = producer.publish(vec![tick(2)]).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        ticks_in_redis(&mut direct).await?,
        vec![1],
        "nothing appended"
    );
    assert_eq!(
        producer.holds().await,
        Held::No,
        "it stepped back and asked Redis"
    );
    Ok(())
}

#[tokio::test]
async fn a_new_producer_goes_on_from_the_last_tick_in_redis_not_from_a_lagging_hub() -> TestResult {
    let redis = RedisServer::start().await?;
    let streams = Streams::from_args(&ServerArgs::default());
    let hub = Hub::with_observer(
        HistoryLimits::default(),
        HubMetrics::register(streams.metrics()),
    );
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    // The previous holder's last ticks are in Redis, and this instance's reader has not
    // read them: it is not running yet.
    for seq in 1..=5 {
        add_tick(&mut direct, seq).await?;
    }
    let log = sse_redis::RedisLog::connect(&redis.url(), KEY, hub.clone()).await?;
    // Loaded at connect: the hub has 1..=5. Now the previous holder appends 6, and no
    // reader is there to deliver it: the new producer must not tick 6 again.
    add_tick(&mut direct, 6).await?;
    let (shutdown, every) = (streams.shutdown_token(), Duration::from_millis(20));
    let lease =
        sse_redis::RedisLease::open(log.clone(), LEASE_KEY.into(), Duration::from_secs(30)).await?;
    let producer = Producer::leased(hub, Box::new(lease));
    let producer = tokio::spawn(sse_resume::produce_ticks(producer, every, shutdown.clone()));
    // Once it holds the lease the old code ticked 6 at once; this one waits for its reader.
    wait_until(WAIT, "the lease to be taken", || async {
        let holder: Option<String> = redis::cmd("GET")
            .arg(LEASE_KEY)
            .query_async(&mut direct.clone())
            .await?;
        Ok(holder.is_some())
    })
    .await?;
    let _reader = log.spawn_reader(shutdown.clone());
    wait_until(WAIT, "the producer to tick three times", || async {
        Ok(ticks_in_redis(&mut direct.clone()).await?.len() >= 9)
    })
    .await?;
    shutdown.cancel();
    within(WAIT, "the producer to stop", producer).await??;
    let seqs = ticks_in_redis(&mut direct).await?;
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq once, in order");
    Ok(())
}

#[tokio::test]
async fn an_id_a_lagging_instance_has_not_read_yet_is_waited_for_not_unknown() -> TestResult {
    let redis = RedisServer::start().await?;
    let proxy = FaultyProxy::start(&redis).await?;
    let (a, _) = instance(&redis).await?;
    let (b, _) = instance_on(&proxy.url).await?;
    // B's reader is held up for a second: its next XREAD waits in the proxy.
    proxy.arm(b"XREAD", Fault::Stall(Duration::from_secs(1)));
    wait_until(WAIT, "B's reader to stall", || async {
        Ok(proxy.has_struck())
    })
    .await?;
    // A note published on A, read there by a client that then fails over to B, which
    // has not read it yet.
    let seen = post(&a.url(""), "seen on A").await?;
    let mut on_b = SseConnection::open(&b.url("/events"), &[("last-event-id", &seen)]).await?;
    let after = post(&a.url(""), "after").await?;
    let (id, text) = next_note(&mut on_b).await?;
    assert_eq!((id, text.as_str()), (after, "after"), "no reset, no repeat");
    Ok(())
}

#[tokio::test]
async fn a_producer_whose_redis_goes_quiet_past_its_lease_never_ticks_beside_the_next() -> TestResult
{
    let redis = RedisServer::start().await?;
    let proxy = FaultyProxy::start(&redis).await?;
    let tick_fast = ["--interval-ms", "50"];
    let through_proxy = [&["--redis", proxy.url.as_str()][..], &tick_fast].concat();
    let _a = AppProcess::spawn(env!("CARGO_BIN_EXE_sse-resume"), &through_proxy).await?;
    let mut direct = redis::Client::open(redis.url().as_str())?
        .get_multiplexed_async_connection()
        .await?;
    wait_until(WAIT, "A to tick", || async {
        Ok(ticks_in_redis(&mut direct.clone()).await?.len() >= 10)
    })
    .await?;
    let url = redis.url();
    let direct_args = [&["--redis", url.as_str()][..], &tick_fast].concat();
    let _b = AppProcess::spawn(env!("CARGO_BIN_EXE_sse-resume"), &direct_args).await?;
    // A, the holder, hears nothing from Redis for 4 s, longer than the lease's 3 s: its
    // next tick is on its way, held; B finds the lease expired and goes on ticking.
    proxy.arm(b"*", Fault::Silence(Duration::from_secs(4)));
    wait_until(WAIT, "A's Redis to go quiet", || async {
        Ok(proxy.has_struck())
    })
    .await?;
    let before = ticks_in_redis(&mut direct).await?.len();
    wait_until(Duration::from_secs(20), "60 ticks after", || async {
        Ok(ticks_in_redis(&mut direct.clone()).await?.len() >= before + 60)
    })
    .await?;
    let seqs = ticks_in_redis(&mut direct).await?;
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "one producer at a time: no seq twice, none skipped"
    );
    Ok(())
}
