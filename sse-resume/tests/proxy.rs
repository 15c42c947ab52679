//! Two sse-resume instances on one Redis, behind a real nginx with its default
//! `proxy_buffering on`: events still arrive one by one (the stream says
//! `X-Accel-Buffering: no`), and a client resumes on whichever instance it lands on.

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Nginx, RedisServer, SseConnection, TestResult, WAIT, http, metric, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");

async fn post(base: &str, text: &str) -> TestResult<String> {
    let response = http()
        .post(format!("{base}/events"))
        .body(text.to_owned())
        .send()
        .await?;
    if response.status() != 201 {
        return Err(format!("POST answered {}", response.status()).into());
    }
    let body: serde_json::Value = response.json().await?;
    Ok(body["id"].as_str().ok_or("no id")?.to_owned())
}

/// The next note's (id, text), within `limit`.
async fn next_note(conn: &mut SseConnection, limit: Duration) -> TestResult<(String, String)> {
    loop {
        let event = conn.next_within(limit).await?;
        if event.event.as_deref() == Some("note") {
            return Ok((event.id.ok_or("no id")?, event.data.unwrap_or_default()));
        }
    }
}

#[tokio::test]
async fn through_nginx_events_arrive_one_by_one_and_resume_works_across_instances() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--interval-ms", "3600000"];
    let a = AppProcess::spawn(BIN, &args).await?;
    let b = AppProcess::spawn(BIN, &args).await?;
    let upstreams: Vec<String> = [a.url(), b.url()]
        .iter()
        .map(|u| u.trim_start_matches("http://").to_owned())
        .collect();
    let upstreams: Vec<&str> = upstreams.iter().map(String::as_str).collect();
    let nginx = Nginx::start(&upstreams).await?;
    let proxy = nginx.url();

    // One by one: each event must arrive before the next is even published. A
    // buffering proxy would hold a small event back until its buffer filled.
    let mut client = SseConnection::open(&format!("{proxy}/events"), &[]).await?;
    assert_eq!(client.status, 200);
    let mut last = String::new();
    for i in 0..5 {
        let id = post(&proxy, &format!("n{i}")).await?;
        let (got, text) = next_note(&mut client, Duration::from_secs(3)).await?;
        assert_eq!(
            (got.as_str(), text.as_str()),
            (id.as_str(), format!("n{i}").as_str())
        );
        last = id;
    }

    // Drop, miss some, come back through the proxy: round-robin sends the reconnects
    // to both instances, and each replays exactly what was missed.
    let mut served_by = [0u32; 2];
    for round in 0..4 {
        drop(client);
        let missed = [
            post(&proxy, &format!("r{round}a")).await?,
            post(&proxy, &format!("r{round}b")).await?,
        ];
        client =
            SseConnection::open(&format!("{proxy}/events"), &[("last-event-id", &last)]).await?;
        for id in &missed {
            assert_eq!(&next_note(&mut client, Duration::from_secs(5)).await?.0, id);
        }
        last = missed[1].clone();
        // Exactly one instance holds the stream, once the dropped one has closed (until
        // then both can show one open, which would count an instance that served nothing).
        let serving = within(WAIT, "exactly one instance to hold the stream", async {
            loop {
                let a_open = metric(a.url(), "sse_open_streams").await?;
                let b_open = metric(b.url(), "sse_open_streams").await?;
                if a_open + b_open == 1.0 {
                    return TestResult::Ok(usize::from(b_open == 1.0));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await??;
        served_by[serving] += 1;
    }
    assert!(
        served_by.iter().all(|&n| n > 0),
        "both instances served reconnects: {served_by:?}"
    );
    Ok(())
}
