//! The resume page in a real Chromium: drop the connection, come back with the last
//! id, see the missed events replayed, and no gaps or duplicates.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult, check_page_on_a_phone};

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

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    check_page_on_a_phone(BIN, &[], Some("open"), "sse-resume").await
}

/// A note of only spaces was published and shown blank, and an error notice stayed for
/// ever: a blank note is refused with a message, and the next good note clears it.
#[tokio::test]
async fn a_blank_note_is_refused_and_the_next_note_clears_the_message() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", wait, |t| t == "open")
            .await?;
        browser.type_into("#note", "   ").await?;
        browser.click("#note-form button[type=submit]").await?;
        browser
            .wait_for_text("#notice", wait, |t| t.contains("only spaces"))
            .await?;
        // What the server says when the page's check is not there: the same refusal.
        let status = browser
            .eval("return fetch('/events', { method: 'POST', body: '  ' }).then(r => r.status)")
            .await?;
        assert_eq!(status, 400);
        browser
            .eval("document.getElementById('note').value = ''")
            .await?;
        browser.type_into("#note", "a real note").await?;
        browser.click("#note-form button[type=submit]").await?;
        browser
            .wait_for_text("#log", wait, |t| t.contains("a real note"))
            .await?;
        browser
            .wait_for_text("#notice", wait, str::is_empty)
            .await?;
        Ok(())
    })
    .await?;
    app.stop().await
}
