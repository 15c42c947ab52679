//! The resume page in a real Chromium: drop the connection, come back with the last
//! id, see the missed events replayed, and no gaps or duplicates.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

#[tokio::test]
async fn dropping_the_connection_replays_what_was_missed_with_no_gaps() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &["--interval-ms", "100"]).await?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", wait, |t| t == "open")
            .await?;
        browser
            .wait_for_text("#received", wait, |t| number(t) >= 5)
            .await?;
        assert_eq!(browser.text("#replayed").await?, "0");

        browser.click("#drop").await?;
        browser
            .wait_for_text("#connection", wait, |t| t == "closed")
            .await?;
        // Ticks go on while the page is away; after 2 s it resumes from its last id.
        browser
            .wait_for_text("#connection", wait, |t| t == "open")
            .await?;
        browser
            .wait_for_text("#replayed", wait, |t| number(t) >= 5)
            .await?;
        let received = number(&browser.text("#received").await?);
        browser
            .wait_for_text("#received", wait, |t| number(t) > received + 5)
            .await?;

        assert_eq!(browser.text("#gaps").await?, "0");
        assert_eq!(browser.text("#duplicates").await?, "0");
        let replayed_rows = browser
            .eval("return document.querySelectorAll('#log li.replayed').length")
            .await?;
        assert!(
            replayed_rows.as_u64().unwrap_or(0) >= 5,
            "replayed rows are marked"
        );
        browser.save_screenshot("sse-resume").await?;
        app.stop().await?;
        Ok(())
    })
    .await
}
