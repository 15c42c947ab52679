//! Streams and APIs across origins: a listed origin's page opens a credentialed
//! `EventSource` and posts; an unlisted origin gets no CORS headers, and its page's
//! stream is refused by the browser. Real Chromium, real TCP.

mod common;

use std::time::Duration;

use sse_shared::testing::{Browser, SseConnection, TestResult, another_origin, http, wait_until};
use sse_shared::{HistoryLimits, ServerArgs};

#[tokio::test]
async fn listed_origins_get_cors_headers_and_others_none() -> TestResult {
    let allowed = "http://app.example";
    let args = ServerArgs {
        cors_origins: vec![allowed.to_owned()],
        ..ServerArgs::default()
    };
    let (app, _hub) = common::resume(args, HistoryLimits::default()).await?;
    let header = |conn: &SseConnection, name: &str| {
        conn.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let listed = SseConnection::open(&app.url("/events"), &[("origin", allowed)]).await?;
    assert_eq!(listed.status, 200);
    assert_eq!(
        header(&listed, "access-control-allow-origin").as_deref(),
        Some(allowed)
    );
    assert_eq!(
        header(&listed, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let other =
        SseConnection::open(&app.url("/events"), &[("origin", "http://evil.example")]).await?;
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    assert_eq!(header(&other, "access-control-allow-credentials"), None);

    // A preflight for a POST with a bearer token is answered for the listed origin only.
    for (origin, answered) in [(allowed, true), ("http://evil.example", false)] {
        let response = http()
            .request(salvo::http::Method::OPTIONS, app.url("/events"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await?;
        let allow = response
            .headers()
            .get("access-control-allow-origin")
            .cloned();
        let methods = response
            .headers()
            .get("access-control-allow-methods")
            .cloned();
        if answered {
            assert!(response.status().is_success(), "{}", response.status());
            assert_eq!(allow.as_ref().and_then(|v| v.to_str().ok()), Some(allowed));
            let methods = methods.and_then(|v| v.to_str().ok().map(str::to_owned));
            assert!(methods.is_some_and(|m| m.contains("POST")));
        } else {
            assert_eq!(allow, None, "no CORS headers for {origin}");
        }
    }

    // Not configured: no CORS headers at all, for anyone.
    let (plain, _hub) = common::resume(ServerArgs::default(), HistoryLimits::default()).await?;
    let conn = SseConnection::open(&plain.url("/events"), &[("origin", allowed)]).await?;
    assert_eq!(header(&conn, "access-control-allow-origin"), None);
    assert_eq!(
        header(&conn, "vary"),
        None,
        "streams stay small when CORS is off"
    );
    Ok(())
}

#[tokio::test]
async fn a_page_on_a_listed_origin_streams_and_an_unlisted_one_is_refused() -> TestResult {
    let (page_ok, page_other) = (another_origin().await?, another_origin().await?);
    let args = ServerArgs {
        cors_origins: vec![page_ok.clone()],
        ..ServerArgs::default()
    };
    let (app, hub) = common::resume(args, HistoryLimits::default()).await?;
    let stream_url = app.url("/events");
    Browser::run(async |browser| {
        let open = format!(
            "window.got = []; window.failed = false;
             const s = new EventSource({stream_url:?}, {{ withCredentials: true }});
             s.addEventListener('note', (e) => window.got.push(e.data));
             s.onerror = () => {{ if (s.readyState === EventSource.CLOSED) window.failed = true; }};
             window.source = s;"
        );
        let wait = Duration::from_secs(10);
        for (page, allowed) in [(&page_ok, true), (&page_other, false)] {
            browser.client.goto(page).await?;
            browser.eval(&open).await?;
            if allowed {
                // Published once the stream is open, so it arrives live.
                wait_until(wait, "the cross-origin stream to open", || async {
                    Ok(browser.eval("return window.source.readyState").await? == 1)
                })
                .await?;
                hub.publish(sse_resume::ResumeEvent::Note("across origins".into()))?;
                wait_until(wait, "the note in the other origin's page", || async {
                    let got = browser.eval("return window.got").await?;
                    Ok(got == serde_json::json!(["across origins"]))
                })
                .await?;
            } else {
                wait_until(wait, "the browser to refuse the stream", || async {
                    Ok(browser.eval("return window.failed").await? == true)
                })
                .await?;
                let got = browser.eval("return window.got").await?;
                assert_eq!(got, serde_json::json!([]), "an unlisted origin read {got}");
            }
        }
        Ok(())
    })
    .await
}
