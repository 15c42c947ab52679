//! sse-topics with `--redis`: two instances on one Redis serve one audience. Updates
//! published on one reach the other's subscribers, private ones only where a token
//! grants them, and a client resumes on either instance with the ids the other gave.

use serde_json::json;
use sse_shared::testing::{AppProcess, RedisServer, SseConnection, TestResult, http};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a redis test secret, at least 32 bytes";

fn token(actions: &[&str]) -> TestResult<String> {
    let claims = json!({
        "exp": unix_now() + 600,
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
async fn next(conn: &mut SseConnection) -> TestResult<(String, String)> {
    let event = conn.next_event().await?;
    Ok((event.id.unwrap_or_default(), event.data.unwrap_or_default()))
}

#[tokio::test]
async fn two_instances_serve_one_audience() -> TestResult {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let options = ["--redis", url.as_str(), "--jwt-secret", SECRET];
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
