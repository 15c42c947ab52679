//! Two Chromium browsers chat with each other; one reloads and keeps its history and
//! its identity, and its member token never appears in a URL the page requested, nor
//! where a script could read it. Pages of other origins can neither replace a member's
//! identity nor post as them.

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Browser, SseConnection, TestResult, another_origin, http, json_data, metric,
    wait_until, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");
const WAIT: Duration = Duration::from_secs(10);

/// Joins as `name`; returns the page's label for us ("alice #1").
async fn join(browser: &Browser, url: &str, name: &str) -> TestResult<String> {
    browser.client.goto(url).await?;
    // Before the welcome the room (and its send box) is not shown, only the join form.
    let shown = browser
        .eval("return getComputedStyle(document.getElementById('room')).display")
        .await?;
    assert_eq!(shown, "none", "the room shows before anyone joined");
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

/// Waits until the browser's page is the answer to a request for `path` (the refusal is
/// rendered as a page at that URL), or until `opened` says the server started a stream
/// instead; returns the page's text.
async fn answer_at(
    browser: &Browser,
    path: &str,
    opened: impl AsyncFn() -> TestResult<bool>,
) -> TestResult<String> {
    wait_until(WAIT, "the request to be answered", || async {
        // Bounded: WebDriver waits for a navigation, and a stream never finishes loading.
        let at = within(
            WAIT,
            "the page's address",
            browser.eval("return location.href"),
        )
        .await??;
        Ok(at.as_str().is_some_and(|u| u.contains(path)) || opened().await?)
    })
    .await?;
    Ok(browser
        .eval("return document.body ? document.body.innerText : ''")
        .await?
        .to_string())
}

/// Identity fixation: a page of another site navigates the victim's browser to the join
/// URL with a name of its choosing. The `SameSite=Strict` cookie does not travel on that
/// navigation, but the answer's `Set-Cookie` would be kept; the server issues nothing
/// (`403 cross-origin`), so the victim's cookie and name are unchanged.
#[tokio::test]
async fn another_sites_navigation_to_the_join_url_leaves_the_member_as_they_were() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    // localhost is another site than 127.0.0.1.
    let attacker = another_origin().await?.replace("127.0.0.1", "localhost");
    let base = app.url().to_owned();
    Browser::run(async |victim| {
        let me = join(victim, &base, "alice").await?;
        let cookie = victim.client.get_named_cookie("chat-member").await?;
        victim.client.goto(&attacker).await?;
        // A join would open one more stream (the victim's page may keep its own open:
        // Chromium can hold a page left behind in its back-forward cache).
        let streams = || async { metric(&base, "sse_open_streams").await };
        let before = streams().await?;
        let join_url = format!("{base}/chat/events?name=PWNED");
        // From a timer, so the command returns before the navigation starts.
        victim
            .eval(&format!(
                "setTimeout(() => {{ location.href = {join_url:?}; }}, 0)"
            ))
            .await?;
        let answer = answer_at(victim, "/chat/events", async || {
            Ok(streams().await? > before)
        })
        .await?;
        assert!(
            answer.contains("cross-origin"),
            "the navigation got {answer}"
        );

        victim.client.goto(&base).await?;
        let after = victim.client.get_named_cookie("chat-member").await?;
        assert_eq!(
            after.value(),
            cookie.value(),
            "the member cookie was replaced"
        );
        // The page rejoins with the cookie: still alice, with alice's id.
        victim.wait_for_text("#me", WAIT, |t| t == me).await?;
        Ok(())
    })
    .await?;
    app.stop().await
}

/// Cross-origin posts: a page on another port of this host (the same site, so the
/// `SameSite=Strict` cookie travels) posts to `/chat/messages` by a `text/plain` form
/// and by a `no-cors` fetch with credentials. Both are refused (`403 cross-origin`) and
/// nothing is published as the victim.
#[tokio::test]
async fn another_origins_form_and_no_cors_fetch_cannot_post_as_the_member() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    let attacker = another_origin().await?;
    let base = app.url().to_owned();
    let messages = format!("{base}/chat/messages");
    Browser::run(async |victim| {
        join(victim, &base, "alice").await?;
        victim.client.goto(&attacker).await?;
        let fetched = victim
            .eval(&format!(
                "return fetch({messages:?}, {{ method: 'POST', mode: 'no-cors', credentials: 'include', body: 'posted by a no-cors fetch' }})
                   .then(() => 'sent', (e) => 'failed: ' + e)"
            ))
            .await?;
        // The browser sent it (an opaque answer): only the server can refuse it.
        assert_eq!(fetched, "sent");
        victim
            .eval(&format!(
                "const form = document.createElement('form');
                 form.method = 'post'; form.enctype = 'text/plain'; form.action = {messages:?};
                 const field = document.createElement('input');
                 field.name = 'posted by a form'; field.value = '!';
                 form.append(field); document.body.append(form);
                 setTimeout(() => form.submit(), 0);"
            ))
            .await?;
        let answer = answer_at(victim, "/chat/messages", async || Ok(false)).await?;
        assert!(answer.contains("cross-origin"), "the form post got {answer}");
        Ok(())
    })
    .await?;

    // An observer posts a last message: every message before it is in its replay.
    let mut observer =
        SseConnection::open(&format!("{base}/chat/events?name=observer"), &[]).await?;
    let welcome = observer.chat_welcome().await?;
    let posted = http()
        .post(&messages)
        .bearer_auth(&welcome.token)
        .body("the last message")
        .send()
        .await?;
    assert_eq!(posted.status(), 202);
    let mut texts = Vec::new();
    loop {
        let event = observer.next_event().await?;
        if event.event.as_deref() == Some("message") {
            let text = json_data(&event)?["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if text == "the last message" {
                break;
            }
            texts.push(text);
        }
    }
    assert!(texts.is_empty(), "published from another origin: {texts:?}");
    app.stop().await
}
