//! Active subscriptions (`--subscriptions`) over real TCP: the announcements of every
//! matcher of every subscriber (private, type `mercure`, on the hub's own topics) and
//! the subscriptions API, each only for tokens that grant them.

use std::sync::Arc;

use serde_json::{Value, json};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::publish::Publisher;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, WAIT, expect_error, http, reqwest, wait_until,
};
use sse_shared::{HistoryLimits, Hub, ServerArgs};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};
use sse_topics::{HubArgs, TopicHub};

const SECRET: &[u8] = b"a test secret of at least 32 bytes!";
const HUB: &str = "/.well-known/mercure";
const HUB_URL: &str = "https://hub.example/.well-known/mercure";

async fn start() -> TestResult<TestApp> {
    start_keeping(HistoryLimits::default()).await
}

async fn start_keeping(limits: HistoryLimits) -> TestResult<TestApp> {
    start_with(limits, None).await
}

async fn start_with(limits: HistoryLimits, protocol_compat: Option<u8>) -> TestResult<TestApp> {
    let settings = HubArgs {
        hub_url: Some(HUB_URL.parse()?),
        public_urls: Vec::new(),
        jwt_audience: None,
        jwt_issuers: Vec::new(),
        jwks_refresh_secs: 30,
        cookie_name: "__Secure-mercure_access_token".into(),
        anonymous: true,
        subscriptions: true,
        protocol_compat,
        limits: Default::default(),
    };
    TestApp::start(ServerArgs::default(), |streams| {
        let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
        match TopicHub::new(Publisher::in_memory(hub), settings, SECRET) {
            Ok(topics) => sse_topics::router(&Arc::clone(&topics)),
            Err(_) => salvo::Router::new(),
        }
    })
    .await
}

/// A token whose details are `details` (each `[actions, topics, payload]`).
fn token(details: Value) -> TestResult<String> {
    let claims = json!({"exp": unix_now() + 600, "aud": HUB_URL, "authorization_details": details});
    Ok(sign(SECRET, &claims)?)
}

fn detail(actions: &[&str], topics: Value) -> Value {
    json!({"type": DETAIL_TYPE, "actions": actions, "topics": topics})
}

async fn subscribe(app: &TestApp, query: &str, token: Option<&str>) -> TestResult<SseConnection> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let mut conn = SseConnection::open(&app.url(&format!("{HUB}?{query}")), &headers).await?;
    if conn.status != 200 {
        return Err(format!("subscribe refused: {}", conn.status).into());
    }
    conn.next().await?; // retry:
    Ok(conn)
}

/// The next `mercure` event's document.
async fn next_announcement(conn: &mut SseConnection) -> TestResult<Value> {
    loop {
        let event = conn.next_event().await?;
        if event.event.as_deref() == Some("mercure") {
            return Ok(serde_json::from_str(
                event.data.as_deref().unwrap_or("null"),
            )?);
        }
    }
}

const ALL_SUBSCRIPTIONS: &str = "match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2F%3Atype%2F%3Amatch%2F%3Asubscriber&match=sentinel";

#[tokio::test]
async fn every_matcher_is_announced_privately_and_its_end_too() -> TestResult {
    let app = start().await?;
    let watcher_token = token(json!([detail(
        &["subscribe"],
        json!([{"match": "/.well-known/mercure/subscriptions/:t/:m/:s", "match_type": "urlpattern"}])
    )]))?;
    let mut watcher = subscribe(&app, ALL_SUBSCRIPTIONS, Some(&watcher_token)).await?;
    let own = next_announcement(&mut watcher).await?; // the watcher's own two matchers
    next_announcement(&mut watcher).await?;
    assert_eq!(own["match_type"], "urlpattern");
    let mut anonymous = subscribe(&app, ALL_SUBSCRIPTIONS, None).await?;
    next_announcement(&mut watcher).await?; // the anonymous one's, twice
    next_announcement(&mut watcher).await?;

    // A subscriber with a payload for its exact matcher (the first matching detail).
    let subscriber_token = token(json!([
        {"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "urn:a"}], "payload": {"tenant": "acme"}},
        {"type": DETAIL_TYPE, "actions": ["subscribe"], "topics": [{"match": "*"}], "payload": {"default": true}},
    ]))?;
    let subscriber = subscribe(
        &app,
        "match=urn%3Aa&match_urlpattern=https%3A%2F%2Fexample.com%2F%3Aselector",
        Some(&subscriber_token),
    )
    .await?;
    let (a, b) = (
        next_announcement(&mut watcher).await?,
        next_announcement(&mut watcher).await?,
    );
    let id = a["subscriber"].as_str().unwrap_or_default().to_owned();
    assert!(
        id.starts_with("urn:uuid:") && b["subscriber"] == id.as_str(),
        "{a} {b}"
    );
    assert_eq!(
        a["id"],
        format!(
            "/.well-known/mercure/subscriptions/exact/urn%3Aa/{}",
            id.replace(':', "%3A")
        )
    );
    assert_eq!(
        (&a["type"], &a["match_type"], &a["match"], &a["active"]),
        (
            &json!("subscription"),
            &json!("exact"),
            &json!("urn:a"),
            &json!(true)
        )
    );
    assert_eq!(a["payload"], json!({"tenant": "acme"}));
    assert_eq!(
        b["id"],
        format!(
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/{}",
            id.replace(':', "%3A")
        )
    );
    assert_eq!(b["payload"], json!({"default": true}));

    // Its stream ends: both subscriptions are announced inactive.
    drop(subscriber);
    let (a_end, b_end) = (
        next_announcement(&mut watcher).await?,
        next_announcement(&mut watcher).await?,
    );
    let mut ended = [a_end["id"].clone(), b_end["id"].clone()];
    ended.sort_by_key(|v| v.to_string());
    let mut started = [a["id"].clone(), b["id"].clone()];
    started.sort_by_key(|v| v.to_string());
    assert_eq!(ended, started);
    assert_eq!(
        (&a_end["active"], &b_end["active"]),
        (&json!(false), &json!(false))
    );

    // The anonymous subscriber saw none of it: its next event is the sentinel.
    let publisher = token(json!([detail(&["publish"], json!([{"match": "*"}]))]))?;
    let response = http()
        .post(app.url(HUB))
        .bearer_auth(&publisher)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=sentinel&data=sentinel")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(
        anonymous.next_event().await?.data.as_deref(),
        Some("sentinel")
    );
    Ok(())
}

/// Hostile round three (5): a visitor who opens and closes streams of fifty matchers
/// makes a hundred announcements a cycle. They are kept apart, so they never evict the
/// updates clients resume from: after eleven cycles against a history of 20 updates,
/// a resume gets exactly the updates after its id, and `earliest` all of them.
#[tokio::test]
async fn mercure_0x_subscriptions_keep_their_shape_with_protocol_compat_8() -> TestResult {
    let app = start_with(HistoryLimits::default(), Some(8)).await?;
    // Every subscription, 1.0's (type, match, subscriber) and 0.x's (topic, subscriber).
    let everything = "/.well-known/mercure/subscriptions/*";
    let watcher_token = token(json!([detail(
        &["subscribe"],
        json!([{"match": everything, "match_type": "urlpattern"}])
    )]))?;
    let query = format!(
        "match_urlpattern={}",
        everything.replace('/', "%2F").replace('*', "%2A")
    );
    let mut watcher = subscribe(&app, &query, Some(&watcher_token)).await?;
    next_announcement(&mut watcher).await?; // the watcher's own
    // A 0.x subscriber with a 0.x token (no typ, aud or exp): a selector's own payload
    // first, else the claim's `payload` (Mercure's fallback in that mode).
    let claims = json!({"mercure": {
        "subscribe": [{"match": "urn:a", "payload": {"tenant": "acme"}}, "urn:{b}"],
        "payload": {"default": true},
    }});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let legacy = jsonwebtoken::encode(&header, &claims, &key)?;
    let _subscriber = subscribe(&app, "match=urn%3Aa&topic=urn%3A%7Bb%7D", Some(&legacy)).await?;
    let (a, b) = (
        next_announcement(&mut watcher).await?,
        next_announcement(&mut watcher).await?,
    );
    assert_eq!(
        (&a["match"], &a["payload"]),
        (&json!("urn:a"), &json!({"tenant": "acme"}))
    );
    // The `topic=` one in 0.x's shape: `topic`, no type in its path.
    let id = b["subscriber"]
        .as_str()
        .unwrap_or_default()
        .replace(':', "%3A");
    let path = format!("/.well-known/mercure/subscriptions/urn%3A%7Bb%7D/{id}");
    assert_eq!(
        (&b["id"], &b["topic"], &b["payload"]),
        (&json!(path), &json!("urn:{b}"), &json!({"default": true}))
    );
    assert!(
        b.get("match").is_none() && b.get("match_type").is_none(),
        "{b}"
    );
    // The API answers 0.x's paths: the topic's collection, and the one subscription.
    let get = async |path: &str| -> TestResult<Value> {
        let response = http()
            .get(app.url(path))
            .bearer_auth(&watcher_token)
            .send()
            .await?;
        assert_eq!(response.status(), 200, "{path}");
        Ok(response.json().await?)
    };
    let listed = get("/.well-known/mercure/subscriptions/urn%3A%7Bb%7D").await?;
    assert_eq!(listed["subscriptions"], json!([b]));
    assert_eq!(get(&path).await?, b);
    Ok(())
}

#[tokio::test]
async fn announcements_never_evict_the_updates_clients_resume_from() -> TestResult {
    let app = start_keeping(HistoryLimits {
        max_events: 20,
        ..HistoryLimits::default()
    })
    .await?;
    let publisher = token(json!([detail(&["publish"], json!([{"match": "*"}]))]))?;
    for n in 0..20 {
        let id = format!("u{n}");
        let response = http()
            .post(app.url(HUB))
            .bearer_auth(&publisher)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("topic=t&data={id}&id={id}"))
            .send()
            .await?;
        assert_eq!(response.status(), 200);
    }
    let fifty: String = (0..50).map(|i| format!("match=m{i}&")).collect();
    for _ in 0..11 {
        drop(subscribe(&app, &fifty, None).await?);
    }
    // Every cycle's end announced (a stream's end is announced once it is gone).
    let reader = token(json!([detail(&["subscribe"], json!([{"match": "*"}]))]))?;
    wait_until(WAIT, "every churned subscription ended", || async {
        let all: Value = http()
            .get(app.url("/.well-known/mercure/subscriptions"))
            .bearer_auth(&reader)
            .send()
            .await?
            .json()
            .await?;
        Ok(all["subscriptions"].as_array().is_some_and(Vec::is_empty))
    })
    .await?;
    for (query, first) in [
        ("match=t&last_event_id=u9", 10),
        ("match=t&last_event_id=earliest", 0),
    ] {
        let mut conn = subscribe(&app, query, None).await?;
        for n in first..20 {
            let event = conn.next_event().await?;
            let seen = (event.event.as_deref(), event.id.as_deref());
            assert_eq!(seen, (None, Some(format!("u{n}").as_str())), "{query}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_api_lists_active_subscriptions_to_tokens_that_grant_them() -> TestResult {
    let app = start().await?;
    let subscriber = subscribe(&app, "match=urn%3Aa", None).await?;
    let reader = token(json!([detail(&["subscribe"], json!([{"match": "*"}]))]))?;
    let get = async |path: &str, token: Option<&str>| -> TestResult<reqwest::Response> {
        let mut request = http().get(app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    };
    // The collection.
    let response = get("/.well-known/mercure/subscriptions", Some(&reader)).await?;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("application/json")
    );
    let link = response.headers()["link"].to_str()?.to_owned();
    assert!(
        link.contains("rel=\"mercure\"")
            && link.contains("last-event-id=\"#")
            && link.contains("type=\"mercure\""),
        "{link}"
    );
    let all: Value = response.json().await?;
    assert_eq!(
        (&all["id"], &all["type"]),
        (
            &json!("/.well-known/mercure/subscriptions"),
            &json!("subscriptions")
        )
    );
    let docs = all["subscriptions"].as_array().ok_or("no array")?;
    assert_eq!(docs.len(), 1);
    let subscriber_id = docs[0]["subscriber"]
        .as_str()
        .ok_or("no subscriber")?
        .to_owned();
    // One matcher's collection, and one subscription.
    let per_matcher: Value = get(
        "/.well-known/mercure/subscriptions/exact/urn%3Aa",
        Some(&reader),
    )
    .await?
    .json()
    .await?;
    assert_eq!(per_matcher["subscriptions"], all["subscriptions"]);
    let single_path = format!(
        "/.well-known/mercure/subscriptions/exact/urn%3Aa/{}",
        subscriber_id.replace(':', "%3A")
    );
    let single: Value = get(&single_path, Some(&reader)).await?.json().await?;
    assert_eq!(single, docs[0]);
    // Refusals: unknown subscription 404, no token 401, a token for another path 403.
    expect_error(
        get(
            "/.well-known/mercure/subscriptions/exact/urn%3Aa/urn%3Auuid%3Anobody",
            Some(&reader),
        )
        .await?,
        404,
        "not-found",
    )
    .await?;
    expect_error(
        get("/.well-known/mercure/subscriptions", None).await?,
        401,
        "unauthorized",
    )
    .await?;
    let narrow = token(json!([detail(
        &["subscribe"],
        json!([{"match": "/.well-known/mercure/subscriptions/exact/urn%3Ab"}])
    )]))?;
    expect_error(
        get(
            "/.well-known/mercure/subscriptions/exact/urn%3Aa",
            Some(&narrow),
        )
        .await?,
        403,
        "forbidden",
    )
    .await?;
    assert_eq!(
        get(
            "/.well-known/mercure/subscriptions/exact/urn%3Ab",
            Some(&narrow)
        )
        .await?
        .status(),
        200
    );
    // Once its stream ends, it leaves the list.
    drop(subscriber);
    wait_until(WAIT, "the ended subscription to leave the list", || async {
        let all: Value = get("/.well-known/mercure/subscriptions", Some(&reader))
            .await?
            .json()
            .await?;
        Ok(all["subscriptions"].as_array().is_some_and(Vec::is_empty))
    })
    .await?;
    Ok(())
}
