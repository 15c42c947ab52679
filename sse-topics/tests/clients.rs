//! The clients Mercure apps run, as processes against the hub's binary: Symfony's
//! Mercure component (Debian's `php-symfony-mercure`, whose `Hub::publish` is what a
//! Symfony or API Platform app calls) and Symfony's `EventSourceHttpClient` as the
//! subscriber (`tests/clients/symfony.php`); `requests-sse` from PyPI
//! (`tests/clients/requests_sse_client.py`); `github.com/r3labs/sse/v2` from the Go
//! module proxy (`reliability/go`). `scripts/test` installs `php-cli` and the Symfony
//! packages when they are missing, makes the Python venv (`CLIENTS_PYTHON`) and builds
//! the Go client (`GO_SSE_CLIENT`).

use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_shared::testing::{
    AppProcess, ClientProcess, RedisServer, TestResult, WAIT, http, tool_path, wait_until, within,
};
use sse_topics::auth::{DETAIL_TYPE, unix_now};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a secret of the hub's own, 32 bytes or more";
const AUDIENCE: &str = "https://hub.example/.well-known/mercure";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/symfony.php");
const PYTHON_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clients/requests_sse_client.py"
);

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

/// Publishes the (encoded) `form` through `base` with a publisher's token; the id.
async fn publish_form(base: &str, form: &str) -> TestResult<String> {
    let response = http()
        .post(format!("{base}/.well-known/mercure"))
        .bearer_auth(token_1_0(&["publish"])?)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("publish refused: {}", response.status()).into());
    }
    Ok(response.text().await?)
}

/// Updates on `urn:feed` (private ones when `private`) to a client that `client`
/// starts on a stream URL and a subscriber's token, across a restart of its hub: two
/// instances on one Redis, B takes two updates while A restarts on its port. The
/// updates sent and the client's `(id, data)` of each, which must be the same.
async fn across_a_restart(
    private: bool,
    client: impl FnOnce(&str, &str) -> TestResult<ClientProcess>,
) -> TestResult<(Vec<(String, String)>, Vec<(String, String)>)> {
    let redis = RedisServer::start().await?;
    let url = redis.url();
    let options = [
        "--redis",
        &url,
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        // The clients wait `retry:` before reconnecting.
        "--retry-ms",
        "100",
        "--retry-jitter-pct",
        "0",
    ];
    let mut a = AppProcess::spawn(BIN, &options).await?;
    let b = AppProcess::spawn(BIN, &options).await?;
    let a_port = a.port()?.to_string();
    let stream = format!("{}/.well-known/mercure?match=urn%3Afeed", a.url());
    let mut client = client(&stream, &token_1_0(&["subscribe"])?)?;
    let opened = async || Ok(hub_metric(&a, "sse_open_streams").await? == 1.0);
    wait_until(WAIT, "the client's stream", opened).await?;
    let publish = async |base: &str, data: &str| -> TestResult<(String, String)> {
        let private = if private { "&private=on" } else { "" };
        let id = publish_form(base, &format!("topic=urn%3Afeed&data={data}{private}")).await?;
        Ok((id, data.to_owned()))
    };
    let mut next = async || -> TestResult<(String, String)> {
        let line = client.next_within(Duration::from_secs(20)).await?;
        let text = |name: &str| line[name].as_str().unwrap_or_default().to_owned();
        Ok((text("id"), text("data")))
    };
    let mut sent = vec![publish(a.url(), "u1").await?, publish(a.url(), "u2").await?];
    let mut got = vec![next().await?, next().await?];
    // A stops (its streams end: the client reconnects, refused while A is down).
    a.stop().await?;
    sent.push(publish(b.url(), "m1").await?);
    sent.push(publish(b.url(), "m2").await?);
    let restarted = [&options[..], &["--port", a_port.as_str()]].concat();
    let a = within(WAIT, "A to restart", AppProcess::spawn(BIN, &restarted)).await??;
    got.push(next().await?);
    got.push(next().await?);
    sent.push(publish(a.url(), "after").await?);
    got.push(next().await?);
    Ok((sent, got))
}

#[tokio::test]
async fn requests_sse_resumes_across_a_hub_restart_without_a_gap() -> TestResult {
    let python = tool_path("CLIENTS_PYTHON", "clients-venv/bin/python");
    let hint = "scripts/test makes it (a venv with requests-sse), or set CLIENTS_PYTHON";
    let (sent, got) = across_a_restart(false, |stream, token| {
        ClientProcess::spawn(&python, &[PYTHON_CLIENT, stream, token, "5"], hint)
    })
    .await?;
    assert_eq!(got, sent, "each update once, in order, under its id");
    Ok(())
}

#[tokio::test]
async fn r3labs_sse_reads_private_updates_and_resumes_after_a_restart() -> TestResult {
    let go = tool_path("GO_SSE_CLIENT", "go-sse-client");
    let hint = "scripts/test builds it from reliability/go, or set GO_SSE_CLIENT";
    let (sent, got) = across_a_restart(true, |stream, token| {
        ClientProcess::spawn(&go, &[stream, "5", token], hint)
    })
    .await?;
    assert_eq!(
        got, sent,
        "each private update once, in order, under its id"
    );
    Ok(())
}

async fn hub_metric(hub: &AppProcess, name: &str) -> TestResult<f64> {
    let text = http()
        .get(format!("{}/metrics", hub.url()))
        .send()
        .await?
        .text()
        .await?;
    let line = text
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
    let value = line
        .and_then(|l| l.rsplit(' ').next())
        .ok_or("no such metric")?;
    Ok(value.parse()?)
}

/// A credential in a URL (Mercure 0.x's `authorization` query parameter) must end up in
/// no log line and no metric, even with every log level on.
#[tokio::test]
async fn the_authorization_query_parameter_reaches_no_log_line_or_metric() -> TestResult {
    let args = [
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        "--protocol-compat",
        "8",
    ];
    let hub = AppProcess::spawn_logging(BIN, &args, "trace").await?;
    let exp = unix_now() + 600;
    let reader = sign("JWT", &json!({"exp": exp, "mercure": {"subscribe": ["*"]}}))?;
    let writer = sign("JWT", &json!({"exp": exp, "mercure": {"publish": ["*"]}}))?;
    let base = format!("{}/.well-known/mercure", hub.url());
    let stream = format!("{base}?topic=*&authorization={reader}");
    let mut client = ClientProcess::spawn(
        &tool_path("GO_SSE_CLIENT", "go-sse-client"),
        &[&stream, "1"],
        "scripts/test builds it from reliability/go, or set GO_SSE_CLIENT",
    )?;
    let opened = async || Ok(hub_metric(&hub, "sse_open_streams").await? == 1.0);
    wait_until(WAIT, "the stream", opened).await?;
    let published = http()
        .post(format!("{base}?authorization={writer}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=urn%3Aa&data=private&private=on")
        .send()
        .await?;
    assert_eq!(published.status(), 200);
    assert_eq!(client.next().await?["data"], "private");
    let metrics = http()
        .get(format!("{}/metrics", hub.url()))
        .send()
        .await?
        .text()
        .await?;
    let lines = hub.stderr_lines();
    assert!(lines.len() > 1, "trace logging is on");
    for token in [&reader, &writer] {
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(!metrics.contains(signature), "a token in /metrics");
        let logged = lines.iter().find(|line| line.contains(signature));
        assert!(logged.is_none(), "a token logged: {logged:?}");
    }
    Ok(())
}
