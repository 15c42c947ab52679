//! sse-notify over real TCP, read by an independent SSE parser (`sse-stream`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_notify::session::Sessions;
use sse_notify::{Notification, Notifier};
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, WAIT, command_output, expect_error, http, json_data,
    refused_at_start, set_cookie,
};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs};

const ADMIN: &str = "test-admin-token-0123456789";
const SECRET: &[u8] = b"the test JWT secret, 32 bytes or more";
const COOKIE: &str = "notify-session";

async fn start() -> TestResult<(TestApp, Hub<Notification>)> {
    start_keeping(HistoryLimits::default()).await
}

async fn start_keeping(limits: HistoryLimits) -> TestResult<(TestApp, Hub<Notification>)> {
    let mut hub = None;
    let sessions = Sessions::new(SECRET, false, Duration::from_secs(3600))?;
    let app = TestApp::start(ServerArgs::default(), |streams| {
        let created = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
        hub = Some(created.clone());
        let notifier: Arc<Notifier> =
            Notifier::new(Publisher::in_memory(created), ADMIN.into(), sessions);
        sse_notify::router(&notifier)
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

/// A token signed with `secret` carrying `claims`: what a real app's login issues.
fn token_with(secret: &[u8], claims: &Value) -> TestResult<String> {
    let header = Header::new(Algorithm::HS256);
    Ok(jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret),
    )?)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs in as `user` (with the admin token) and returns the `cookie` header to send.
async fn sign_in(app: &TestApp, user: &str) -> TestResult<String> {
    let response = http()
        .post(app.url("/session"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .json(&json!({ "user": user }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let set_cookie = set_cookie(response.headers())?;
    let lower = set_cookie.to_ascii_lowercase();
    assert!(
        set_cookie.starts_with(&format!("{COOKIE}=")),
        "{set_cookie}"
    );
    for attribute in ["httponly", "samesite=strict", "path=/", "max-age=3600"] {
        assert!(
            lower.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(!lower.contains("secure"), "plain HTTP: {set_cookie}");
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
    let retry = conn.next().await?.retry.ok_or("no retry first")?;
    assert!(
        (2250..=3750).contains(&retry),
        "retry: {retry}, not 3000 +- 25%"
    );
    Ok(conn)
}

/// The titles of the next `n` notifications.
async fn titles(conn: &mut SseConnection, n: usize) -> TestResult<Vec<String>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let event = conn.next_event().await?;
        assert_eq!(event.event.as_deref(), Some("notification"));
        let data: Value = json_data(&event)?;
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
    let (app, hub) = start().await?;
    // RUN-N: the run this process's hub names, then 1, 2, ...
    let run = hub.run().ok_or("no run")?;
    let first = publish(&app, json!({"title": "Hello", "message": "World"})).await?;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await?;
    assert_eq!(first["id"], format!("{run}-1"));
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
    assert_eq!(second["id"], format!("{run}-2"));
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
        let error = expect_error(response, status, code).await?;
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
    let (app, hub) = start().await?;
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
    let first = format!("{}-1", hub.run().ok_or("no run")?);
    let mut bob_again = listen(&app, Some(&bob_cookie), Some(&first)).await?;
    assert_eq!(titles(&mut bob_again, 2).await?, ["for bob", "all 2"]);
    Ok(())
}

/// A stream is woken by what is for everyone and for its user, not by the others':
/// when theirs have left the history meanwhile, it goes on with no `reset`.
#[tokio::test]
async fn a_users_stream_goes_past_the_others_notifications_without_a_reset() -> TestResult {
    let limits = HistoryLimits {
        max_events: 10,
        ..HistoryLimits::default()
    };
    let (app, _) = start_keeping(limits).await?;
    let alice_cookie = sign_in(&app, "alice").await?;
    let bob_cookie = sign_in(&app, "bob").await?;
    let mut alice = listen(&app, Some(&alice_cookie), None).await?;
    let mut bob = listen(&app, Some(&bob_cookie), None).await?;
    for n in 0..30 {
        let body = json!({"title": format!("bob {n}"), "message": "m", "user": "bob"});
        assert_eq!(publish(&app, body).await?.status(), 201);
    }
    assert_eq!(
        titles(&mut bob, 30).await?.last().map(String::as_str),
        Some("bob 29")
    );
    let for_alice = json!({"title": "for alice", "message": "m", "user": "alice"});
    assert_eq!(publish(&app, for_alice).await?.status(), 201);
    let all = json!({"title": "all", "message": "m"});
    assert_eq!(publish(&app, all).await?.status(), 201);
    assert_eq!(titles(&mut alice, 2).await?, ["for alice", "all"]);
    Ok(())
}

/// Publishes one notification for alice, then one for everyone, and checks that each
/// stream gets only the broadcast.
async fn only_the_broadcast_reaches(app: &TestApp, streams: &mut [SseConnection]) -> TestResult {
    let for_alice = json!({"title": "for alice", "message": "m", "user": "alice"});
    assert_eq!(publish(app, for_alice).await?.status(), 201);
    let all = json!({"title": "all", "message": "m"});
    assert_eq!(publish(app, all).await?.status(), 201);
    for (i, conn) in streams.iter_mut().enumerate() {
        assert_eq!(titles(conn, 1).await?, ["all"], "stream {i}");
    }
    Ok(())
}

#[tokio::test]
async fn a_session_for_alice_needs_the_admin_token() -> TestResult {
    let (app, _hub) = start().await?;
    // An attacker asks for alice's session without a credential, or with a wrong one.
    let url = app.url("/session");
    let body = json!({"user": "alice"});
    let attempts = [
        http().post(&url).json(&body),
        http()
            .post(&url)
            .header("authorization", "Bearer not-the-admin-token-0123")
            .json(&body),
        http()
            .post(&url)
            .header("authorization", format!("Basic {ADMIN}"))
            .json(&body),
    ];
    let mut streams = Vec::new();
    for attempt in attempts {
        let response = attempt.send().await?;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie was set"
        );
        expect_error(response, 401, "unauthorized").await?;
        streams.push(listen(&app, None, Some("0")).await?);
    }
    only_the_broadcast_reaches(&app, &mut streams).await
}

#[tokio::test]
async fn forged_expired_or_misplaced_tokens_see_broadcasts_only() -> TestResult {
    let (app, _hub) = start().await?;
    let later = unix_now() + 3600;
    let valid = token_with(SECRET, &json!({"sub": "alice", "exp": later}))?;
    let (head, rest) = valid.split_once('.').ok_or("no header")?;
    let (_, signature) = rest.split_once('.').ok_or("no signature")?;
    let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
    let tampered = b64(&json!({"sub": "alice", "exp": later, "admin": true}).to_string());
    let forged = [
        // Another secret.
        token_with(
            b"not the server's secret, 32 bytes long",
            &json!({"sub": "alice", "exp": later}),
        )?,
        // Expired a minute ago (and a second ago: no leeway).
        token_with(SECRET, &json!({"sub": "alice", "exp": unix_now() - 60}))?,
        token_with(SECRET, &json!({"sub": "alice", "exp": unix_now() - 1}))?,
        // No `exp`; no `sub`; a `sub` no user could have.
        token_with(SECRET, &json!({"sub": "alice"}))?,
        token_with(SECRET, &json!({"exp": later}))?,
        token_with(SECRET, &json!({"sub": "alice\n", "exp": later}))?,
        // "alice" to the eye: tag characters after it; and a name that shows nothing.
        token_with(SECRET, &json!({"sub": "alice\u{e0041}", "exp": later}))?,
        token_with(SECRET, &json!({"sub": "\u{3164}", "exp": later}))?,
        // Not valid yet (`nbf` ten minutes away, and a second away: no leeway).
        token_with(
            SECRET,
            &json!({"sub": "alice", "exp": later, "nbf": unix_now() + 600}),
        )?,
        token_with(
            SECRET,
            &json!({"sub": "alice", "exp": later, "nbf": unix_now() + 2}),
        )?,
        // A header with `crit`: extensions we would have to understand.
        {
            let mut header = Header::new(Algorithm::HS256);
            header.crit = Some(vec!["exp".into()]);
            let claims = json!({"sub": "alice", "exp": later});
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET))?
        },
        // alice's signature on another payload; the `none` algorithm; garbage.
        format!("{head}.{tampered}.{signature}"),
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&json!({"sub": "alice", "exp": later}).to_string())
        ),
        "garbage".to_owned(),
    ];
    let mut streams = Vec::new();
    for token in &forged {
        let cookie = format!("{COOKIE}={token}");
        streams.push(listen(&app, Some(&cookie), Some("0")).await?);
        let bearer = format!("Bearer {token}");
        let conn = SseConnection::open(
            &app.url("/notifications/stream"),
            &[("authorization", &bearer), ("last-event-id", "0")],
        )
        .await?;
        streams.push(conn);
    }
    // A valid token in the URL counts for nothing: credentials never travel there.
    for query in ["token", "jwt", "access_token", "authorization"] {
        let url = app.url(&format!("/notifications/stream?{query}={valid}"));
        streams.push(SseConnection::open(&url, &[("last-event-id", "0")]).await?);
    }
    // The valid token itself, as a control: it does see alice's; so does one whose
    // `exp` is past what the clock can hold.
    let endless = token_with(SECRET, &json!({"sub": "alice", "exp": u64::MAX}))?;
    let started = token_with(
        SECRET,
        &json!({"sub": "alice", "exp": later, "nbf": unix_now() - 1}),
    )?;
    let mut alices = Vec::new();
    for token in [&valid, &endless, &started] {
        let bearer = format!("Bearer {token}");
        // A stale cookie next to the bearer token does not shadow it.
        let cookie = format!("{COOKIE}=garbage");
        let url = app.url("/notifications/stream");
        let headers = [("authorization", bearer.as_str()), ("cookie", &cookie)];
        alices.push(SseConnection::open(&url, &headers).await?);
    }
    only_the_broadcast_reaches(&app, &mut streams).await?;
    for alice in &mut alices {
        assert_eq!(titles(alice, 2).await?, ["for alice", "all"]);
    }
    Ok(())
}

#[tokio::test]
async fn a_stream_ends_at_its_tokens_exp_and_a_fresh_token_resumes() -> TestResult {
    let (app, _hub) = start().await?;
    let exp = unix_now() + 2;
    let short = token_with(SECRET, &json!({"sub": "alice", "exp": exp}))?;
    let bearer = format!("Bearer {short}");
    let mut conn = SseConnection::open(
        &app.url("/notifications/stream"),
        &[("authorization", &bearer)],
    )
    .await?;
    let before = json!({"title": "before", "message": "m", "user": "alice"});
    assert_eq!(publish(&app, before).await?.status(), 201);
    let event = conn.next_event().await?;
    assert_eq!(event.event.as_deref(), Some("notification"));
    let last_id = event.id.ok_or("no id")?;

    // The end comes at `exp` (whole seconds), announced, then the body finishes.
    let expired = conn.next_event().await?;
    assert!(unix_now() >= exp, "ended before exp");
    assert_eq!(expired.event.as_deref(), Some("session-expired"));
    let data: Value = json_data(&expired)?;
    assert_eq!(data, json!({"user": "alice", "exp": exp}));
    assert_eq!(expired.id, None, "not an event to resume from");
    conn.expect_end(Duration::from_secs(5)).await?;

    // Published while she was away; a reconnect with the old token sees broadcasts only,
    // one with a fresh token resumes by Last-Event-ID and gets it.
    let meanwhile = json!({"title": "meanwhile", "message": "m", "user": "alice"});
    assert_eq!(publish(&app, meanwhile).await?.status(), 201);
    let mut stale = SseConnection::open(
        &app.url("/notifications/stream"),
        &[("authorization", &bearer), ("last-event-id", &last_id)],
    )
    .await?;
    let fresh = token_with(SECRET, &json!({"sub": "alice", "exp": unix_now() + 3600}))?;
    let mut again = SseConnection::open(
        &app.url("/notifications/stream"),
        &[
            ("authorization", &format!("Bearer {fresh}")),
            ("last-event-id", &last_id),
        ],
    )
    .await?;
    assert_eq!(titles(&mut again, 1).await?, ["meanwhile"]);
    only_the_broadcast_reaches(&app, std::slice::from_mut(&mut stale)).await
}

#[tokio::test]
async fn session_rejections_and_who_am_i() -> TestResult {
    let (app, _hub) = start().await?;
    let url = app.url("/session");
    let auth = format!("Bearer {ADMIN}");
    let admin = || http().post(&url).header("authorization", &auth);
    let response = admin().body(r#"{"user":"x"}"#).send().await?;
    assert_eq!(response.status(), 415);
    for body in [
        json!({}),
        json!({"user": ""}),
        json!({"user": "a\nb"}),
        json!({"user": 1}),
        json!({"user": "alice", "admin": true}),
    ] {
        let response = admin().json(&body).send().await?;
        expect_error(response, 400, "invalid-field").await?;
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
    let exp = me["exp"].as_u64().ok_or("no exp")?;
    assert!(
        (unix_now() + 3590..=unix_now() + 3600).contains(&exp),
        "{me}"
    );
    let nobody: Value = http().get(&url).send().await?.json().await?;
    assert_eq!(nobody, json!({"user": null}));

    // Signing out removes the cookie.
    let out = http().delete(&url).header("cookie", &cookie).send().await?;
    assert_eq!(out.status(), 204);
    let cleared = set_cookie(out.headers())?.to_ascii_lowercase();
    assert!(cleared.starts_with(&format!("{COOKIE}=;")), "{cleared}");
    assert!(cleared.contains("max-age=0"), "{cleared}");
    Ok(())
}

#[tokio::test]
async fn the_keep_alive_defaults_to_30_seconds_here() -> TestResult {
    let output = command_output(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sse-notify")).arg("--help"),
        WAIT,
    )
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

#[tokio::test]
async fn short_secrets_and_unsafe_issuer_settings_are_refused_at_start() -> TestResult {
    for (args, says) in [
        (
            ["--jwt-secret", "only 31 bytes, one short of 32!"],
            "at least 32 bytes",
        ),
        (
            ["--admin-token", "fifteen chars.."],
            "at least 16 characters",
        ),
        // A JWKS fetched again on every unknown `kid` would be a lever on the provider.
        (["--jwks-refresh-secs", "0"], "0 is not in 1..=86400"),
        // An identity provider's keys over plain HTTP to another host could be anyone's.
        (
            [
                "--jwt-issuer",
                "https://login.example=jwks:http://10.0.0.1/jwks.json",
            ],
            "must be https://",
        ),
    ] {
        let (_, stderr) = refused_at_start(env!("CARGO_BIN_EXE_sse-notify"), &args).await?;
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    Ok(())
}

/// A session cookie planted beside the user's (by a sibling subdomain or a plain-HTTP
/// origin), the same name twice or a name that only decodes to it, makes no session:
/// never the planter's.
#[tokio::test]
async fn a_planted_second_session_cookie_makes_no_session() -> TestResult {
    let (app, _hub) = start().await?;
    let alice = sign_in(&app, "alice").await?;
    let mallory = sign_in(&app, "mallory").await?;
    let mallory_token = mallory.split_once('=').map_or("", |(_, t)| t);
    let who = async |cookie: String| -> TestResult<serde_json::Value> {
        let response = http()
            .get(app.url("/session"))
            .header("cookie", cookie)
            .send()
            .await?;
        let body: serde_json::Value = response.json().await?;
        Ok(body["user"].clone())
    };
    assert_eq!(who(alice.clone()).await?, "alice");
    for planted in [
        format!("{alice}; {mallory}"),
        format!(
            "{alice}; {}%6E={mallory_token}",
            &COOKIE[..COOKIE.len() - 1]
        ),
        format!("%6E{}={mallory_token}", &COOKIE[1..]),
    ] {
        assert_eq!(
            who(planted.clone()).await?,
            serde_json::Value::Null,
            "{planted}"
        );
    }
    Ok(())
}
