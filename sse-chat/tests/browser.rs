//! Two Chromium browsers chat with each other; one reloads and keeps its history and
//! its identity, and its member token never appears in a URL the page requested, nor
//! where a script could read it.

use std::time::Duration;

use sse_shared::testing::{AppProcess, Browser, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");
const WAIT: Duration = Duration::from_secs(10);

/// Joins as `name`; returns the page's label for us ("alice #1").
async fn join(browser: &Browser, url: &str, name: &str) -> TestResult<String> {
    browser.client.goto(url).await?;
    browser.type_into("#name", name).await?;
    browser.click("#join-form button").await?;
    let prefix = format!("{name} #");
    let me = browser
        .wait_for_text("#me", WAIT, |t| t.starts_with(&prefix))
        .await?;
    browser
        .wait_for_text("#connection", WAIT, |t| t == "open")
        .await?;
    Ok(me)
}

async fn say(browser: &Browser, text: &str) -> TestResult {
    browser.type_into("#text", text).await?;
    browser.click("#send-form button").await?;
    Ok(())
}

/// The member token (read through WebDriver, which sees HttpOnly cookies) appears in no
/// URL the page loaded or streamed from, and `document.cookie` does not show it.
async fn token_stays_out_of_urls_and_scripts(browser: &Browser) -> TestResult {
    let cookie = browser.client.get_named_cookie("chat-member").await?;
    let token = cookie.value().to_owned();
    assert_eq!(token.len(), 32, "a member token: {token}");
    assert_eq!(cookie.http_only(), Some(true));
    let urls = browser
        .eval(
            // The open EventSource's URL (a stream in progress has no resource entry yet).
            "return [location.href, source.url, ...performance.getEntriesByType('resource').map(e => e.name)]",
        )
        .await?;
    let urls = urls.as_array().ok_or("no URL list")?;
    assert!(
        urls.iter()
            .any(|u| u.as_str().is_some_and(|u| u.contains("/chat/events"))),
        "the stream's URL is among them: {urls:?}"
    );
    for url in urls {
        assert!(!url.to_string().contains(&token), "the token in {url}");
    }
    let visible = browser.eval("return document.cookie").await?;
    assert!(
        !visible.to_string().contains(&token),
        "a script sees {visible}"
    );
    Ok(())
}

#[tokio::test]
async fn two_browsers_chat_and_a_reload_keeps_history_and_identity() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    // Two browsers, not two windows: the member cookie makes one browser one member.
    Browser::run_two(async |alice, bob| {
        let alice_label = join(alice, app.url(), "alice").await?;
        let bob_label = join(bob, app.url(), "bob").await?;
        assert_ne!(alice_label, bob_label);
        bob.wait_for_text("#online", WAIT, |t| {
            t.contains(&alice_label) && t.contains(&bob_label)
        })
        .await?;
        let hello = "hello <b>alice</b>";
        say(bob, hello).await?;
        bob.wait_for_text("#messages li.mine", WAIT, |t| t.contains(hello))
            .await?;

        let seen = alice
            .wait_for_text("#messages", WAIT, |t| t.contains(hello))
            .await?;
        assert!(
            seen.contains(&bob_label),
            "the sender with their id: {seen}"
        );
        let markup = alice
            .eval("return document.querySelectorAll('#messages b, #messages script').length")
            .await?;
        assert_eq!(markup.as_u64(), Some(0), "text stays text");
        say(alice, "hi bob").await?;
        alice
            .wait_for_text("#messages", WAIT, |t| t.contains("hi bob"))
            .await?;

        bob.wait_for_text("#messages", WAIT, |t| t.contains("hi bob"))
            .await?;
        token_stays_out_of_urls_and_scripts(bob).await?;
        bob.client.refresh().await?;
        // The same member after the reload: the cookie kept the identity.
        bob.wait_for_text("#me", WAIT, |t| t == bob_label).await?;
        let history = bob
            .wait_for_text("#messages", WAIT, |t| {
                t.contains(hello) && t.contains("hi bob")
            })
            .await?;
        assert!(
            history.find(hello) < history.find("hi bob"),
            "in order: {history}"
        );
        bob.wait_for_text("#messages li.mine", WAIT, |t| t.contains(hello))
            .await?;
        token_stays_out_of_urls_and_scripts(bob).await?;
        bob.save_screenshot("sse-chat").await?;
        app.stop().await?;
        Ok(())
    })
    .await
}
