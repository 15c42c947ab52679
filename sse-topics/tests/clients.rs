//! The clients Mercure apps run, as processes against the hub's binary: Symfony's
//! Mercure component (Debian's `php-symfony-mercure`, whose `Hub::publish` is what a
//! Symfony or API Platform app calls) and Symfony's `EventSourceHttpClient` as the
//! subscriber (`tests/clients/symfony.php`). `scripts/test` installs `php-cli` and the
//! two packages when they are missing.

use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, TestResult, within};
use sse_topics::auth::{DETAIL_TYPE, unix_now};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a secret of the hub's own, 32 bytes or more";
const AUDIENCE: &str = "https://hub.example/.well-known/mercure";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/symfony.php");

/// `claims` signed with the hub's secret under a header typed `typ` (`JWT`: what
/// lcobucci/jwt, Symfony's token factory, writes).
fn sign(typ: &str, claims: &Value) -> TestResult<String> {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some(typ.into());
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

/// A 1.0 access token granting `actions` on every topic.
fn token_1_0(actions: &[&str]) -> TestResult<String> {
    let detail = json!({"type": DETAIL_TYPE, "actions": actions, "topics": [{"match": "*"}]});
    let claims =
        json!({"aud": AUDIENCE, "exp": unix_now() + 600, "authorization_details": [detail]});
    sign("at+jwt", &claims)
}

/// Runs the Symfony script against `hub`; the ids it published and the events it
/// received, `(id, data)`.
async fn symfony(
    hub: &AppProcess,
    query: &str,
    subscriber: &str,
    publisher: &str,
    topic: &str,
) -> TestResult<(Vec<String>, Vec<(String, String)>)> {
    let url = format!("{}/.well-known/mercure", hub.url());
    let run = Command::new(std::env::var("PHP").unwrap_or_else(|_| "php".into()))
        .args([SCRIPT, &url, query, subscriber, publisher, topic])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = within(Duration::from_secs(30), "the Symfony client", run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("symfony.php failed ({}): {stdout}{stderr}", output.status).into());
    }
    let (mut published, mut received) = (Vec::new(), Vec::new());
    for line in stdout.lines() {
        let line: Value = serde_json::from_str(line)?;
        if let Some(id) = line["published"].as_str() {
            published.push(id.to_owned());
        }
        if let Some(event) = line.get("received") {
            let text = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            received.push((text("id"), text("data")));
        }
    }
    Ok((published, received))
}

/// What the script should have seen: each update it published, once, under the id
/// `Hub::publish` returned.
fn assert_round_trip(published: &[String], received: &[(String, String)]) {
    let want: Vec<(String, String)> = published
        .iter()
        .cloned()
        .zip(["public from Symfony", "private from Symfony"].map(String::from))
        .collect();
    assert_eq!(received, want, "published {published:?}");
}

#[tokio::test]
async fn symfonys_component_publishes_and_subscribes_with_1_0_tokens() -> TestResult {
    let args = ["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE];
    let hub = AppProcess::spawn(BIN, &args).await?;
    let topic = "https://example.com/books/1";
    let query = "match_urlpattern=https%3A%2F%2Fexample.com%2Fbooks%2F%3Aid";
    let (subscriber, publisher) = (token_1_0(&["subscribe"])?, token_1_0(&["publish"])?);
    let (published, received) = symfony(&hub, query, &subscriber, &publisher, topic).await?;
    assert_round_trip(&published, &received);
    Ok(())
}

#[tokio::test]
async fn symfonys_component_works_with_0x_tokens_and_topic_templates_with_protocol_compat_8()
-> TestResult {
    let args = [
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        "--protocol-compat",
        "8",
    ];
    let hub = AppProcess::spawn(BIN, &args).await?;
    let topic = "https://example.com/books/1";
    let template = "https://example.com/books/{id}";
    let query = format!(
        "topic={}",
        url::form_urlencoded::byte_serialize(template.as_bytes()).collect::<String>()
    );
    // As Symfony's LcobucciFactory mints them for 0.x hubs: `typ: JWT`, no `aud`.
    let exp = unix_now() + 600;
    let subscriber = sign(
        "JWT",
        &json!({"exp": exp, "mercure": {"subscribe": [template]}}),
    )?;
    let publisher = sign("JWT", &json!({"exp": exp, "mercure": {"publish": ["*"]}}))?;
    let (published, received) = symfony(&hub, &query, &subscriber, &publisher, topic).await?;
    assert_round_trip(&published, &received);

    // The same tokens on a hub without the option: refused, and the script says so.
    let hub = AppProcess::spawn(BIN, &args[..4]).await?;
    let refused = symfony(&hub, "match=*", &subscriber, &publisher, topic).await;
    assert!(refused.is_err_and(|e| e.to_string().contains("401")));
    Ok(())
}
