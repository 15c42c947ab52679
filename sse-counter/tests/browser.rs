//! The counter page in a real Chromium: it counts, survives a server restart, and
//! goes on counting with no gap and no repeat.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");
const ARGS: [&str; 4] = ["--interval-ms", "200", "--retry-ms", "300"];

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

#[tokio::test]
async fn the_page_counts_and_goes_on_after_a_server_restart() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &ARGS).await?;
    let port = app.port()?.to_string();
    Browser::run(async |browser| {
        browser.client.goto(app.url()).await?;
        let wait = Duration::from_secs(10);
        browser.wait_for_text("#connection", wait, |t| t == "open").await?;
        browser.wait_for_text("#count", wait, |t| number(t) >= 3).await?;

        app.stop().await?;
        browser.wait_for_text("#connection", wait, |t| t == "reconnecting").await?;
        let stopped_at = number(&browser.text("#count").await?);

        let mut args = ARGS.to_vec();
        args.extend(["--port", port.as_str()]);
        let mut restarted = AppProcess::spawn(BIN, &args).await?;
        browser.wait_for_text("#connection", wait, |t| t == "open").await?;
        browser.wait_for_text("#count", wait, |t| number(t) >= stopped_at + 3).await?;
        // The count went on from where it stopped: as many events as the count, so
        // nothing was missed or repeated. Both read in one script, so no event
        // can land between the two reads.
        let both = browser
            .eval("return [document.getElementById('count').textContent, document.getElementById('received').textContent]")
            .await?;
        let count = number(both[0].as_str().unwrap_or_default());
        let received = number(both[1].as_str().unwrap_or_default());
        assert!(count > stopped_at);
        assert_eq!(received, count, "every number arrived once");
        assert_eq!(browser.text("#notice").await?, "", "no reset happened");
        assert!(number(&browser.text("#reconnects").await?) >= 1);
        browser
            .save_screenshot("sse-counter")
            .await?;
        restarted.stop().await?;
        Ok(())
    })
    .await
}
