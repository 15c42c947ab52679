//! Hostile input against every route of every example: each gets its documented JSON
//! error (or, for stream routes, a `reset` event), and nothing panics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{chat, resume};
use serde_json::{Value, json};
use sse_notify::session::Sessions;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::routes::CONTENT_SECURITY_POLICY;
use sse_shared::testing::{
    SseConnection, TestApp, TestResult, expect_error, http, json_data, reqwest,
};
use sse_shared::{HistoryLimits, Hub, Publisher, ServerArgs, Streams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "hostile-admin-token-0123456789";

/// Every example, started in this process: (name, app).
async fn every_example() -> TestResult<Vec<(&'static str, TestApp)>> {
    let args = ServerArgs::default;
    let counter =
        TestApp::start(args(), |_| sse_counter::router(Duration::from_millis(100))).await?;
    let (resume, _) = resume(args(), HistoryLimits::default()).await?;
    let (chat, _) = chat(args()).await?;
    let stock = TestApp::start(args(), |s: &Streams| {
        let log = Publisher::in_memory(Hub::with_observer(
            HistoryLimits::default(),
            HubMetrics::register(s.metrics()),
        ));
        let market = sse_stock_feed::Market::new(vec!["AAPL".into()], log);
        sse_stock_feed::router(&market)
    })
    .await?;
    let secret = b"hostile JWT secret, 32 bytes or more";
    let sessions = Sessions::new(secret, false, std::time::Duration::from_secs(60))?;
    let notify = TestApp::start(args(), |s: &Streams| {
        let log = Publisher::in_memory(Hub::with_observer(
            HistoryLimits::default(),
            HubMetrics::register(s.metrics()),
        ));
        let notifier: Arc<sse_notify::Notifier> =
            sse_notify::Notifier::new(log, ADMIN.into(), sessions);
        sse_notify::router(&notifier)
    })
    .await?;
    Ok(vec![
        ("counter", counter),
        ("resume", resume),
        ("chat", chat),
        ("stock-feed", stock),
        ("notify", notify),
    ])
}

/// Sends raw bytes and returns the status code of the answer (0 if the connection
/// closed without one).
async fn raw(app: &TestApp, request: &[u8]) -> TestResult<u16> {
    let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
    socket.write_all(request).await?;
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut head)).await??;
    let line = String::from_utf8_lossy(&head[..n]);
    Ok(line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

/// [`expect_error`], naming what was refused when it fails.
async fn refused(response: reqwest::Response, status: u16, code: &str, what: &str) -> TestResult {
    match expect_error(response, status, code).await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{what}: {e}").into()),
    }
}

/// The page, a JSON answer and an error answer all carry the security headers; a stream
/// carries the SSE headers instead (and none of the page's: hyper keeps a response's
/// header map for as long as the connection lives).
#[tokio::test]
async fn every_example_sends_its_security_headers_and_no_inline_script() -> TestResult {
    for (name, app) in every_example().await? {
        let page = http().get(app.url("/")).send().await?;
        assert_eq!(page.status(), 200, "{name}");
        let header = |response: &reqwest::Response, header: &str| {
            let value = response.headers().get(header);
            value
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        for response in [
            page,
            http().get(app.url("/healthz")).send().await?,
            http().get(app.url("/no-such-route")).send().await?,
        ] {
            let what = format!("{name} {}", response.url().path());
            assert_eq!(
                header(&response, "content-security-policy"),
                CONTENT_SECURITY_POLICY,
                "{what}"
            );
            assert_eq!(
                header(&response, "x-content-type-options"),
                "nosniff",
                "{what}"
            );
            assert_eq!(
                header(&response, "referrer-policy"),
                "no-referrer",
                "{what}"
            );
            if response.url().path() == "/" {
                let html = response.text().await?;
                assert!(!html.contains("<script>"), "{what}: an inline script");
                let linked: Vec<&str> = html
                    .split(['"', '\''])
                    .filter(|part| part.starts_with("/static/"))
                    .collect();
                assert!(
                    linked.len() >= 3,
                    "{what}: the page links its files: {linked:?}"
                );
                for file in linked {
                    let status = http().get(app.url(file)).send().await?.status();
                    assert_eq!(status, 200, "{what} links {file}");
                }
            }
        }
        let path = match name {
            "counter" | "resume" => "/events",
            "chat" => "/chat/events?name=zed",
            "stock-feed" => "/prices",
            _ => "/notifications/stream",
        };
        let stream = SseConnection::open(&app.url(path), &[]).await?;
        let sse_header = |name: &str| stream.headers.get(name).map(|v| v.as_bytes().to_vec());
        assert_eq!(stream.status, 200, "{name} {path}");
        assert_eq!(
            sse_header("content-type").as_deref(),
            Some(&b"text/event-stream"[..]),
            "{name}"
        );
        assert_eq!(
            sse_header("cache-control").as_deref(),
            Some(&b"no-cache"[..]),
            "{name}"
        );
        assert_eq!(
            sse_header("x-accel-buffering").as_deref(),
            Some(&b"no"[..]),
            "{name}"
        );
        assert_eq!(sse_header("content-security-policy"), None, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn static_files_cannot_be_escaped() -> TestResult {
    for (name, app) in every_example().await? {
        for path in [
            "/static/..%2f..%2fCargo.toml",
            "/static/%2e%2e%2fsrc%2flib.rs",
            "/static/..%5c..%5cCargo.toml",
            "/static/....//....//etc/passwd",
            "/static/%00",
            "/static/sse.css%00.js",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
            let status = raw(&app, request.as_bytes()).await?;
            assert!(status == 404 || status == 400, "{name} {path}: {status}");
        }
        // The real file is still there.
        assert_eq!(
            http()
                .get(app.url("/static/sse.css"))
                .send()
                .await?
                .status(),
            200,
            "{name}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn huge_headers_and_garbage_requests_do_not_hurt() -> TestResult {
    for (name, app) in every_example().await? {
        let huge = format!(
            "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(1 << 20)
        );
        let status = raw(&app, huge.as_bytes()).await?;
        assert!(
            status == 431 || status == 400 || status == 0,
            "{name} huge header: {status}"
        );
        let many: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
        let status = raw(
            &app,
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}\r\n").as_bytes(),
        )
        .await?;
        assert!(
            status == 431 || status == 400 || status == 0,
            "{name} many headers: {status}"
        );
        let status = raw(&app, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await?;
        assert!(status == 400 || status == 0, "{name} garbage: {status}");
        let status = raw(&app, b"GET /\xff\xfe HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        assert!(
            status == 400 || status == 404,
            "{name} non-UTF-8 path: {status}"
        );
        assert_eq!(
            http().get(app.url("/healthz")).send().await?.status(),
            200,
            "{name} still up"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_6_kb_last_event_id_gets_a_reset_on_every_stream() -> TestResult {
    let id = "1".repeat(6 * 1024);
    let garbage = format!("{}-x-", "9".repeat(6 * 1024));
    for (name, app) in every_example().await? {
        let path = match name {
            "counter" | "resume" => "/events",
            "chat" => "/chat/events?name=zed",
            "stock-feed" => "/prices",
            _ => "/notifications/stream",
        };
        for last in [&id, &garbage] {
            let mut conn = SseConnection::open(&app.url(path), &[("last-event-id", last)]).await?;
            assert_eq!(conn.status, 200, "{name}: never an error status for an id");
            let reset = loop {
                let event = conn.next_event().await?;
                if event.event.as_deref() != Some("welcome") {
                    break event;
                }
            };
            assert_eq!(reset.event.as_deref(), Some("reset"), "{name}");
            let data: Value = json_data(&reset)?;
            // Neither is an id this server could have written (too long for one).
            assert_eq!(data["reason"], "invalid-id", "{name}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_request_head_past_max_header_bytes_gets_431_unless_the_option_allows_it() -> TestResult {
    let id = "1".repeat(10 * 1024);
    let counter = |args| TestApp::start(args, |_| sse_counter::router(Duration::from_millis(100)));
    // The default, 8 KiB: a 10 KB Last-Event-ID makes the head too large.
    let app = counter(ServerArgs::default()).await?;
    let request = format!("GET /events HTTP/1.1\r\nhost: x\r\nlast-event-id: {id}\r\n\r\n");
    assert_eq!(raw(&app, request.as_bytes()).await?, 431);
    // Raised to 16 KiB, the same id gets its stream and a reset.
    let roomy = ServerArgs {
        max_header_bytes: 16 * 1024,
        ..ServerArgs::default()
    };
    let app = counter(roomy).await?;
    let mut conn = SseConnection::open(&app.url("/events"), &[("last-event-id", &id)]).await?;
    assert_eq!(conn.status, 200);
    assert_eq!(conn.next_event().await?.event.as_deref(), Some("reset"));
    Ok(())
}

#[tokio::test]
async fn every_route_refuses_the_wrong_method_with_json() -> TestResult {
    let routes: &[(&str, &[&str])] = &[
        ("counter", &["/events"]),
        ("resume", &["/events"]),
        ("chat", &["/chat/events", "/chat/messages"]),
        ("stock-feed", &["/prices", "/symbols"]),
        (
            "notify",
            &["/notifications", "/notifications/stream", "/session"],
        ),
    ];
    for (name, app) in every_example().await? {
        let paths = routes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        for path in paths.iter().chain(["/healthz", "/metrics", "/"].iter()) {
            let response = http().put(app.url(path)).send().await?;
            refused(
                response,
                405,
                "method-not-allowed",
                &format!("{name} PUT {path}"),
            )
            .await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn bad_bodies_on_every_post_route() -> TestResult {
    let examples = every_example().await?;
    let app = |wanted: &str| {
        examples
            .iter()
            .find(|(n, _)| *n == wanted)
            .map(|(_, a)| a)
            .ok_or("no app")
    };

    // sse-resume: POST /events
    let resume = app("resume")?;
    let url = resume.url("/events");
    refused(
        http()
            .post(&url)
            .body(vec![b'a'; 16 * 1024 + 1])
            .send()
            .await?,
        413,
        "payload-too-large",
        "resume big",
    )
    .await?;
    refused(
        http().post(&url).body(vec![0xc0, 0x80]).send().await?,
        400,
        "invalid-utf8",
        "resume utf8",
    )
    .await?;
    refused(
        http().post(&url).send().await?,
        400,
        "empty-body",
        "resume empty",
    )
    .await?;

    // sse-chat: POST /chat/messages, and names
    let chat = app("chat")?;
    let url = chat.url("/chat/messages");
    refused(
        http().post(&url).body("hi").send().await?,
        401,
        "unauthorized",
        "chat no token",
    )
    .await?;
    let bearer = format!("Bearer {}", "f".repeat(32));
    let response = http()
        .post(&url)
        .header("authorization", &bearer)
        .body(vec![b'x'; 1 << 20])
        .send()
        .await?;
    assert!(
        response.status() == 401 || response.status() == 413,
        "chat big body, unknown token"
    );
    for name in [
        "%E2%80%AEevil",
        "a%07b",
        "%0A",
        "%E2%81%A6x",
        &"n".repeat(33),
        // Invisible or look-alike: U+200B, U+3164, U+2800, alice + tag characters, U+FE0F.
        "%E2%80%8B",
        "%E3%85%A4",
        "%E2%A0%80",
        "alice%F3%A0%81%81%F3%A0%81%82",
        "%EF%B8%8F",
    ] {
        let response = http()
            .get(chat.url(&format!("/chat/events?name={name}")))
            .send()
            .await?;
        refused(response, 400, "invalid-name", &format!("chat name {name}")).await?;
    }

    // sse-notify: POST /notifications and POST /session
    let notify = app("notify")?;
    let url = notify.url("/notifications");
    let admin = format!("Bearer {ADMIN}");
    let post = || http().post(&url).header("authorization", &admin);
    refused(
        post()
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await?,
        415,
        "unsupported-media-type",
        "notify type",
    )
    .await?;
    refused(
        post()
            .header("content-type", "application/json")
            .body("{\"title\": ")
            .send()
            .await?,
        400,
        "invalid-json",
        "notify json",
    )
    .await?;
    refused(
        post()
            .header("content-type", "application/json")
            .body(vec![0xff; 10])
            .send()
            .await?,
        // JSON is UTF-8 by definition: serde_json refuses the bytes.
        400,
        "invalid-json",
        "notify utf8",
    )
    .await?;
    refused(
        post()
            .json(&json!({"title": "t", "message": "x".repeat(20_000)}))
            .send()
            .await?,
        413,
        "payload-too-large",
        "notify big",
    )
    .await?;
    refused(
        post()
            .json(&json!({"title": "t", "message": "m", "user": "x\u{202e}y"}))
            .send()
            .await?,
        400,
        "invalid-field",
        "notify user",
    )
    .await?;
    let session = notify.url("/session");
    refused(
        http()
            .post(&session)
            .header("authorization", &admin)
            .json(&json!({"user": "a\u{0}b"}))
            .send()
            .await?,
        400,
        "invalid-field",
        "session user",
    )
    .await?;
    refused(
        http()
            .post(&session)
            .header("authorization", &admin)
            .json(&json!({"user": "x".repeat(2000)}))
            .send()
            .await?,
        413,
        "payload-too-large",
        "session big",
    )
    .await?;
    refused(
        http()
            .post(&session)
            .header("authorization", &admin)
            .body("user=alice")
            .send()
            .await?,
        415,
        "unsupported-media-type",
        "session type",
    )
    .await?;

    for (name, app) in &examples {
        assert_eq!(
            http().get(app.url("/healthz")).send().await?.status(),
            200,
            "{name} still up"
        );
    }
    Ok(())
}

/// Every POST and DELETE of every example, with valid credentials, from another
/// origin's page: `403 cross-origin` and nothing published, however the browser says
/// where it comes from (Fetch Metadata, `Origin`, both, or `Origin: null`); the same
/// request from the server's own page, from a listed origin or from a client that is
/// not a browser gets through.
#[tokio::test]
async fn every_post_and_delete_refuses_another_origins_page() -> TestResult {
    let listed = "https://app.example";
    let args = ServerArgs {
        cors_origins: vec![listed.to_owned()],
        ..ServerArgs::default()
    };
    let (chat, _) = chat(args.clone()).await?;
    let mut member = SseConnection::open(&chat.url("/chat/events?name=victim"), &[]).await?;
    let member = format!("Bearer {}", common::welcome_token(&mut member).await?);
    let (resume, _) = resume(args.clone(), HistoryLimits::default()).await?;
    let secret = b"hostile JWT secret, 32 bytes or more";
    let sessions = Sessions::new(secret, false, Duration::from_secs(60))?;
    let notify = TestApp::start(args, |s: &Streams| {
        let log = Publisher::in_memory(Hub::with_observer(
            HistoryLimits::default(),
            HubMetrics::register(s.metrics()),
        ));
        sse_notify::router(&sse_notify::Notifier::new(log, ADMIN.into(), sessions))
    })
    .await?;
    let admin = format!("Bearer {ADMIN}");
    let json = "application/json";
    let notification = r#"{"title": "t", "message": "m"}"#;
    // (app, method, path, authorization, content type, body, the success status)
    let routes = [
        (
            &chat,
            "POST",
            "/chat/messages",
            member.as_str(),
            "text/plain",
            "hi",
            202,
        ),
        (&resume, "POST", "/events", "", "text/plain", "hi", 201),
        (
            &notify,
            "POST",
            "/notifications",
            admin.as_str(),
            json,
            notification,
            201,
        ),
        (
            &notify,
            "POST",
            "/session",
            admin.as_str(),
            json,
            r#"{"user": "u"}"#,
            200,
        ),
        (&notify, "DELETE", "/session", "", "text/plain", "", 204),
    ];
    for (app, method, path, authorization, content_type, body, ok) in routes {
        let own = app.url("").trim_end_matches('/').to_owned();
        let other_port = own.replace(&format!(":{}", app.server.local_addr().port()), ":1");
        let send = |headers: Vec<(&'static str, String)>| {
            let mut request = http()
                .request(method.parse().unwrap_or_default(), app.url(path))
                .header("content-type", content_type)
                .body(body.to_owned());
            if !authorization.is_empty() {
                request = request.header("authorization", authorization);
            }
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send()
        };
        let published = || app.metric("sse_events_published_total");
        let before = published().await?;
        for headers in [
            vec![
                ("sec-fetch-site", "cross-site".into()),
                ("origin", "https://evil.example".into()),
            ],
            vec![
                ("sec-fetch-site", "same-site".into()),
                ("origin", other_port.clone()),
            ],
            vec![("sec-fetch-site", "cross-site".into())],
            vec![("origin", "https://evil.example".into())],
            vec![("origin", other_port.clone())],
            vec![("origin", "null".into())],
            // Hostile round three (6): no Origin, no Fetch Metadata, another site's Referer.
            vec![("referer", "https://evil.example/page".into())],
            vec![("referer", format!("{other_port}/"))],
        ] {
            let what = format!("{method} {path} with {headers:?}");
            expect_error(send(headers).await?, 403, "cross-origin")
                .await
                .map_err(|e| format!("{what}: {e}"))?;
        }
        assert_eq!(
            published().await?,
            before,
            "{method} {path}: published from another origin"
        );
        for headers in [
            vec![
                ("sec-fetch-site", "same-origin".into()),
                ("origin", own.clone()),
            ],
            vec![("origin", own.clone())],
            vec![
                ("sec-fetch-site", "cross-site".into()),
                ("origin", listed.into()),
            ],
            vec![("referer", format!("{own}/page"))],
            vec![],
        ] {
            let status = send(headers.clone()).await?.status();
            assert_eq!(status, ok, "{method} {path} with {headers:?}");
        }
    }
    Ok(())
}

/// A join from another site's page (a navigation or a request it makes) is refused
/// before any member or cookie is made; the server's own page joins.
#[tokio::test]
async fn a_join_from_another_site_issues_no_member_and_no_cookie() -> TestResult {
    let (app, room) = chat(ServerArgs::default()).await?;
    let url = app.url("/chat/events?name=PWNED");
    for headers in [
        [("sec-fetch-site", "cross-site"), ("accept", "text/html")],
        [
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:1"),
        ],
        // No Fetch Metadata (plain HTTP to a remote host): a navigation may be anyone's.
        [
            ("accept", "text/html,application/xhtml+xml"),
            ("upgrade-insecure-requests", "1"),
        ],
    ] {
        let response = http()
            .get(&url)
            .headers(header_map(&headers)?)
            .send()
            .await?;
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{headers:?}"
        );
        expect_error(response, 403, "cross-origin").await?;
    }
    assert_eq!(room.members_remembered(), Some(0));
    let own = SseConnection::open(&url, &[("sec-fetch-site", "same-origin")]).await?;
    assert_eq!(own.status, 200);
    assert!(own.headers.get("set-cookie").is_some());
    Ok(())
}

fn header_map(headers: &[(&'static str, &str)]) -> TestResult<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, value.parse()?);
    }
    Ok(map)
}

/// Hostile round three (6): two POSTs pipelined on one connection (sent in one write)
/// are both answered at once, in order: the second is not left waiting on a timer.
#[tokio::test]
async fn pipelined_posts_are_both_answered() -> TestResult {
    let (app, _) = resume(ServerArgs::default(), HistoryLimits::default()).await?;
    let one = "POST /events HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
    let mut socket = tokio::net::TcpStream::connect(app.server.local_addr()).await?;
    socket.write_all(format!("{one}{one}").as_bytes()).await?;
    let mut answers = Vec::new();
    let both = async {
        let mut buffer = [0u8; 4096];
        while String::from_utf8_lossy(&answers)
            .matches("HTTP/1.1 201")
            .count()
            < 2
        {
            let n = socket.read(&mut buffer).await?;
            if n == 0 {
                return Err("the connection closed before the second answer".into());
            }
            answers.extend_from_slice(&buffer[..n]);
        }
        TestResult::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(5), both).await??;
    Ok(())
}
