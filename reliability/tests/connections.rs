//! Connections an attacker or a bad network makes: a proxy seen through a dual-stack
//! listener, a peer that vanishes without a FIN, a request body that stops arriving.
//! Each test fails without its fix (see issue 16, item 4).

mod common;

use std::time::Duration;

use common::resume;
use sse_shared::testing::{SseConnection, TestApp, TestResult, wait_until, within};
use sse_shared::{HistoryLimits, ServerArgs, Streams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A proxy on 127.0.0.1 reaches a `--host ::` listener as `::ffff:127.0.0.1`. It is still
/// the trusted proxy, so each client behind it is counted by its own address.
#[tokio::test]
async fn a_proxy_seen_as_an_ipv4_mapped_address_is_trusted() -> TestResult {
    let args = ServerArgs {
        host: "::".into(),
        max_streams_per_ip: 1,
        trusted_proxies: vec!["127.0.0.1".parse()?],
        ..ServerArgs::default()
    };
    let streams = Streams::from_args(&args);
    let router = sse_counter::router(Duration::from_secs(3600));
    let app = TestApp::serve_at(args, streams, router).await?;
    // Over IPv4, to the dual-stack listener.
    let url = format!("http://127.0.0.1:{}/events", app.server.local_addr().port());
    let behind = |client: &'static str| [("x-forwarded-for", client)];

    let first = SseConnection::open(&url, &behind("203.0.113.1")).await?;
    assert_eq!(first.status, 200);
    let second = SseConnection::open(&url, &behind("203.0.113.2")).await?;
    assert_eq!(
        second.status, 200,
        "a second client behind the proxy has a slot of its own"
    );
    let again = SseConnection::open(&url, &behind("203.0.113.1")).await?;
    assert_eq!(again.status, 429, "the first client's one slot is taken");
    Ok(())
}

/// A client behind a trusted proxy cannot choose the address it is counted under: the
/// proxy's own entry is read however the proxy wrote it (`IP:port`, `[IPv6]`,
/// `[IPv6]:port`), and an entry that does not parse (`unknown`) counts as the proxy,
/// never as the made-up entry to its left. With `--max-streams-per-ip 1`, three streams
/// whose forged entries differ get one slot between them.
#[tokio::test]
async fn a_forged_forwarded_entry_cannot_buy_more_streams_for_one_client() -> TestResult {
    let args = ServerArgs {
        max_streams_per_ip: 1,
        trusted_proxies: vec!["127.0.0.1".parse()?],
        ..ServerArgs::default()
    };
    let app = TestApp::start(args, |_| sse_counter::router(Duration::from_secs(3600))).await?;
    let url = app.url("/events");
    for proxy_wrote in [
        "5.5.5.5:40001",
        "unknown",
        "[2001:db8::1]:40001",
        "[2001:db8::2]",
    ] {
        let mut statuses = Vec::new();
        let mut open = Vec::new();
        for n in 1..=3 {
            let forwarded = format!("6.6.6.{n}, {proxy_wrote}");
            let conn = SseConnection::open(&url, &[("x-forwarded-for", &forwarded)]).await?;
            statuses.push(conn.status);
            open.push(conn);
        }
        assert_eq!(statuses, [200, 429, 429], "behind {proxy_wrote:?}");
        drop(open);
        // The slot comes back before the next form is tried.
        wait_until(Duration::from_secs(10), "the streams to close", || async {
            Ok(app.metric("sse_open_streams").await? == 0.0)
        })
        .await?;
    }
    Ok(())
}

/// The server's side of each accepted connection runs TCP keepalive (the kernel's
/// keepalive timer is armed on an idle stream), so a peer that vanished is noticed.
#[tokio::test]
async fn accepted_connections_probe_for_a_vanished_peer() -> TestResult {
    let app = TestApp::start(ServerArgs::default(), |_| {
        sse_counter::router(Duration::from_secs(3600))
    })
    .await?;
    let server_port = app.server.local_addr().port();
    let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
    let client_port = socket.local_addr()?.port();
    socket
        .write_all(b"GET /events HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n")
        .await?;
    let mut head = vec![0u8; 512];
    let n = within(
        Duration::from_secs(10),
        "the stream's head",
        socket.read(&mut head),
    )
    .await??;
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));

    // /proc/net/tcp: "sl local rem st tx:rx tr:when ...", ports in hex; timer 2 is
    // keepalive (0: no timer, 1: retransmission, once the stream's bytes are acked).
    let (local, remote) = (format!(":{server_port:04X}"), format!(":{client_port:04X}"));
    let mut last = String::new();
    let armed = wait_until(Duration::from_secs(10), "the keepalive timer", || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let line = table.lines().find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 5 && fields[1].ends_with(&local) && fields[2].ends_with(&remote)
        });
        last = line.unwrap_or("no such socket").to_owned();
        let timer = line.and_then(|l| l.split_whitespace().nth(5)).unwrap_or("");
        let armed = timer.starts_with("02:");
        async move { Ok(armed) }
    })
    .await;
    assert!(
        armed.is_ok(),
        "no keepalive timer on the server's socket: {last}"
    );
    Ok(())
}

/// A client that sends part of a body and stops gets `408` once salvo's fuse sees no
/// byte for 10 s, instead of holding the handler forever.
#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() -> TestResult {
    let (app, _hub) = resume(ServerArgs::default(), HistoryLimits::default()).await?;
    let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
    socket
        .write_all(
            b"POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n\
              content-length: 100\r\n\r\nonly part of it",
        )
        .await?;
    let answer = json_answer(&mut socket, Duration::from_secs(20), "the stalled body").await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"body-timeout""#), "{answer}");
    Ok(())
}

#[tokio::test]
async fn new_streams_past_the_admission_rate_get_503_with_a_jittered_retry_after() -> TestResult {
    let args = ServerArgs {
        max_new_streams_per_sec: 5,
        ..common::roomy()
    };
    let (app, _hub) = resume(args, HistoryLimits::default()).await?;
    let mut open = Vec::new();
    let mut waits = Vec::new();
    // Twenty at once: the burst of five gets in, the rest are told when to come back.
    for _ in 0..20 {
        let conn = SseConnection::open(&app.url("/events"), &[]).await?;
        match conn.status.as_u16() {
            200 => open.push(conn),
            503 => {
                let wait = conn
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok());
                waits.push(wait.ok_or("no Retry-After")?.parse::<u64>()?);
            }
            other => return Err(format!("unexpected status {other}").into()),
        }
    }
    assert_eq!(open.len(), 5, "the burst");
    assert_eq!(waits.len(), 15);
    // A second's refill at most, plus up to two seconds of jitter, in whole seconds.
    assert!(waits.iter().all(|w| (1..=3).contains(w)), "{waits:?}");
    // Spread, not one instant for all (15 equal draws would be a ~1-in-30,000 chance).
    assert!(
        waits.iter().any(|w| *w != waits[0]),
        "all the same: {waits:?}"
    );
    let rejected = app
        .metric(r#"sse_rejected_streams_total{reason="admission-rate"}"#)
        .await?;
    assert_eq!(rejected, 15.0);
    // The refill admits again: within a few seconds a new stream is accepted.
    wait_until(
        Duration::from_secs(5),
        "a stream admitted after the refill",
        || async { Ok(SseConnection::open(&app.url("/events"), &[]).await?.status == 200) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn streams_end_after_their_spread_lifetime_so_clients_rebalance() -> TestResult {
    let args = ServerArgs {
        max_stream_lifetime: Duration::from_secs(2),
        retry_jitter_pct: 25,
        ..common::roomy()
    };
    let (app, _hub) = resume(args, HistoryLimits::default()).await?;
    let opened = std::time::Instant::now();
    let mut readers = Vec::new();
    for _ in 0..40 {
        let mut conn = SseConnection::open(&app.url("/events"), &[]).await?;
        readers.push(tokio::spawn(async move {
            let mut last_retry = None;
            while let Ok(block) = conn.next_within(Duration::from_secs(10)).await {
                last_retry = block.retry.or(last_retry);
            }
            (opened.elapsed(), last_retry)
        }));
    }
    let mut ends = Vec::new();
    for reader in readers {
        let (at, retry) = within(Duration::from_secs(10), "a stream to end", reader).await??;
        assert!(retry.is_some_and(|r| r <= 3000), "a last retry: {retry:?}");
        ends.push(at);
    }
    ends.sort();
    let (first, last) = (ends[0], ends[ends.len() - 1]);
    // 2 s spread by +-25%: between 1.5 s and 2.5 s (plus the time to open them all).
    assert!(
        first >= Duration::from_millis(1500),
        "ended early: {first:?}"
    );
    assert!(last <= Duration::from_millis(3500), "ended late: {last:?}");
    assert!(
        last - first >= Duration::from_millis(300),
        "not spread: {first:?}..{last:?}"
    );
    Ok(())
}

/// A body that trickles in steadily (a byte every 300 ms, never 10 s apart) still has
/// to arrive within `--body-deadline-secs` (2 here): `408`, instead of holding its
/// connection and handler for the hours 1,000 bytes would take.
#[tokio::test]
async fn a_body_that_trickles_in_gets_408_at_the_deadline() -> TestResult {
    let args = ServerArgs {
        body_deadline: Duration::from_secs(2),
        ..ServerArgs::default()
    };
    let (app, _hub) = resume(args, HistoryLimits::default()).await?;
    let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
    socket
        .write_all(
            b"POST /events HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\n\
              content-length: 1000\r\n\r\n",
        )
        .await?;
    let (mut reader, mut writer) = socket.into_split();
    let started = std::time::Instant::now();
    let trickle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(300));
        for _ in 0..1000 {
            ticks.tick().await;
            if writer.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let answer = json_answer(&mut reader, Duration::from_secs(10), "the trickling body").await;
    trickle.abort();
    let answer = answer?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"body-timeout""#), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "answered before the deadline: {answer}"
    );
    Ok(())
}

/// Reads an answer with a JSON body (up to its closing brace) within `limit`.
async fn json_answer(
    socket: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
    what: &str,
) -> TestResult<String> {
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 1024];
    let read = async {
        while !String::from_utf8_lossy(&answer).contains('}') {
            let n = socket.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        TestResult::Ok(())
    };
    within(limit, &format!("an answer to {what}"), read).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
