//! sse-notify over real TCP, read by an independent SSE parser (`sse-stream`).

use std::sync::Arc;

use serde_json::{Value, json};
use sse_notify::session::SessionKey;
use sse_notify::{Notification, Notifier};
use sse_shared::testing::{SseConnection, TestApp, TestResult, http};
use sse_shared::{EventLog, HistoryLimits, Hub, ServerArgs};

const ADMIN: &str = "test-admin-token-0123456789";

async fn start() -> TestResult<(TestApp, Hub<Notification>)> {
    let mut hub = None;
    let app = TestApp::start(ServerArgs::default(), |streams| {
        let created = Hub::new(HistoryLimits::default(), streams.metrics().clone());
        hub = Some(created.clone());
        let notifier: Arc<Notifier> = Notifier::new(
            EventLog::Memory(created),
            ADMIN.into(),
            SessionKey::new("k".repeat(32)),
        );
        sse_notify::router(streams, &notifier)
    })
    .await?;
    Ok((app, hub.ok_or("no hub")?))
}

async fn publish(app: &TestApp, body: Value) -> TestResult<reqwest_response::Response> {
    Ok(http()
        .post(app.url("/notifications"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .json(&body)
        .send()
        .await?)
}

mod reqwest_response {
    pub use sse_shared::testing::reqwest::Response;
}

/// Signs in as `user` and returns the `cookie` header value to send.
async fn sign_in(app: &TestApp, user: &str) -> TestResult<String> {
    let response = http()
        .post(app.url("/session"))
        .json(&json!({ "user": user }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .ok_or("no set-cookie")?
        .to_owned();
    let lower = set_cookie.to_ascii_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=strict"),
        "{set_cookie}"
    );
    Ok(set_cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn listen(
    app: &TestApp,
    cookie: Option<&str>,
    last_id: Option<&str>,
) -> TestResult<SseConnection> {
    let mut headers = Vec::new();
    if let Some(cookie) = cookie {
        headers.push(("cookie", cookie));
    }
    if let Some(id) = last_id {
        headers.push(("last-event-id", id));
    }
    let mut conn = SseConnection::open(&app.url("/notifications/stream"), &headers).await?;
    assert_eq!(conn.status, 200);
    assert_eq!(conn.next().await?.retry, Some(3000));
    Ok(conn)
}

/// The titles of the next `n` notifications.
async fn titles(conn: &mut SseConnection, n: usize) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let event = conn.next_event().await?;
        assert_eq!(event.event.as_deref(), Some("notification"));
        let data: Value = serde_json::from_str(event.data.as_deref().unwrap_or_default())?;
        assert_eq!(
            event.id.as_deref(),
            data["id"].as_str(),
            "the event id is the notification's"
        );
        out.push(data["title"].as_str().unwrap_or_default().to_owned());
    }
    Ok(out)
}

#[tokio::test]
async fn publishing_returns_the_notification_with_ids_growing_by_one() -> TestResult {
    let (app, _hub) = start().await?;
    let first = publish(&app, json!({"title": "Hello", "message": "World"})).await?;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await?;
    assert_eq!(first["id"], "1");
    assert_eq!(first["level"], "info", "info by default");
    assert_eq!(first["user"], Value::Null);
    assert!(first["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    let second: Value = publish(
        &app,
        json!({"title": "T", "message": "M", "level": "error", "user": "alice"}),
    )
    .await?
    .json()
    .await?;
    assert_eq!(second["id"], "2");
    assert_eq!(second["level"], "error");
    assert_eq!(second["user"], "alice");
    Ok(())
}

#[tokio::test]
async fn every_publish_rejection_and_nothing_published() -> TestResult {
    let (app, hub) = start().await?;
    let url = app.url("/notifications");
    let ok = json!({"title": "t", "message": "m"});
    let auth = format!("Bearer {ADMIN}");
    // A request with the admin's token, for every case past authentication.
    let admin = || http().post(&url).header("authorization", &auth);
    let cases = vec![
        (http().post(&url).json(&ok), 401, "unauthorized", ""),
        (
            http()
                .post(&url)
                .header("authorization", "Bearer wrong-token-0123456789")
                .json(&ok),
            401,
            "unauthorized",
            "",
        ),
        (
            http().post(&url).header("authorization", ADMIN).json(&ok),
            401,
            "unauthorized",
            "",
        ),
        (
            admin().body(ok.to_string()),
            415,
            "unsupported-media-type",
            "",
        ),
        (
            admin()
                .header("content-type", "text/plain")
                .body(ok.to_string()),
            415,
            "unsupported-media-type",
            "",
        ),
        (
            admin().json(&json!({"title": "t", "message": "m".repeat(20_000)})),
            413,
            "payload-too-large",
            "",
        ),
        (
            admin()
                .header("content-type", "application/json")
                .body("{nope"),
            400,
            "invalid-json",
            "",
        ),
        (admin().json(&json!(["t", "m"])), 400, "invalid-json", ""),
        (
            admin().json(&json!({"message": "m"})),
            400,
            "invalid-field",
            "`title`",
        ),
        (
            admin().json(&json!({"title": "t"})),
            400,
            "invalid-field",
            "`message`",
        ),
        (
            admin().json(&json!({"title": "x".repeat(121), "message": "m"})),
            400,
            "invalid-field",
            "`title`",
        ),
        (
            admin().json(&json!({"title": "", "message": "m"})),
            400,
            "invalid-field",
            "`title`",
        ),
        (
            admin().json(&json!({"title": 5, "message": "m"})),
            400,
            "invalid-field",
            "`title`",
        ),
        (
            admin().json(&json!({"title": "t", "message": "x".repeat(2001)})),
            400,
            "invalid-field",
            "`message`",
        ),
        (
            admin().json(&json!({"title": "t", "message": "m", "level": "loud"})),
            400,
            "invalid-field",
            "`level`",
        ),
        (
            admin().json(&json!({"title": "t", "message": "m", "user": "a\u{202e}b"})),
            400,
            "invalid-field",
            "`user`",
        ),
        (
            admin().json(&json!({"title": "t", "message": "m", "user": 7})),
            400,
            "invalid-field",
            "`user`",
        ),
        (
            admin().json(&json!({"title": "t", "message": "m", "titel": "x"})),
            400,
            "invalid-field",
            "`titel`",
        ),
    ];
    for (request, status, code, names) in cases {
        let response = request.send().await?;
        assert_eq!(response.status(), status, "{code} {names}");
        let error: Value = response.json().await?;
        assert_eq!(error["error"], code, "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains(names)),
            "{error}"
        );
    }
    assert_eq!(hub.latest(), None, "nothing was published");
    Ok(())
}

#[tokio::test]
async fn broadcasts_reach_all_and_targeted_ones_only_their_user() -> TestResult {
    let (app, _hub) = start().await?;
    let alice_cookie = sign_in(&app, "alice").await?;
    let bob_cookie = sign_in(&app, "bob").await?;
    let mut alice = listen(&app, Some(&alice_cookie), None).await?;
    let mut alice_tab = listen(&app, Some(&alice_cookie), None).await?;
    let mut bob = listen(&app, Some(&bob_cookie), None).await?;
    let mut nobody = listen(&app, None, None).await?;

    for body in [
        json!({"title": "all 1", "message": "m"}),
        json!({"title": "for alice", "message": "m", "user": "alice"}),
        json!({"title": "for bob", "message": "m", "user": "bob"}),
        json!({"title": "all 2", "message": "m"}),
    ] {
        assert_eq!(publish(&app, body).await?.status(), 201);
    }
    assert_eq!(
        titles(&mut alice, 3).await?,
        ["all 1", "for alice", "all 2"]
    );
    assert_eq!(
        titles(&mut alice_tab, 3).await?,
        ["all 1", "for alice", "all 2"],
        "every tab of hers"
    );
    assert_eq!(titles(&mut bob, 3).await?, ["all 1", "for bob", "all 2"]);
    assert_eq!(titles(&mut nobody, 2).await?, ["all 1", "all 2"]);

    // Resuming replays her own and never another's.
    let mut again = listen(&app, Some(&alice_cookie), Some("0")).await?;
    assert_eq!(
        titles(&mut again, 3).await?,
        ["all 1", "for alice", "all 2"]
    );
    let mut bob_again = listen(&app, Some(&bob_cookie), Some("1")).await?;
    assert_eq!(titles(&mut bob_again, 2).await?, ["for bob", "all 2"]);
    Ok(())
}

#[tokio::test]
async fn a_forged_cookie_sees_broadcasts_only() -> TestResult {
    let (app, _hub) = start().await?;
    let alice_cookie = sign_in(&app, "alice").await?;
    let (_, alice_value) = alice_cookie.split_once('=').ok_or("no value")?;
    let (_, alice_tag) = alice_value.split_once('.').ok_or("no tag")?;
    let bob_hex: String = b"bob".iter().map(|b| format!("{b:02x}")).collect();
    let forged = [
        format!("session={bob_hex}.{alice_tag}"), // bob's name with alice's signature
        format!("session={bob_hex}"),             // no signature
        format!(
            "session={}",
            SessionKey::new("not the server's key").sign("bob")
        ),
        "session=garbage".to_owned(),
    ];
    let mut streams = Vec::new();
    for cookie in &forged {
        streams.push(listen(&app, Some(cookie), Some("0")).await?);
    }
    assert_eq!(
        publish(
            &app,
            json!({"title": "for bob", "message": "m", "user": "bob"})
        )
        .await?
        .status(),
        201
    );
    assert_eq!(
        publish(&app, json!({"title": "all", "message": "m"}))
            .await?
            .status(),
        201
    );
    for conn in &mut streams {
        assert_eq!(titles(conn, 1).await?, ["all"]);
    }
    Ok(())
}

#[tokio::test]
async fn session_rejections_and_who_am_i() -> TestResult {
    let (app, _hub) = start().await?;
    let url = app.url("/session");
    let response = http().post(&url).body(r#"{"user":"x"}"#).send().await?;
    assert_eq!(response.status(), 415);
    for body in [
        json!({}),
        json!({"user": ""}),
        json!({"user": "a\nb"}),
        json!({"user": 1}),
    ] {
        let response = http().post(&url).json(&body).send().await?;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await?;
        assert_eq!(error["error"], "invalid-field");
    }
    let cookie = sign_in(&app, "alice").await?;
    let me: Value = http()
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(me["user"], "alice");
    let nobody: Value = http().get(&url).send().await?.json().await?;
    assert_eq!(nobody["user"], Value::Null);
    Ok(())
}

#[tokio::test]
async fn the_keep_alive_defaults_to_30_seconds_here() -> TestResult {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-notify"))
        .arg("--help")
        .output()
        .await?;
    let help = String::from_utf8_lossy(&output.stdout);
    let line = help
        .lines()
        .skip_while(|l| !l.contains("--keep-alive-secs"))
        .take(3)
        .collect::<String>();
    assert!(line.contains("[default: 30]"), "{help}");
    Ok(())
}
