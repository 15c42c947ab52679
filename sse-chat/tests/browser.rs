//! Two Chromium browsers chat with each other; one reloads and keeps its history and
//! its identity, and its member token never appears in a URL the page requested, nor
//! where a script could read it. Pages of other origins can neither replace a member's
//! identity nor post as them. Eight tabs of one member share one stream.

mod common;

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Browser, SseConnection, TestResult, WindowHandle, another_origin,
    check_page_on_a_phone, http, json_data, metric, wait_until, within,
};

use common::ReadWelcome;

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

/// The text of every line of the conversation a tab shows (`presence`: with the joined /
/// left lines).
async fn conversation(browser: &Browser, presence: bool) -> TestResult<Vec<String>> {
    let selector = if presence {
        "#messages li"
    } else {
        "#messages li:not(.presence)"
    };
    let lines = browser
        .eval(&format!(
            "return [...document.querySelectorAll({selector:?})].map(li => li.textContent)"
        ))
        .await?;
    Ok(serde_json::from_value(lines)?)
}

/// The lines from the one that contains `marker` on (all of them if none does).
fn from_marker(lines: &[String], marker: &str) -> Vec<String> {
    let start = lines.iter().position(|l| l.contains(marker)).unwrap_or(0);
    lines[start..].to_vec()
}

/// One member (one browser, so one cookie) with `n` tabs of the chat. The first tab
/// joins; bob, another member, says more than a tab is shown of the past (so the
/// welcome a late tab needs is no longer among the events the stream kept); the first
/// tab says something, and the others open the page (each running `before`, if any,
/// ahead of the page's scripts). Every tab shows the member, both members online, and
/// the same conversation from that message on; the server holds one stream for the
/// tabs. Then the tabs close one by one, the first (which opened the stream) first, each
/// saying something just before: the last tab shows every message once, in order.
/// `presence`: no joined / left line appears meanwhile (the shared stream never closed).
async fn tabs_share_one_stream(n: usize, before: Option<&str>, presence: bool) -> TestResult {
    let app = AppProcess::spawn(BIN, &["--post-burst", "100", "--ip-post-burst", "100"]).await?;
    let open_streams = || metric(app.url(), "sse_open_streams");
    Browser::run(async |browser| {
        let client = &browser.client;
        if let Some(script) = before {
            browser.before_each_page(script).await?;
        }
        let me = join(browser, app.url(), "alice").await?;
        let mut bob =
            SseConnection::open(&format!("{}/chat/events?name=bob", app.url()), &[]).await?;
        let bob_token = bob.chat_welcome().await?.token;
        for i in 0..60 {
            let posted = http()
                .post(format!("{}/chat/messages", app.url()))
                .bearer_auth(&bob_token)
                .body(format!("bob's message {i}"))
                .send()
                .await?;
            assert_eq!(posted.status(), 202);
        }
        const MARK: &str = "before the tabs";
        say(browser, MARK).await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains(MARK))
            .await?;
        let mut tabs: Vec<WindowHandle> = vec![client.window().await?];
        for _ in 1..n {
            let tab = client.new_window(true).await?.handle;
            client.switch_to_window(tab.clone()).await?;
            if let Some(script) = before {
                browser.before_each_page(script).await?;
            }
            within(WAIT, "a tab to load", client.goto(app.url())).await??;
            // The cookie and the stored name: the same member, without joining again.
            browser.wait_for_text("#me", WAIT, |t| t == me).await?;
            browser
                .wait_for_text("#messages", WAIT, |t| t.contains(MARK))
                .await?;
            tabs.push(tab);
        }
        wait_until(WAIT, "one stream for every tab (and bob's)", || async {
            Ok(open_streams().await? == 2.0)
        })
        .await?;
        let mut shown = Vec::new();
        for tab in &tabs {
            client.switch_to_window(tab.clone()).await?;
            browser
                .wait_for_text("#online-count", WAIT, |t| t == "2")
                .await?;
            shown.push(from_marker(&conversation(browser, presence).await?, MARK));
        }
        assert!(
            shown.iter().all(|each| each == &shown[0]),
            "every tab shows the same conversation: {shown:#?}"
        );

        let mut expected = Vec::new();
        for closing in 0..n - 1 {
            client.switch_to_window(tabs[closing].clone()).await?;
            let text = format!("said by tab {closing}");
            say(browser, &text).await?;
            browser
                .wait_for_text("#messages", WAIT, |t| t.contains(&text))
                .await?;
            expected = from_marker(&conversation(browser, presence).await?, MARK);
            client.close_window().await?;
            client.switch_to_window(tabs[closing + 1].clone()).await?;
            browser
                .wait_for_text("#messages", WAIT, |t| t.contains(&text))
                .await?;
        }
        // The last tab says something too: it posts, and the stream it hears is alive.
        say(browser, "said by the last tab").await?;
        browser
            .wait_for_text("#messages", WAIT, |t| t.contains("said by the last tab"))
            .await?;
        let last = from_marker(&conversation(browser, presence).await?, MARK);
        assert_eq!(
            last[..last.len() - 1],
            expected[..],
            "the last tab missed or repeated nothing"
        );
        assert!(last[last.len() - 1].contains("said by the last tab"));
        let said: Vec<_> = last.iter().filter(|l| l.contains("said by tab")).collect();
        assert_eq!(said.len(), n - 1, "every tab's message, once: {last:#?}");
        assert_eq!(open_streams().await?, 2.0, "still one stream for the tabs");
        drop(bob); // online until here
        Ok(())
    })
    .await
}

#[tokio::test]
async fn eight_tabs_of_a_member_share_one_stream_and_see_every_message_once() -> TestResult {
    // Over plain HTTP/1.1: six connections per host at most, so eight streams could not be.
    tabs_share_one_stream(8, None, true).await
}

#[tokio::test]
async fn without_shared_worker_the_tabs_of_a_member_elect_one_to_hold_the_stream() -> TestResult {
    // Chrome on Android: a tab holds the stream (Web Locks) and relays it (BroadcastChannel).
    // When it closes, the next resumes from the last id on a stream of its own, so the room
    // may see the member leave and join again: only the messages are compared.
    let no_worker = "Object.defineProperty(window, 'SharedWorker', { value: undefined });";
    tabs_share_one_stream(3, Some(no_worker), false).await
}

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    check_page_on_a_phone(BIN, &[], Some("not joined"), "sse-chat").await
}

/// A message of only spaces was dropped with no word, and the box let 2,000 characters
/// through where the server counts 2,000 bytes (1,500 × "é" was refused after the
/// fact): both are now said on the page, before anything is sent.
#[tokio::test]
async fn a_blank_message_and_one_over_the_byte_limit_are_explained() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    Browser::run(async |browser| {
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", WAIT, |t| t == "not joined")
            .await?;
        join(browser, app.url(), "alice").await?;
        say(browser, "   ").await?;
        browser
            .wait_for_text("#send-error", WAIT, |t| t.contains("only spaces"))
            .await?;
        browser
            .eval("document.getElementById('text').value = 'é'.repeat(1500)")
            .await?;
        browser.click("#send-form button").await?;
        let said = browser
            .wait_for_text("#send-error", WAIT, |t| t.contains("bytes"))
            .await?;
        assert!(
            said.contains("3000"),
            "the message's own size in bytes: {said}"
        );
        Ok(())
    })
    .await?;
    app.stop().await
}
