//! sse-topics over real TCP, read by an independent SSE parser (`sse-stream`): what
//! Mercure's Subscription, Matcher Types, Publication, Authorization and Reconciliation
//! sections require, one test per rule (README.md's table names them).

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::publish::Publisher;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, WAIT, expect_error, http, reqwest, wait_until,
};
use sse_shared::{HistoryLimits, Hub, ServerArgs};
use sse_topics::auth::{DETAIL_TYPE, unix_now};
use sse_topics::{HubArgs, TopicHub};

type Form<'a> = Vec<(&'a str, &'a str)>;

const SECRET: &[u8] = b"a test secret of at least 32 bytes!";
const HUB: &str = "/.well-known/mercure";
const HUB_URL: &str = "https://hub.example/.well-known/mercure";

fn settings() -> TestResult<HubArgs> {
    Ok(HubArgs {
        hub_url: Some(HUB_URL.parse()?),
        public_urls: Vec::new(),
        jwt_audience: None,
        jwt_issuers: Vec::new(),
        jwks_refresh_secs: 30,
        cookie_name: "__Secure-mercure_access_token".into(),
        anonymous: true,
        subscriptions: false,
        protocol_compat: None,
        limits: Default::default(),
    })
}

async fn start_with(hub_args: HubArgs) -> TestResult<TestApp> {
    start_on(ServerArgs::default(), hub_args).await
}

async fn start_on(server: ServerArgs, hub_args: HubArgs) -> TestResult<TestApp> {
    TestApp::start(server, |streams| {
        let hub = Hub::with_observer(
            HistoryLimits::default(),
            HubMetrics::register(streams.metrics()),
        );
        match TopicHub::new(Publisher::in_memory(hub), hub_args, SECRET) {
            Ok(topics) => sse_topics::router(&Arc::clone(&topics)),
            Err(_) => salvo::Router::new(),
        }
    })
    .await
}

async fn start() -> TestResult<TestApp> {
    start_with(settings()?).await
}

/// The hub with a history of `events` updates.
async fn start_keeping(events: usize) -> TestResult<TestApp> {
    TestApp::start(ServerArgs::default(), move |streams| {
        let limits = HistoryLimits {
            max_events: events,
            ..HistoryLimits::default()
        };
        let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
        match settings().map(|args| TopicHub::new(Publisher::in_memory(hub), args, SECRET)) {
            Ok(Ok(topics)) => sse_topics::router(&topics),
            _ => salvo::Router::new(),
        }
    })
    .await
}

/// A token with these claims (plus `exp` an hour away unless given), signed with
/// `secret` under a header of type `typ`.
fn token_with(secret: &[u8], typ: Option<&str>, mut claims: Value) -> TestResult<String> {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = typ.map(str::to_owned);
    if claims.get("exp").is_none() {
        claims["exp"] = json!(unix_now() + 3600);
    }
    if claims.get("aud").is_none() {
        claims["aud"] = json!(HUB_URL);
    }
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// A valid token whose one detail grants `actions` on `topics` (`[match, type]`).
fn token(actions: &[&str], topics: &[(&str, &str)]) -> TestResult<String> {
    let topics: Vec<Value> = topics
        .iter()
        .map(|(m, t)| json!({"match": m, "match_type": t}))
        .collect();
    let detail = json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics});
    token_with(
        SECRET,
        Some("at+jwt"),
        json!({"authorization_details": [detail]}),
    )
}

fn publisher() -> TestResult<String> {
    token(&["publish"], &[("*", "exact")])
}

/// POSTs `form` (pairs, encoded here) with `token`; the response.
async fn post(
    app: &TestApp,
    token: Option<&str>,
    form: &[(&str, &str)],
) -> TestResult<reqwest::Response> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    post_raw(app, token, "application/x-www-form-urlencoded", body).await
}

async fn post_raw(
    app: &TestApp,
    token: Option<&str>,
    content_type: &str,
    body: String,
) -> TestResult<reqwest::Response> {
    let mut request = http()
        .post(app.url(HUB))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?)
}

/// Publishes `form` as the all-topics publisher; the id the hub answered.
async fn publish(app: &TestApp, form: &[(&str, &str)]) -> TestResult<String> {
    let response = post(app, Some(&publisher()?), form).await?;
    if response.status() != 200 {
        return Err(format!(
            "publish refused: {} {}",
            response.status(),
            response.text().await?
        )
        .into());
    }
    Ok(response.text().await?)
}

/// Subscribes with the query `query` (already encoded) and these headers; waits for
/// the stream's first block (`retry:`), so it is subscribed when this returns.
async fn subscribe(
    app: &TestApp,
    query: &str,
    headers: &[(&str, &str)],
) -> TestResult<SseConnection> {
    let mut conn = SseConnection::open(&app.url(&format!("{HUB}?{query}")), headers).await?;
    if conn.status != 200 {
        return Err(format!("subscribe refused: {}", conn.status).into());
    }
    let first = conn.next().await?;
    if first.retry.is_none() {
        return Err("the stream did not start with retry:".into());
    }
    Ok(conn)
}

/// The data of the events `conn` gets until one whose data is `sentinel` (included).
async fn until_sentinel(conn: &mut SseConnection, sentinel: &str) -> TestResult<Vec<String>> {
    let mut seen = Vec::new();
    loop {
        let event = conn.next_event().await?;
        if event.event.as_deref() == Some("reset") {
            continue;
        }
        let data = event.data.unwrap_or_default();
        seen.push(data.clone());
        if data == sentinel {
            return Ok(seen);
        }
    }
}

fn enc(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_subscriber_gets_exactly_the_updates_its_matchers_select() -> TestResult {
    let app = start().await?;
    // Exact (bare and explicit), URL patterns (absolute and relative to the hub's URL,
    // one with an expression: matched off the runtime's workers, in order with the rest).
    let query = format!(
        "match={}&match_exact={}&match_urlpattern={}&match_urlpattern={}&match_urlpattern={}&match=sentinel",
        enc("plain-topic"),
        enc("https://example.com/foo"),
        enc("https://example.com/books/:id"),
        enc("/orders/:id"),
        enc(r"https://example.com/chapters/:n(\d+)"),
    );
    let mut conn = subscribe(&app, &query, &[]).await?;
    let cases = [
        ("plain-topic", true),
        ("Plain-Topic", false), // exact is case-sensitive
        ("https://example.com/foo", true),
        ("https://example.com/foo/", false), // byte for byte
        ("https://example.com/books/42", true),
        ("https://example.com/books/42/pages", false), // :id is one segment
        ("https://hub.example/orders/7", true),        // relative pattern, hub's base
        ("/orders/8", true),                           // relative topic, same base
        ("https://other.example/orders/9", false),
        ("not a url at all", false),
        ("https://[not-an-address/orders/1", false), // no URL: matches no pattern
        ("https://example.com/chapters/12", true),
        ("https://example.com/chapters/twelve", false),
        ("https://example.com/chapters/13", true),
    ];
    for (topic, _) in &cases {
        publish(&app, &[("topic", topic), ("data", topic)]).await?;
    }
    publish(&app, &[("topic", "sentinel"), ("data", "sentinel")]).await?;
    let expected: Vec<&str> = cases
        .iter()
        .filter(|c| c.1)
        .map(|c| c.0)
        .chain(["sentinel"])
        .collect();
    assert_eq!(until_sentinel(&mut conn, "sentinel").await?, expected);
    Ok(())
}

/// A subscriber of exact topics is woken by their updates alone, and goes on past the
/// others' even when they have left the history meanwhile: no `reset`, nothing missed.
/// (One of patterns is woken by every update, and reads each.)
#[tokio::test]
async fn a_subscriber_of_exact_topics_goes_past_other_topics_without_a_reset() -> TestResult {
    let app = start_keeping(10).await?;
    let exact = format!("match={}&match={}", enc("mine"), enc("also-mine"));
    let pattern = format!("match_urlpattern={}", enc("https://example.com/:id"));
    let mut exact = subscribe(&app, &exact, &[]).await?;
    let mut pattern = subscribe(&app, &pattern, &[]).await?;
    publish(&app, &[("topic", "mine"), ("data", "first")]).await?;
    assert_eq!(until_sentinel(&mut exact, "first").await?, ["first"]);
    for n in 0..30 {
        let topic = format!("https://example.com/{n}");
        publish(&app, &[("topic", &topic), ("data", &n.to_string())]).await?;
    }
    let all: Vec<String> = (0..30).map(|n| n.to_string()).collect();
    assert_eq!(until_sentinel(&mut pattern, "29").await?, all);
    publish(&app, &[("topic", "also-mine"), ("data", "second")]).await?;
    let next = exact.next_event().await?;
    assert_eq!(next.event, None, "not a reset: {next:?}");
    assert_eq!(next.data.as_deref(), Some("second"));
    Ok(())
}

#[tokio::test]
async fn the_wildcard_matches_every_topic_and_alternate_topics_route_too() -> TestResult {
    let app = start().await?;
    let mut all = subscribe(&app, "match_urlpattern=*", &[]).await?;
    let mut alternate = subscribe(&app, &format!("match={}", enc("urn:alt")), &[]).await?;
    publish(&app, &[("topic", "urn:one"), ("data", "one")]).await?;
    publish(
        &app,
        &[("topic", "urn:two"), ("topic", "urn:alt"), ("data", "two")],
    )
    .await?;
    assert_eq!(until_sentinel(&mut all, "two").await?, ["one", "two"]);
    assert_eq!(until_sentinel(&mut alternate, "two").await?, ["two"]);
    Ok(())
}

#[tokio::test]
async fn a_private_update_reaches_only_tokens_that_grant_one_of_its_topics() -> TestResult {
    let app = start().await?;
    let anonymous = subscribe(&app, "match=*", &[]).await?;
    let books = token(&["subscribe"], &[("https://example.com/books/1", "exact")])?;
    let users = token(
        &["subscribe"],
        &[("https://example.com/users/42/*", "urlpattern")],
    )?;
    let publish_only = token(&["publish"], &[("*", "exact")])?;
    let bearer = |t: &str| format!("Bearer {t}");
    let mut readers = Vec::new();
    for t in [&books, &users, &publish_only] {
        readers.push(
            subscribe(
                &app,
                "match_urlpattern=https://example.com/books/:id&match=sentinel",
                &[("authorization", &bearer(t))],
            )
            .await?,
        );
    }
    let mut anonymous = anonymous;
    // books/1 privately; books/2 privately with an alternate topic under users/42.
    publish(
        &app,
        &[
            ("topic", "https://example.com/books/1"),
            ("data", "b1"),
            ("private", ""),
        ],
    )
    .await?;
    publish(
        &app,
        &[
            ("topic", "https://example.com/books/2"),
            ("topic", "https://example.com/users/42/books/2"),
            ("data", "b2"),
            ("private", "on"),
        ],
    )
    .await?;
    publish(&app, &[("topic", "sentinel"), ("data", "sentinel")]).await?;
    assert_eq!(
        until_sentinel(&mut readers[0], "sentinel").await?,
        ["b1", "sentinel"]
    );
    assert_eq!(
        until_sentinel(&mut readers[1], "sentinel").await?,
        ["b2", "sentinel"]
    );
    assert_eq!(
        until_sentinel(&mut readers[2], "sentinel").await?,
        ["sentinel"],
        "publish grants no reading"
    );
    assert_eq!(
        until_sentinel(&mut anonymous, "sentinel").await?,
        ["sentinel"]
    );
    // Replayed: the same rule, checked again against the token presented now.
    let replay_all = "match=*&last_event_id=earliest";
    let mut anonymous = subscribe(&app, replay_all, &[]).await?;
    assert_eq!(
        until_sentinel(&mut anonymous, "sentinel").await?,
        ["sentinel"]
    );
    let mut reader = subscribe(&app, replay_all, &[("authorization", &bearer(&books))]).await?;
    assert_eq!(
        until_sentinel(&mut reader, "sentinel").await?,
        ["b1", "sentinel"]
    );
    // The cookie carries the token for a browser's EventSource.
    let cookie = format!("__Secure-mercure_access_token={users}");
    let mut by_cookie = subscribe(&app, replay_all, &[("cookie", &cookie)]).await?;
    assert_eq!(
        until_sentinel(&mut by_cookie, "sentinel").await?,
        ["b2", "sentinel"]
    );
    // Never a token in the URL: `access_token` is just another parameter.
    let in_url = format!("{replay_all}&access_token={books}");
    let mut by_url = subscribe(&app, &in_url, &[]).await?;
    assert_eq!(until_sentinel(&mut by_url, "sentinel").await?, ["sentinel"]);
    // With both, the header's token counts and the cookie is ignored.
    let both = [
        ("cookie", cookie.as_str()),
        ("authorization", &bearer(&books)),
    ];
    let mut header_wins = subscribe(&app, replay_all, &both).await?;
    assert_eq!(
        until_sentinel(&mut header_wins, "sentinel").await?,
        ["b1", "sentinel"]
    );
    Ok(())
}

#[tokio::test]
async fn a_publish_answers_200_text_plain_with_the_id_the_stream_carries() -> TestResult {
    let app = start().await?;
    let mut conn = subscribe(&app, "match=t", &[]).await?;
    let response = post(
        &app,
        Some(&publisher()?),
        &[
            ("topic", "t"),
            ("id", "urn:uuid:1"),
            ("data", "a\rb\nc\r\nd"),
            ("type", "book"),
            ("retry", "2500"),
        ],
    )
    .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await?, "urn:uuid:1");
    let event = conn.next_event().await?;
    assert_eq!(event.id.as_deref(), Some("urn:uuid:1"));
    assert_eq!(event.event.as_deref(), Some("book"));
    assert_eq!(event.retry, Some(2500));
    // One data: line per line, split on CR, LF and CRLF; joined by LF when read.
    assert_eq!(event.data.as_deref(), Some("a\nb\nc\nd"));
    // Without an id the hub makes one: a fragment, never a publisher's.
    let made = publish(&app, &[("topic", "t"), ("data", "x")]).await?;
    assert!(made.starts_with('#'), "{made}");
    assert_eq!(conn.next_event().await?.id.as_deref(), Some(made.as_str()));
    // Unknown fields are ignored.
    publish(
        &app,
        &[("topic", "t"), ("data", "y"), ("future-field", "1")],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn every_malformed_publish_is_refused_and_publishes_nothing() -> TestResult {
    let app = start().await?;
    let mut conn = subscribe(&app, "match=*", &[]).await?;
    // Each is a 400 with its code.
    let cases: Vec<(Form, &str)> = vec![
        (vec![("data", "no topic")], "missing-topic"),
        (vec![("topic", "*")], "invalid-topic"),
        (vec![("topic", "ok"), ("topic", "*")], "invalid-topic"),
        (vec![("topic", "/.well-known/mercure")], "reserved-topic"),
        (
            vec![("topic", "/.well-known/mercure/subscriptions/x")],
            "reserved-topic",
        ),
        (
            vec![(
                "topic",
                "https://evil.example/.well-known/mercure/subscriptions/x/y",
            )],
            "reserved-topic",
        ),
        (
            vec![("topic", "/.well-known/%6Dercure/x")],
            "reserved-topic",
        ),
        (
            vec![("topic", "/.well-known/%6d%65rcure")],
            "reserved-topic",
        ),
        (
            vec![("topic", "/books/../.well-known/mercure/x")],
            "reserved-topic",
        ),
        (
            vec![("topic", "/books/%2E%2E/.well-known/mercure")],
            "reserved-topic",
        ),
        (vec![("topic", "a\u{1}b")], "invalid-topic"),
        (vec![("topic", "a\u{85}b")], "invalid-topic"),
        (vec![("topic", "a\u{200b}b")], "invalid-topic"),
        (vec![("topic", "t"), ("id", "#mine")], "invalid-id"),
        (vec![("topic", "t"), ("id", "earliest")], "invalid-id"),
        (vec![("topic", "t"), ("id", "a\nb")], "invalid-id"),
        (vec![("topic", "t"), ("id", "a\u{feff}b")], "invalid-id"),
        (vec![("topic", "t"), ("type", "mercure")], "invalid-type"),
        (vec![("topic", "t"), ("type", "a\u{7f}")], "invalid-type"),
        // Hostile round three (6): the hub's own names however a client compares
        // them, and line separators some clients split lines at.
        (vec![("topic", "t"), ("type", "Mercure")], "invalid-type"),
        (vec![("topic", "t"), ("type", " mercure")], "invalid-type"),
        (vec![("topic", "t"), ("type", "mercure ")], "invalid-type"),
        (vec![("topic", "t"), ("type", "reset")], "invalid-type"),
        (vec![("topic", "t"), ("type", "RESET")], "invalid-type"),
        (vec![("topic", "t"), ("type", "a\u{2028}b")], "invalid-type"),
        (vec![("topic", "t"), ("id", "a\u{2029}b")], "invalid-id"),
        (vec![("topic", "a\u{2028}b")], "invalid-topic"),
        (vec![("topic", "t"), ("retry", "1s")], "invalid-retry"),
        (vec![("topic", "t"), ("retry", "-1")], "invalid-retry"),
        (vec![("topic", "t"), ("retry", "")], "invalid-retry"),
        (
            vec![("topic", "t"), ("retry", "99999999999999999999999")],
            "invalid-retry",
        ),
    ];
    let token = publisher()?;
    for (form, code) in &cases {
        let response = post(&app, Some(&token), form).await?;
        expect_error(response, 400, code)
            .await
            .map_err(|e| format!("{form:?}: {e}"))?;
    }
    // Size limits: 413.
    let long = "t".repeat(sse_topics::MAX_FIELD_BYTES + 1);
    let many: Vec<(&str, &str)> = (0..=sse_topics::MAX_TOPICS)
        .map(|_| ("topic", "t"))
        .collect();
    let huge = "d".repeat(sse_topics::MAX_BODY_BYTES);
    for form in [
        vec![("topic", long.as_str())],
        vec![("topic", "t"), ("id", &long)],
        vec![("topic", "t"), ("type", &long)],
        many,
        vec![("topic", "t"), ("data", &huge)],
    ] {
        expect_error(
            post(&app, Some(&token), &form).await?,
            413,
            "payload-too-large",
        )
        .await?;
    }
    // Not a form; not UTF-8 once decoded.
    expect_error(
        post_raw(
            &app,
            Some(&token),
            "application/json",
            "{\"topic\":\"t\"}".into(),
        )
        .await?,
        415,
        "unsupported-media-type",
    )
    .await?;
    expect_error(
        post_raw(
            &app,
            Some(&token),
            "application/x-www-form-urlencoded",
            "topic=%FF".into(),
        )
        .await?,
        400,
        "invalid-utf8",
    )
    .await?;
    // Nothing of it was published: the next event is the sentinel.
    publish(&app, &[("topic", "sentinel"), ("data", "sentinel")]).await?;
    assert_eq!(until_sentinel(&mut conn, "sentinel").await?, ["sentinel"]);
    // An empty id or type is none, as Mercure's hub reads them (an empty `id:` line
    // would clear the client's last event id): the hub makes the id.
    let id = publish(
        &app,
        &[("topic", "t"), ("data", "e"), ("id", ""), ("type", "")],
    )
    .await?;
    assert!(id.starts_with('#'), "{id}");
    let event = conn.next_event().await?;
    assert_eq!(
        (event.event.as_deref(), event.id.as_deref()),
        (None, Some(id.as_str()))
    );
    Ok(())
}

#[tokio::test]
async fn publishing_needs_a_valid_token_granting_every_topic() -> TestResult {
    let app = start_with(HubArgs {
        jwt_audience: Some("https://hub.example/.well-known/mercure".into()),
        jwt_issuers: vec!["https://issuer.example".parse()?],
        jwks_refresh_secs: 30,
        ..settings()?
    })
    .await?;
    let mut conn = subscribe(&app, "match=*", &[]).await?;
    let detail = |actions: Value, topics: Value| json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics});
    let good = json!({
        "aud": ["other", "https://hub.example/.well-known/mercure"],
        "iss": "https://issuer.example",
        "authorization_details": [detail(json!(["publish"]), json!([{"match": "a"}, {"match": "/b/:x", "match_type": "urlpattern"}]))],
    });
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let form = [("topic", "a"), ("data", "ok")];
    // Each invalid token: 401 with error="invalid_token".
    let invalid = [
        token_with(
            b"another secret of at least 32 bytes",
            Some("at+jwt"),
            good.clone(),
        )?,
        token_with(SECRET, Some("JWT"), good.clone())?,
        token_with(SECRET, None, good.clone())?,
        token_with(SECRET, Some("at+jwt"), with("exp", json!(unix_now() - 10)))?,
        token_with(SECRET, Some("at+jwt"), with("nbf", json!(unix_now() + 600)))?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with("aud", json!("https://another-hub.example")),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with("iss", json!("https://another-issuer.example")),
        )?,
        // One issuer is one string (RFC 7519), not a list that holds it.
        token_with(
            SECRET,
            Some("at+jwt"),
            with("iss", json!(["https://issuer.example"])),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with(
                "authorization_details",
                json!([detail(
                    json!(["publish"]),
                    json!([{"match": "a", "match_type": "regex"}])
                )]),
            ),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with(
                "authorization_details",
                json!([detail(json!(["publish", 7]), json!([{"match": "a"}]))]),
            ),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with(
                "authorization_details",
                json!([detail(json!(["publish"]), json!([]))]),
            ),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with(
                "authorization_details",
                json!([detail(json!(["publish"]), json!(["a"]))]),
            ),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with(
                "authorization_details",
                json!([detail(json!([]), json!([{"match": "a"}]))]),
            ),
        )?,
        token_with(
            SECRET,
            Some("at+jwt"),
            with("authorization_details", json!({"not": "an array"})),
        )?,
        token_with(SECRET, Some("at+jwt"), with("exp", Value::Null))?,
        hs512(&good)?,
        // alg none: a header and claims with no signature.
        format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"at+jwt"}"#),
            b64(good.to_string().as_bytes())
        ),
    ];
    for (i, token) in invalid.iter().enumerate() {
        let response = post(&app, Some(token), &form).await?;
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(challenge("error=\"invalid_token\", ").as_bytes()),
            "token {i}"
        );
        expect_error(response, 401, "invalid-token")
            .await
            .map_err(|e| format!("token {i}: {e}"))?;
    }
    // A malformed presentation: 400 with error="invalid_request", for both methods.
    for authorization in [
        vec!["Basic dXNlcjpwYXNz"],
        vec!["Bearer"],
        vec!["Bearer "],
        vec!["Bearer a", "Bearer b"],
    ] {
        let mut publish = http()
            .post(app.url(HUB))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("topic=a");
        let mut subscribe = http().get(app.url(&format!("{HUB}?match=a")));
        for value in &authorization {
            publish = publish.header("authorization", *value);
            subscribe = subscribe.header("authorization", *value);
        }
        for response in [publish.send().await?, subscribe.send().await?] {
            assert_eq!(
                response.headers()["www-authenticate"],
                challenge("error=\"invalid_request\", ").as_str(),
                "{authorization:?}"
            );
            expect_error(response, 400, "invalid-request").await?;
        }
    }
    // No token: 401 with a bare challenge.
    let response = post(&app, None, &form).await?;
    assert_eq!(
        response.headers()["www-authenticate"],
        challenge("").as_str()
    );
    expect_error(response, 401, "unauthorized").await?;
    // A valid token that grants one topic of two, or subscribe only: 403.
    let valid = token_with(SECRET, Some("application/AT+JWT"), good.clone())?;
    let subscriber = token_with(
        SECRET,
        Some("at+jwt"),
        with(
            "authorization_details",
            json!([detail(json!(["subscribe"]), json!([{"match": "*"}]))]),
        ),
    )?;
    for (token, form) in [
        (&valid, vec![("topic", "a"), ("topic", "c")]),
        (&subscriber, vec![("topic", "a")]),
    ] {
        let response = post(&app, Some(token), &form).await?;
        assert_eq!(
            response.headers()["www-authenticate"],
            challenge("error=\"insufficient_scope\", ").as_str()
        );
        expect_error(response, 403, "forbidden").await?;
    }
    // The valid token publishes on both of its matchers; unknown actions and details
    // of other types grant nothing and break nothing.
    let extra = with(
        "authorization_details",
        json!([
            {"type": "https://other.example/detail", "whatever": true},
            detail(json!(["publish", "launch-rockets"]), json!([{"match": "a"}])),
        ]),
    );
    for token in [valid, token_with(SECRET, Some("at+jwt"), extra)?] {
        assert_eq!(post(&app, Some(&token), &form).await?.status(), 200);
    }
    assert_eq!(
        post(
            &app,
            Some(&token_with(SECRET, Some("at+jwt"), good.clone())?),
            &[("topic", "/b/1"), ("data", "b1")]
        )
        .await?
        .status(),
        200
    );
    assert_eq!(until_sentinel(&mut conn, "b1").await?, ["ok", "ok", "b1"]);
    Ok(())
}

/// `claims` signed with HS512 under the right secret: an algorithm the hub does not list.
fn hs512(claims: &Value) -> TestResult<String> {
    let mut header = Header::new(Algorithm::HS512);
    header.typ = Some("at+jwt".into());
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(SECRET),
    )?)
}

/// The values of a response's `Link` headers.
fn links(response: &reqwest::Response) -> Vec<String> {
    let values = response.headers().get_all("link").iter();
    values
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The `WWW-Authenticate` value expected: `Bearer`, then `error`, then where the hub's
/// metadata is.
fn challenge(error: &str) -> String {
    format!(
        "Bearer {error}resource_metadata=\"https://hub.example/.well-known/oauth-protected-resource/.well-known/mercure\""
    )
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn every_malformed_subscription_is_refused_with_400() -> TestResult {
    let app = start().await?;
    let too_many: String = (0..=sse_topics::matcher::MatchLimits::default().max_matchers)
        .map(|i| format!("match=t{i}&"))
        .collect();
    let too_long = format!(
        "match={}",
        "t".repeat(sse_topics::matcher::MAX_PATTERN_BYTES + 1)
    );
    let cases = [
        ("matchx=t", "unknown-matcher-type"),
        ("Match=t", "unknown-matcher-type"),
        ("MATCH_EXACT=t", "unknown-matcher-type"),
        ("match_regex=t", "unknown-matcher-type"),
        ("match_=t", "unknown-matcher-type"),
        ("match=%FF", "invalid-utf8"),
        ("match=a%01b", "invalid-matcher"),
        ("match=a%C2%85b", "invalid-matcher"),
        ("match=a%E2%80%8Bb", "invalid-matcher"),
        ("match_urlpattern=a%7Fb", "invalid-matcher"),
        (
            "match_urlpattern=https%3A%2F%2Fexample.com%2F(",
            "invalid-matcher",
        ),
        (too_many.as_str(), "too-many-matchers"),
        (too_long.as_str(), "invalid-matcher"),
        ("last_event_id=1", "no-matcher"),
        ("", "no-matcher"),
    ];
    for (query, code) in cases {
        let response = http()
            .get(app.url(&format!("{HUB}?{query}")))
            .send()
            .await?;
        expect_error(response, 400, code)
            .await
            .map_err(|e| format!("{query:.60}: {e}"))?;
    }
    // Other parameters are not the hub's to judge.
    subscribe(&app, "match=t&matte=1&topic=x", &[]).await?;
    Ok(())
}

/// Hostile round three (1): a subscription's patterns are compiled only once its token
/// and its admission are checked, so a refused request compiles nothing: a pattern
/// that does not compile is answered with the token's `401` or admission's `429`.
#[tokio::test]
async fn patterns_are_compiled_only_after_the_token_and_admission() -> TestResult {
    let server = ServerArgs {
        max_streams_per_ip: 1,
        ..ServerArgs::default()
    };
    let app = start_on(server, settings()?).await?;
    let broken = format!("{HUB}?match_urlpattern={}", enc("https://example.com/("));
    let response = http()
        .get(app.url(&broken))
        .bearer_auth("not.a.token")
        .send()
        .await?;
    expect_error(response, 401, "invalid-token").await?;
    let _held = subscribe(&app, "match=t", &[]).await?;
    let response = http().get(app.url(&broken)).send().await?;
    expect_error(response, 429, "too-many-streams").await?;
    Ok(())
}

/// Hostile round three (1): a pattern whose expressions would compile to megabytes
/// (`\p{L}{100}`: 570 MB of RSS for fifty) is refused with `400`, and the same text
/// with URL patterns' ASCII classes (`\w`) is small and accepted.
#[tokio::test]
async fn a_pattern_too_costly_to_compile_is_refused() -> TestResult {
    let app = start().await?;
    let costly = enc(r"/pJ/:x(\p{L}{100})");
    let response = http()
        .get(app.url(&format!("{HUB}?match_urlpattern={costly}")))
        .send()
        .await?;
    expect_error(response, 400, "matcher-too-costly").await?;
    subscribe(
        &app,
        &format!("match_urlpattern={}", enc(r"/pJ/:x(\w{100})")),
        &[],
    )
    .await?;
    // Fifty ordinary patterns fit one request's budget.
    let fifty: String = (0..50)
        .map(|i| format!("match_urlpattern={}&", enc(&format!(r"/p{i}/:id(\d+)"))))
        .collect();
    subscribe(&app, &fifty, &[]).await?;
    Ok(())
}

/// Hostile round three (6): without `--jwt-audience` the hub's URL is its resource
/// identifier, and a token must name it in `aud` (Mercure: hubs MUST verify it), so a
/// token minted for another hub that shares the key is refused.
/// Hostile round three (4): with a `--hub-url` of another path, subscriptions are still
/// announced under `/.well-known/mercure/subscriptions/...`, so that namespace stays
/// reserved too: no publisher can forge an announcement there.
#[tokio::test]
async fn the_reserved_namespace_holds_for_any_hub_path() -> TestResult {
    let app = start_with(HubArgs {
        hub_url: Some("https://hub.example/realtime/.well-known/mercure".parse()?),
        jwt_audience: Some(HUB_URL.into()),
        ..settings()?
    })
    .await?;
    let token = publisher()?;
    for topic in [
        "/.well-known/mercure/subscriptions/exact/%2Fbooks%2F1/urn%3Auuid%3Aforged",
        "/realtime/.well-known/mercure/x",
        "https://other.example/.well-known/mercure",
    ] {
        let response = post(&app, Some(&token), &[("topic", topic), ("data", "d")]).await?;
        expect_error(response, 400, "reserved-topic")
            .await
            .map_err(|e| format!("{topic}: {e}"))?;
    }
    publish(&app, &[("topic", "/realtime/books/1"), ("data", "d")]).await?;
    Ok(())
}

#[tokio::test]
async fn a_token_must_name_this_hub_as_its_audience() -> TestResult {
    let app = start().await?;
    let claims = |aud: Value| {
        let everything =
            json!([{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}]);
        json!({"aud": aud, "authorization_details": everything})
    };
    let form = [("topic", "a"), ("data", "x")];
    let others = [
        json!("https://another-hub.example/.well-known/mercure"),
        json!(null),
        json!([]),
    ];
    for aud in others {
        let token = token_with(SECRET, Some("at+jwt"), claims(aud.clone()))?;
        let response = post(&app, Some(&token), &form).await?;
        expect_error(response, 401, "invalid-token")
            .await
            .map_err(|e| format!("aud {aud}: {e}"))?;
    }
    let token = token_with(SECRET, Some("at+jwt"), claims(json!(["urn:x", HUB_URL])))?;
    assert_eq!(post(&app, Some(&token), &form).await?.status(), 200);
    Ok(())
}

/// Hostile round three (6): the token's cookie twice is ambiguous (which one counts
/// would be the browser's order, and a sibling domain can add one): `400
/// invalid_request`, as for two `Authorization` headers. The same for a cookie whose
/// name only decodes to the token's (salvo's jar decodes names, so it would be a second
/// one, and browsers check the `__Secure-` prefix on the name as written).
#[tokio::test]
async fn the_token_cookie_twice_or_under_an_encoded_name_is_refused() -> TestResult {
    let app = start().await?;
    let reader = token(&["subscribe"], &[("*", "exact")])?;
    for cookie in [
        format!(
            "__Secure-mercure_access_token={reader}; other=1; __Secure-mercure_access_token={reader}"
        ),
        format!("__Secure-mercure_access_token={reader}; __Secure-mercure_access_toke%6E={reader}"),
        format!("%5F_Secure-mercure_access_token={reader}"),
    ] {
        let response = http()
            .get(app.url(&format!("{HUB}?match=t")))
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(
            response.headers()["www-authenticate"],
            challenge("error=\"invalid_request\", ").as_str(),
            "{cookie}"
        );
        expect_error(response, 400, "invalid-request").await?;
    }
    let once = format!("other=1; __Secure-mercure_access_token={reader}");
    subscribe(&app, "match=t", &[("cookie", &once)]).await?;
    Ok(())
}

/// Hostile round three (6): a `reset` names the oldest and newest retained updates by
/// the ids clients receive (the publisher's, or `#...`), so sending one back resumes.
#[tokio::test]
async fn a_reset_names_ids_a_client_can_send_back() -> TestResult {
    let app = start().await?;
    publish(&app, &[("topic", "t"), ("data", "1"), ("id", "first")]).await?;
    let second = publish(&app, &[("topic", "t"), ("data", "2")]).await?;
    let mut conn = subscribe(&app, "match=t&last_event_id=nope", &[]).await?;
    let reset = conn.next_event().await?;
    assert_eq!(reset.event.as_deref(), Some("reset"));
    let reset: Value = serde_json::from_str(reset.data.as_deref().unwrap_or("{}"))?;
    assert_eq!(
        (&reset["oldest"], &reset["latest"]),
        (&json!("first"), &json!(second))
    );
    let mut conn = subscribe(&app, "match=t&last_event_id=first", &[]).await?;
    let next = conn.next_event().await?;
    assert_eq!(
        (next.event.as_deref(), next.id.as_deref()),
        (None, Some(second.as_str()))
    );
    Ok(())
}

/// Hostile round three (1, after the attacker's second look): what one client's open
/// subscriptions cost to match is bounded (`--max-pattern-weight-per-client`): past
/// it `429 patterns-too-costly`, until a stream ends; patterns without custom
/// expressions weigh nothing.
#[tokio::test]
async fn the_expressions_one_client_holds_are_bounded() -> TestResult {
    use sse_topics::matcher::{MatchLimits, MatchType, Matchers};
    let costly = r"/:x([a-y]*[a-y]{0,40}z)";
    let probe = Matchers::new(HUB_URL.parse()?, MatchLimits::default());
    let compiled = probe.compile(&[(MatchType::UrlPattern, costly.to_owned())])?;
    let weight = compiled.first().ok_or("nothing compiled")?.weight;
    assert!(weight > 0);
    let limits = MatchLimits {
        client_weight: weight + weight / 2,
        ..MatchLimits::default()
    };
    let app = start_with(HubArgs {
        limits,
        ..settings()?
    })
    .await?;
    let query = format!("match_urlpattern={}", enc(costly));
    let first = subscribe(&app, &query, &[]).await?;
    let refused = http()
        .get(app.url(&format!("{HUB}?{query}")))
        .send()
        .await?;
    expect_error(refused, 429, "patterns-too-costly").await?;
    // Whole segments and literals weigh nothing.
    let plain: String = (0..50)
        .map(|i| format!("match_urlpattern={}&", enc(&format!("/p{i}/:id"))))
        .collect();
    subscribe(&app, &plain, &[]).await?;
    drop(first);
    wait_until(
        WAIT,
        "the weight of the closed stream to be released",
        || async {
            let response = http()
                .get(app.url(&format!("{HUB}?{query}")))
                .send()
                .await?;
            Ok(response.status() == 200)
        },
    )
    .await?;
    Ok(())
}

/// The same bound holds for Mercure 0.x's URI templates (`--protocol-compat 8`): a
/// template weighs what its expression holds, not its text (`{+a}` is four bytes that
/// expand to a costly expression), so a client cannot hold dozens of streams of them
/// and make every update cost seconds to match.
#[tokio::test]
async fn the_templates_one_client_holds_are_bounded_too() -> TestResult {
    let app = start_with(HubArgs {
        protocol_compat: Some(8),
        ..settings()?
    })
    .await?;
    let mut held = Vec::new();
    for stream in 0..10 {
        let query: String = (0..25)
            .map(|i| {
                let template = "{+a}x".repeat(24) + &format!("{{+b{stream}x{i}}}");
                format!("topic={}&", enc(&template))
            })
            .collect();
        let response = http()
            .get(app.url(&format!("{HUB}?{query}")))
            .send()
            .await?;
        if response.status() == 429 {
            expect_error(response, 429, "patterns-too-costly").await?;
            assert!(stream > 0, "the first stream is within the bound");
            return Ok(());
        }
        assert_eq!(response.status(), 200);
        held.push(response);
    }
    Err("ten streams of 25 costly templates each were all admitted".into())
}

#[tokio::test]
async fn a_hub_that_wants_tokens_refuses_anonymous_and_invalid_subscribers() -> TestResult {
    let app = start_with(HubArgs {
        anonymous: false,
        ..settings()?
    })
    .await?;
    let response = http()
        .get(app.url(&format!("{HUB}?match=t")))
        .send()
        .await?;
    assert_eq!(
        response.headers()["www-authenticate"],
        challenge("").as_str()
    );
    expect_error(response, 401, "unauthorized").await?;
    let expired = token_with(SECRET, Some("at+jwt"), json!({"exp": unix_now() - 1}))?;
    let response = http()
        .get(app.url(&format!("{HUB}?match=t")))
        .bearer_auth(expired)
        .send()
        .await?;
    expect_error(response, 401, "invalid-token").await?;
    let reader = token(&["subscribe"], &[("t", "exact")])?;
    subscribe(
        &app,
        "match=t",
        &[("authorization", &format!("Bearer {reader}"))],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() -> TestResult {
    let app = start().await?;
    let short = token_with(SECRET, Some("at+jwt"), json!({"exp": unix_now() + 2}))?;
    let mut conn = subscribe(
        &app,
        "match=t",
        &[("authorization", &format!("Bearer {short}"))],
    )
    .await?;
    conn.expect_end(Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn last_event_id_replays_after_the_earliest_update_with_that_id() -> TestResult {
    let app = start().await?;
    for (id, data) in [("x", "1"), ("y", "2"), ("x", "3")] {
        publish(&app, &[("topic", "t"), ("id", id), ("data", data)]).await?;
    }
    let made = publish(&app, &[("topic", "t"), ("data", "4")]).await?;
    publish(&app, &[("topic", "t"), ("id", "z"), ("data", "5")]).await?;
    let replay = async |query: &str,
                        headers: &[(&str, &str)]|
           -> TestResult<(Option<String>, Vec<String>)> {
        let mut conn = subscribe(&app, query, headers).await?;
        let header = conn
            .headers
            .get("mercure-last-event-id")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        Ok((header, until_sentinel(&mut conn, "5").await?))
    };
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // A reused id resolves to its earliest update; everything after it comes, once.
    assert_eq!(
        replay("match=t&last_event_id=x", &[]).await?,
        (Some("x".into()), strings(&["2", "3", "4", "5"]))
    );
    // The header wins over the query parameter.
    assert_eq!(
        replay("match=t&last_event_id=x", &[("last-event-id", "y")]).await?,
        (Some("y".into()), strings(&["3", "4", "5"]))
    );
    // A hub-made id resumes too.
    assert_eq!(
        replay("match=t", &[("last-event-id", &made)]).await?,
        (Some(made.clone()), strings(&["5"]))
    );
    // earliest: everything retained.
    assert_eq!(
        replay("match=t&last_event_id=earliest", &[]).await?.1,
        ["1", "2", "3", "4", "5"]
    );
    // An id the hub never had: said with a reset, and the header says earliest.
    let mut conn = subscribe(&app, "match=t&last_event_id=never", &[]).await?;
    assert_eq!(conn.headers["mercure-last-event-id"], "earliest");
    assert_eq!(conn.next_event().await?.event.as_deref(), Some("reset"));
    assert_eq!(
        until_sentinel(&mut conn, "5").await?,
        ["1", "2", "3", "4", "5"]
    );
    // No id asked for: no header, and only what comes next.
    let mut conn = subscribe(&app, "match=t", &[]).await?;
    assert!(conn.headers.get("mercure-last-event-id").is_none());
    publish(&app, &[("topic", "t"), ("data", "6")]).await?;
    assert_eq!(conn.next_event().await?.data.as_deref(), Some("6"));
    Ok(())
}

#[tokio::test]
async fn the_page_and_resources_advertise_the_hub() -> TestResult {
    let app = start().await?;
    for path in ["/", "/books/1"] {
        let response = http().get(app.url(path)).send().await?;
        assert_eq!(response.status(), 200, "{path}");
        let links = links(&response);
        assert!(
            links
                .contains(&"<https://hub.example/.well-known/mercure>; rel=\"mercure\"".to_owned()),
            "{path}: {links:?}"
        );
    }
    let response = http().get(app.url("/books/7")).send().await?;
    let links = links(&response);
    assert!(
        links.contains(&"</books/7>; rel=\"self\"".to_owned()),
        "{links:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_hub_publishes_its_protected_resource_metadata() -> TestResult {
    let app = start_with(HubArgs {
        jwt_audience: Some("urn:hub".into()),
        ..settings()?
    })
    .await?;
    let path = "/.well-known/oauth-protected-resource/.well-known/mercure";
    let metadata: Value = http().get(app.url(path)).send().await?.json().await?;
    assert_eq!(
        metadata,
        json!({
            "resource": "urn:hub",
            "authorization_details_types_supported": [DETAIL_TYPE],
            "bearer_methods_supported": ["header"],
            "mercure_cookie": "__Secure-mercure_access_token",
        })
    );
    Ok(())
}

/// `--protocol-compat 8`: a Mercure 0.x subscriber as it is (`topic=` selectors, exact
/// or URI templates, `lastEventID`, `Last-Event-ID` on the response) gets what 0.x's
/// hub sent it; without the option, `topic=` is no matcher (`400`) and `lastEventID`
/// no cursor.
#[tokio::test]
async fn mercure_0x_subscribers_are_served_with_protocol_compat_8() -> TestResult {
    let compat = HubArgs {
        protocol_compat: Some(8),
        ..settings()?
    };
    let app = start_with(compat).await?;
    let books = "https://example.com/books/{id}";
    let files = "https://example.com/files/{+path}";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("topic", books),
            ("topic", files),
            ("topic", "urn:exact"),
            ("topic", "https://example.com/{"),
        ])
        .finish();
    let mut conn = subscribe(&app, &query, &[]).await?;
    let first = publish(
        &app,
        &[("topic", "https://example.com/books/1"), ("data", "book 1")],
    )
    .await?;
    for (topic, data) in [
        ("https://example.com/books/1/pages/2", "a page"), // `{id}` is one segment
        ("https://example.com/files/a/b", "a file"),       // `{+path}` takes `/`
        ("urn:exact", "exact"),
        ("urn:other", "other"),
        ("https://example.com/{", "not a template: exactly"),
        (
            "https://example.com/x",
            "not matched by the text that is no template",
        ),
        ("https://example.com/books/2", "sentinel"),
    ] {
        publish(&app, &[("topic", topic), ("data", data)]).await?;
    }
    let seen = until_sentinel(&mut conn, "sentinel").await?;
    let want = [
        "book 1",
        "a file",
        "exact",
        "not a template: exactly",
        "sentinel",
    ];
    assert_eq!(seen, want);
    // `*` is every topic, and `lastEventID` resumes after the id, as the header would;
    // the cursor comes back as `Last-Event-ID` too.
    let query = format!(
        "topic=*&lastEventID={}",
        url::form_urlencoded::byte_serialize(first.as_bytes()).collect::<String>()
    );
    let mut resumed = subscribe(&app, &query, &[]).await?;
    assert_eq!(resumed.headers["last-event-id"], first.as_str());
    assert_eq!(resumed.headers["mercure-last-event-id"], first.as_str());
    assert_eq!(resumed.next_event().await?.data.as_deref(), Some("a page"));

    // Without the option: `topic=` alone is no matcher, and `lastEventID` no cursor.
    let app = start().await?;
    let response = http()
        .get(app.url(&format!("{HUB}?topic=urn:exact")))
        .send()
        .await?;
    let body = expect_error(response, 400, "no-matcher").await?;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--protocol-compat"),
        "{body}"
    );
    let id = publish(&app, &[("topic", "urn:a"), ("data", "before")]).await?;
    let mut live = subscribe(
        &app,
        &format!(
            "match=*&lastEventID={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        ),
        &[],
    )
    .await?;
    assert!(live.headers.get("last-event-id").is_none());
    publish(&app, &[("topic", "urn:a"), ("data", "after")]).await?;
    assert_eq!(live.next_event().await?.data.as_deref(), Some("after"));
    Ok(())
}

/// A Mercure 0.x token: HS256 under the test secret, no `typ`, `aud` or `exp`.
fn token_0x(claims: Value) -> TestResult<String> {
    let header = Header::new(Algorithm::HS256);
    let key = EncodingKey::from_secret(SECRET);
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

#[tokio::test]
async fn mercure_0x_tokens_are_read_with_protocol_compat_8() -> TestResult {
    let compat = HubArgs {
        protocol_compat: Some(8),
        ..settings()?
    };
    let app = start_with(compat).await?;
    let books = "https://example.com/books/{id}";
    // Publishes with a 0.x token: its `mercure.publish` selectors are templates too.
    let writer = token_0x(json!({"mercure": {"publish": ["https://example.com/{+any}"]}}))?;
    let post_private = async |topic: &str, data: &str| -> TestResult<reqwest::Response> {
        let form = [("topic", topic), ("data", data), ("private", "on")];
        post(&app, Some(&writer), &form).await
    };
    assert_eq!(
        post_private("https://example.com/x", "ok").await?.status(),
        200
    );
    let outside = post_private("urn:elsewhere", "refused").await?;
    expect_error(outside, 403, "forbidden").await?;

    // A 0.x subscriber's token, plain and namespaced, in the three places 0.x put it:
    // the header, the `authorization` query parameter and the `mercureAuthorization`
    // cookie. Each reads the private updates its `mercure.subscribe` templates allow.
    let reader = token_0x(json!({"mercure": {"subscribe": [books]}}))?;
    let namespaced = token_0x(json!({"https://mercure.rocks/": {"subscribe": [books]}}))?;
    let topic = format!("topic={}&topic=sentinel", enc(books));
    let bearer = format!("Bearer {reader}");
    let cookie = format!("mercureAuthorization={namespaced}");
    let mut conns = vec![
        subscribe(&app, &topic, &[("authorization", &bearer)]).await?,
        subscribe(&app, &format!("{topic}&authorization={reader}"), &[]).await?,
        subscribe(&app, &topic, &[("cookie", &cookie)]).await?,
    ];
    for (topic, data) in [
        ("https://example.com/books/1", "book 1"),
        ("https://example.com/books/1/secret", "not a book"),
    ] {
        assert_eq!(post_private(topic, data).await?.status(), 200);
    }
    publish(&app, &[("topic", "sentinel"), ("data", "sentinel")]).await?;
    for conn in &mut conns {
        assert_eq!(
            until_sentinel(conn, "sentinel").await?,
            ["book 1", "sentinel"]
        );
    }

    // A token with `authorization_details` is a 1.0 token, held to the 1.0 checks
    // (`typ`, `aud`, `exp`) in either mode; the `authorization` parameter counts once.
    let detail = json!({"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]});
    let half = token_0x(json!({"authorization_details": [detail]}))?;
    let response = post(&app, Some(&half), &[("topic", "urn:a"), ("data", "x")]).await?;
    expect_error(response, 401, "invalid-token").await?;
    let twice = format!("{HUB}?topic=urn%3Aa&authorization={reader}&authorization={reader}");
    let response = http().get(app.url(&twice)).send().await?;
    expect_error(response, 400, "invalid-request").await?;
    // What a 0.x token has is checked: an `aud` naming another hub is refused, this
    // hub's is not.
    let form = [("topic", "urn:a"), ("data", "x")];
    for (aud, status) in [
        ("https://other.example/.well-known/mercure", 401),
        (HUB_URL, 200),
    ] {
        let token = token_0x(json!({"aud": aud, "mercure": {"publish": ["*"]}}))?;
        assert_eq!(
            post(&app, Some(&token), &form).await?.status(),
            status,
            "{aud}"
        );
    }

    // Without the option, a 0.x token is no token: refused in the header, and not even
    // looked for in the query or the 0.x cookie (those subscribers are anonymous).
    let app = start().await?;
    let response = post(&app, Some(&writer), &[("topic", "urn:a"), ("data", "x")]).await?;
    expect_error(response, 401, "invalid-token").await?;
    let query = format!(
        "match={}&match=sentinel",
        enc("https://example.com/books/1")
    );
    let mut conns = vec![
        subscribe(&app, &format!("{query}&authorization={reader}"), &[]).await?,
        subscribe(&app, &query, &[("cookie", &cookie)]).await?,
    ];
    let form = [
        ("topic", "https://example.com/books/1"),
        ("data", "private"),
        ("private", "on"),
    ];
    post(&app, Some(&publisher()?), &form).await?;
    publish(&app, &[("topic", "sentinel"), ("data", "sentinel")]).await?;
    for conn in &mut conns {
        assert_eq!(until_sentinel(conn, "sentinel").await?, ["sentinel"]);
    }
    Ok(())
}
