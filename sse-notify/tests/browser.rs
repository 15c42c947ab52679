//! Two users in two browsers; the admin form sends to one of them; only that window
//! shows the toast, and no script can read the session cookie. Tabs of one browser
//! share one stream, and a sign-in in one of them takes effect in all.

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Browser, TestResult, check_page_on_a_phone, metric, wait_until,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");
const ADMIN: &str = "browser-test-admin-token";
const WAIT: Duration = Duration::from_secs(10);

async fn sign_in(browser: &Browser, url: &str, user: &str) -> TestResult {
    browser.client.goto(url).await?;
    browser
        .wait_for_text("#connection", WAIT, |t| t == "open")
        .await?;
    // Signing in stands for your app's login: it needs the admin token here.
    browser.type_into("#token", ADMIN).await?;
    browser.type_into("#user", user).await?;
    browser.click("#session-form button[type=submit]").await?;
    browser.wait_for_text("#who", WAIT, |t| t == user).await?;
    browser
        .wait_for_text("#connection", WAIT, |t| t == "open")
        .await?;
    Ok(())
}

async fn send(browser: &Browser, title: &str, target: &str) -> TestResult {
    for field in ["#title", "#message", "#target"] {
        browser
            .client
            .find(fantoccini_css(field))
            .await?
            .clear()
            .await?;
    }
    browser.type_into("#title", title).await?;
    browser.type_into("#message", "from the admin form").await?;
    if !target.is_empty() {
        browser.type_into("#target", target).await?;
    }
    browser.click("#publish-form button").await?;
    browser
        .wait_for_text("#publish-result", WAIT, |t| t.starts_with("Published"))
        .await?;
    Ok(())
}

fn fantoccini_css(css: &str) -> sse_shared::testing::Locator<'_> {
    sse_shared::testing::Locator::Css(css)
}

#[tokio::test]
async fn a_targeted_notification_shows_only_in_its_users_window() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &["--admin-token", ADMIN]).await?;
    Browser::run_two(async |alice, bob| {
        sign_in(alice, app.url(), "alice").await?;
        sign_in(bob, app.url(), "bob").await?;

        // The session cookie is HttpOnly: the page's scripts cannot read the JWT.
        let cookies = alice.eval("return document.cookie").await?;
        assert_eq!(
            cookies,
            serde_json::json!(""),
            "a script could read {cookies}"
        );
        send(alice, "For bob only", "bob").await?;
        bob.wait_for_text("#toasts", WAIT, |t| t.contains("For bob only"))
            .await?;
        bob.wait_for_text("#received", WAIT, |t| t.contains("just for you"))
            .await?;

        // A broadcast after it: once alice has it, she would have had bob's before it.
        send(alice, "For everyone", "").await?;
        let seen = alice
            .wait_for_text("#received", WAIT, |t| t.contains("For everyone"))
            .await?;
        assert!(
            !seen.contains("For bob only"),
            "alice saw bob's notification: {seen}"
        );
        let toasts = alice.text("#toasts").await?;
        assert!(!toasts.contains("For bob only"), "{toasts}");
        bob.wait_for_text("#received", WAIT, |t| t.contains("For everyone"))
            .await?;
        bob.save_screenshot("sse-notify").await?;
        app.stop().await?;
        Ok(())
    })
    .await
}

/// Two tabs of one browser hold one stream. Signing in in the first changes the cookie
/// both share: the stream is opened again for both, so the second tab shows a
/// notification for that user too, and still one stream serves them.
#[tokio::test]
async fn a_sign_in_in_one_tab_reaches_the_stream_every_tab_shares() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &["--admin-token", ADMIN]).await?;
    let open_streams = || metric(app.url(), "sse_open_streams");
    Browser::run(async |browser| {
        let client = &browser.client;
        let first = client.window().await?;
        client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", WAIT, |t| t == "open")
            .await?;
        let second = client.new_window(true).await?.handle;
        client.switch_to_window(second.clone()).await?;
        client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", WAIT, |t| t == "open")
            .await?;
        assert_eq!(open_streams().await?, 1.0, "one stream for two tabs");

        client.switch_to_window(first).await?;
        browser.type_into("#token", ADMIN).await?;
        browser.type_into("#user", "carol").await?;
        browser.click("#session-form button[type=submit]").await?;
        browser
            .wait_for_text("#who", WAIT, |t| t == "carol")
            .await?;
        // The stream that the sign-in reopened serves both tabs: the old one closes.
        wait_until(WAIT, "one stream again", || async {
            Ok(open_streams().await? == 1.0)
        })
        .await?;
        send(browser, "For carol only", "carol").await?;
        client.switch_to_window(second).await?;
        browser
            .wait_for_text("#received", WAIT, |t| t.contains("just for you"))
            .await?;
        assert_eq!(open_streams().await?, 1.0, "still one stream");
        Ok(())
    })
    .await?;
    app.stop().await
}

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    check_page_on_a_phone(BIN, &["--admin-token", ADMIN], Some("open"), "sse-notify").await
}

/// Signing in without the admin token showed "Signed in as **This needs the admin
/// token ...**": the refusal now has its own place, and who is signed in is unchanged.
#[tokio::test]
async fn a_refused_sign_in_says_why_and_leaves_who_is_signed_in() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &["--admin-token", ADMIN]).await?;
    Browser::run(async |browser| {
        browser.client.set_window_size(1280, 900).await?;
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", WAIT, |t| t == "open")
            .await?;
        // Sign out stays on the line of the name and Sign in (it wrapped onto its own).
        let middles = browser
            .eval(
                "return ['#user', '#session-form button[type=submit]', '#sign-out']
                     .map(s => { const r = document.querySelector(s).getBoundingClientRect();
                                 return r.top + r.height / 2; })",
            )
            .await?;
        let middles: Vec<f64> = (0..3).filter_map(|i| middles[i].as_f64()).collect();
        let one_line = middles.len() == 3 && middles.iter().all(|m| (m - middles[0]).abs() < 4.0);
        assert!(
            one_line,
            "the name, Sign in and Sign out on one line: {middles:?}"
        );
        browser.type_into("#user", "alice").await?;
        browser.click("#session-form button[type=submit]").await?;
        let error = browser
            .wait_for_text("#session-error", WAIT, |t| !t.is_empty())
            .await?;
        assert!(error.contains("admin token"), "{error}");
        assert_eq!(browser.text("#who").await?, "nobody (broadcasts only)");
        Ok(())
    })
    .await?;
    app.stop().await
}
