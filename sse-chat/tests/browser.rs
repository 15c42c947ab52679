//! Two Chromium windows chat with each other; one reloads and keeps its history and
//! its identity.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");
const WAIT: Duration = Duration::from_secs(10);

async fn join(browser: &Browser, url: &str, name: &str) -> TestResult {
    browser.client.goto(url).await?;
    browser.type_into("#name", name).await?;
    browser.click("#join-form button").await?;
    browser.wait_for_text("#me", WAIT, |t| t == name).await?;
    browser
        .wait_for_text("#connection", WAIT, |t| t == "open")
        .await?;
    Ok(())
}

async fn say(browser: &Browser, text: &str) -> TestResult {
    browser.type_into("#text", text).await?;
    browser.click("#send-form button").await?;
    Ok(())
}

#[tokio::test]
async fn two_windows_chat_and_a_reload_keeps_history_and_identity() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    let browser = Browser::launch().await?;
    let result = async {
        let alice_window = browser.client.window().await?;
        join(&browser, app.url(), "alice").await?;

        let bob_window = browser.client.new_window(false).await?.handle;
        browser.client.switch_to_window(bob_window.clone()).await?;
        join(&browser, app.url(), "bob").await?;
        browser
            .wait_for_text("#online", WAIT, |t| {
                t.contains("alice") && t.contains("bob")
            })
            .await?;
        let hello = "hello <b>alice</b>";
        say(&browser, hello).await?;
        browser
            .wait_for_text("#messages li.mine", WAIT, |t| t.contains(hello))
            .await?;

        browser.client.switch_to_window(alice_window).await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains(hello))
            .await?;
        let markup = browser
            .eval("return document.querySelectorAll('#messages b, #messages script').length")
            .await?;
        assert_eq!(markup.as_u64(), Some(0), "text stays text");
        say(&browser, "hi bob").await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains("hi bob"))
            .await?;

        browser.client.switch_to_window(bob_window).await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains("hi bob"))
            .await?;
        let token_before = browser
            .eval("return sessionStorage.getItem('chat.token')")
            .await?;
        browser.client.refresh().await?;
        browser.wait_for_text("#me", WAIT, |t| t == "bob").await?;
        let history = browser
            .wait_for_text("#messages", WAIT, |t| {
                t.contains(hello) && t.contains("hi bob")
            })
            .await?;
        assert!(
            history.find(hello) < history.find("hi bob"),
            "in order: {history}"
        );
        browser
            .wait_for_text("#messages li.mine", WAIT, |t| t.contains(hello))
            .await?;
        let token_after = browser
            .eval("return sessionStorage.getItem('chat.token')")
            .await?;
        assert_eq!(token_before, token_after, "the same identity");
        browser.save_screenshot("sse-chat").await?;
        app.terminate().await?;
        app.wait(Duration::from_secs(6)).await?;
        TestResult::Ok(())
    }
    .await;
    browser.close().await?;
    result
}
