//! Over HTTPS the server speaks HTTP/2, so one page can hold many streams: HTTP/1.1
//! allows a browser 6 connections per host, HTTP/2 multiplexes them all on one.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");

#[tokio::test]
async fn ten_streams_from_one_page_are_all_live_over_http2() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &["--tls-self-signed", "--interval-ms", "200"]).await?;
    assert!(app.url().starts_with("https://"), "{}", app.url());
    Browser::run(async |browser| {
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", Duration::from_secs(10), |t| t == "open")
            .await?;
        let protocol = browser
            .eval("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
            .await?;
        assert_eq!(protocol.as_str(), Some("h2"));
        // With the page's own stream, 11 in all: more than HTTP/1.1's 6 per host.
        browser
            .eval(
                "window.counts = Array(10).fill(0);
                 for (let i = 0; i < 10; i++) {
                   new EventSource('/events').onmessage = () => { window.counts[i] += 1; };
                 }
                 return true;",
            )
            .await?;
        wait_until(
            Duration::from_secs(15),
            "all 10 streams to count",
            || async {
                let live = browser
                    .eval("return window.counts.every((n) => n >= 3)")
                    .await?;
                Ok(live.as_bool() == Some(true))
            },
        )
        .await?;
        app.stop().await?;
        Ok(())
    })
    .await
}
