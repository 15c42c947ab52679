//! sse-topics with `--redis`: two instances on one Redis serve one audience. Updates
//! published on one reach the other's subscribers, private ones only where a token
//! grants them, and a client resumes on either instance with the ids the other gave.
//! With `--subscriptions`, behind nginx, every instance lists the subscribers of all,
//! and a killed instance's subscribers end within seconds.

use std::time::Duration;

use serde_json::{Value, json};
use sse_shared::testing::{
    AppProcess, Nginx, RedisServer, SseConnection, TestResult, WAIT, http, wait_until, within,
};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a redis test secret, at least 32 bytes";
const AUDIENCE: &str = "urn:test-hub";

fn token(actions: &[&str]) -> TestResult<String> {
    let claims = json!({
        "exp": unix_now() + 600,
        "aud": AUDIENCE,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": actions, "topics": [{"match": "*"}]}],
    });
    Ok(sign(SECRET.as_bytes(), &claims)?)
}

async fn publish(base: &str, form: &str) -> TestResult<String> {
    let response = http()
        .post(format!("{base}/.well-known/mercure"))
        .bearer_auth(token(&["publish"])?)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("publish refused: {}", response.status()).into());
    }
    Ok(response.text().await?)
}

async fn subscribe(base: &str, query: &str, headers: &[(&str, &str)]) -> TestResult<SseConnection> {
    let mut conn =
        SseConnection::open(&format!("{base}/.well-known/mercure?{query}"), headers).await?;
    conn.next().await?; // retry: subscribed
    Ok(conn)
}

/// The (id, data) of the next event.
/// The hub's options with Redis at `url`, then `more`.
fn options<'a>(url: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let common = [
        "--redis",
        url,
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
    ];
    [&common[..], more].concat()
}

async fn next(conn: &mut SseConnection) -> TestResult<(String, String)> {
    let event = conn.next_event().await?;
    Ok((event.id.unwrap_or_default(), event.data.unwrap_or_default()))
}

#[tokio::test]
async fn two_instances_serve_one_audience() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let options = options(&url, &[]);
    let (a, b) = (
        AppProcess::spawn(BIN, &options).await?,
        AppProcess::spawn(BIN, &options).await?,
    );
    let reader = format!("Bearer {}", token(&["subscribe"])?);
    let mut anonymous = subscribe(a.url(), "match=t", &[]).await?;
    let mut granted = subscribe(a.url(), "match=t", &[("authorization", &reader)]).await?;
    // Published on B, private then public: A's anonymous subscriber gets the public one
    // only, the granted one both, in order, with the ids B answered.
    let private = publish(b.url(), "topic=t&data=secret&private=on").await?;
    let public = publish(b.url(), "topic=t&data=news&id=urn%3Anews").await?;
    assert!(
        private.starts_with('#') && public == "urn:news",
        "{private} {public}"
    );
    assert_eq!(next(&mut anonymous).await?, (public.clone(), "news".into()));
    assert_eq!(
        next(&mut granted).await?,
        (private.clone(), "secret".into())
    );
    assert_eq!(next(&mut granted).await?, (public.clone(), "news".into()));
    // A client that read the private update on A resumes on B after it.
    let mut resumed = subscribe(
        b.url(),
        "match=t",
        &[("authorization", &reader), ("last-event-id", &private)],
    )
    .await?;
    assert_eq!(resumed.headers["mercure-last-event-id"], private.as_str());
    assert_eq!(next(&mut resumed).await?, (public, "news".into()));
    Ok(())
}

/// The next `mercure` announcement's document, within `limit`.
async fn announcement(conn: &mut SseConnection, limit: Duration) -> TestResult<Value> {
    loop {
        let event = conn.next_within(limit).await?;
        if event.event.as_deref() == Some("mercure") {
            return Ok(serde_json::from_str(
                event.data.as_deref().unwrap_or("null"),
            )?);
        }
    }
}

/// The subscriber ids the subscriptions API of `base` lists.
async fn listed(base: &str) -> TestResult<Vec<String>> {
    let response = http()
        .get(format!("{base}/.well-known/mercure/subscriptions"))
        .bearer_auth(token(&["subscribe"])?)
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("the API answered {}", response.status()).into());
    }
    let body: Value = response.json().await?;
    let all = body["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ids = all
        .iter()
        .map(|d| d["subscriber"].as_str().unwrap_or_default().to_owned());
    Ok(ids.collect())
}

const ALL_SUBSCRIPTIONS: &str = "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F%3Atype%2F%3Amatch%2F%3Asubscriber";

#[tokio::test]
async fn behind_nginx_every_instance_lists_every_subscriber_and_a_killed_ones_end() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let options = options(&url, &["--subscriptions"]);
    let mut a = AppProcess::spawn(BIN, &options).await?;
    let b = AppProcess::spawn(BIN, &options).await?;
    let a_port = a.port()?.to_string();
    let upstreams = [
        format!("127.0.0.1:{a_port}"),
        format!("127.0.0.1:{}", b.port()?),
    ];
    let nginx = Nginx::start(&[upstreams[0].as_str(), upstreams[1].as_str()]).await?;
    let reader = format!("Bearer {}", token(&["subscribe"])?);
    let granted = [("authorization", reader.as_str())];

    // A watcher of every subscription on B, and a subscriber on A: B's watcher hears
    // of it through Redis, and the API of either instance lists both.
    let mut watcher = subscribe(b.url(), ALL_SUBSCRIPTIONS, &granted).await?;
    let own = announcement(&mut watcher, WAIT).await?;
    let watcher_id = own["subscriber"].as_str().unwrap_or_default().to_owned();
    let on_a = subscribe(a.url(), "match=urn%3Aa", &[]).await?;
    let started = announcement(&mut watcher, WAIT).await?;
    let (a_id, a_active) = (
        started["subscriber"].as_str().unwrap_or_default(),
        &started["active"],
    );
    assert_eq!(
        (&started["match"], a_active),
        (&json!("urn:a"), &json!(true))
    );
    for base in [a.url(), b.url()] {
        let mut ids = listed(base).await?;
        ids.sort();
        let mut both = vec![watcher_id.clone(), a_id.to_owned()];
        both.sort();
        assert_eq!(ids, both, "listed by {base}");
    }

    // Through nginx: a subscriber on whichever instance, updates published on both,
    // public and private, each arrives once, in order.
    let mut through = subscribe(&nginx.url(), "match=t", &granted).await?;
    let mut sent = Vec::new();
    for (i, base) in [a.url(), b.url(), a.url(), b.url()].into_iter().enumerate() {
        let private = if i % 2 == 0 { "&private=on" } else { "" };
        let id = publish(base, &format!("topic=t&data=u{i}{private}")).await?;
        sent.push((id, format!("u{i}")));
    }
    for expected in &sent {
        assert_eq!(&next(&mut through).await?, expected);
    }

    // A dies without a word: B's sweep ends its subscriber within seconds (its
    // heartbeat goes silent for DEAD_AFTER), announced as inactive and off every list.
    a.kill().await?;
    drop(on_a);
    let ended = loop {
        let doc = announcement(&mut watcher, Duration::from_secs(20)).await?;
        if doc["subscriber"] == a_id {
            break doc;
        } // else the start or end of the subscriber through nginx
    };
    assert_eq!(ended["active"], false);
    let still = listed(b.url()).await?;
    assert!(
        still.contains(&watcher_id) && !still.iter().any(|id| id == a_id),
        "{still:?}"
    );

    // Updates published while A is down are there when it comes back on its port: a
    // client resumes on it after the last one it saw and misses nothing.
    let (last_seen, _) = sent.last().cloned().ok_or("nothing sent")?;
    let missed = [
        publish(b.url(), "topic=t&data=m1").await?,
        publish(b.url(), "topic=t&data=m2&private=on").await?,
    ];
    let restarted = [&options[..], &["--port", a_port.as_str()]].concat();
    let a = AppProcess::spawn(BIN, &restarted).await?;
    let resume = [granted[0], ("last-event-id", last_seen.as_str())];
    let mut resumed = subscribe(a.url(), "match=t", &resume).await?;
    assert_eq!(next(&mut resumed).await?, (missed[0].clone(), "m1".into()));
    assert_eq!(next(&mut resumed).await?, (missed[1].clone(), "m2".into()));
    Ok(())
}

/// Hostile round three (6): a subscriber document in Redis that does not read (written
/// by something else) is skipped: the subscriptions API still lists everyone else.
#[tokio::test]
async fn a_malformed_document_in_redis_does_not_hide_the_others() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let options = options(&url, &["--subscriptions"]);
    let app = AppProcess::spawn(BIN, &options).await?;
    let _subscriber = subscribe(app.url(), "match=urn%3Aa", &[]).await?;
    let cli = std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
    let written = within(
        WAIT,
        "redis-cli",
        tokio::process::Command::new(&cli)
            .args([
                "-u",
                url.as_str(),
                "HSET",
                "sse-topics:subscriptions:docs",
                "bogus",
                "not json",
            ])
            .output(),
    )
    .await??;
    assert!(written.status.success(), "{written:?}");
    wait_until(
        WAIT,
        "the subscriber listed despite the bogus document",
        || async { Ok(listed(app.url()).await?.len() == 1) },
    )
    .await?;
    Ok(())
}
