//! The counter page in a real Chromium: it counts, survives a server restart, and
//! goes on counting with no gap and no repeat.

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Browser, TestResult, WindowHandle, check_page_on_a_phone, metric, wait_until,
    within,
};

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

/// Each tab's (count, events received), read in one script so no event lands between.
async fn tab_state(browser: &Browser) -> TestResult<(u64, u64)> {
    let both = browser
        .eval("return [document.getElementById('count').textContent, document.getElementById('received').textContent]")
        .await?;
    let read = |i: usize| number(both[i].as_str().unwrap_or_default());
    Ok((read(0), read(1)))
}

/// Opens `n` tabs of the page at `url`, the current one first, each running `before`
/// (if any) ahead of the page's scripts, and waits until every tab shows its stream
/// open and counting. Without sharing, the seventh tab's page never loads: that fails
/// within seconds.
async fn open_tabs(
    browser: &Browser,
    url: &str,
    n: usize,
    before: Option<&str>,
) -> TestResult<Vec<WindowHandle>> {
    let (client, wait) = (&browser.client, Duration::from_secs(10));
    let mut tabs = Vec::new();
    for i in 0..n {
        let tab = match i {
            0 => client.window().await?,
            _ => client.new_window(true).await?.handle,
        };
        client.switch_to_window(tab.clone()).await?;
        if let Some(script) = before {
            browser.before_each_page(script).await?;
        }
        within(wait, "a tab to load", client.goto(url)).await??;
        // Open before the next tab loads: the first tab is the one that started it.
        browser
            .wait_for_text("#connection", wait, |t| t == "open")
            .await?;
        tabs.push(tab);
    }
    for tab in &tabs {
        client.switch_to_window(tab.clone()).await?;
        browser
            .wait_for_text("#received", wait, |t| number(t) >= 2)
            .await?;
    }
    Ok(tabs)
}

#[tokio::test]
async fn eight_tabs_share_one_stream_and_go_on_when_tabs_close() -> TestResult {
    let app = AppProcess::spawn(BIN, &ARGS).await?;
    let open_streams = || metric(app.url(), "sse_open_streams");
    Browser::run(async |browser| {
        let client = &browser.client;
        let wait = Duration::from_secs(10);
        // Eight tabs of the page, over plain HTTP/1.1 (six connections per host at most).
        let tabs = open_tabs(browser, app.url(), 8, None).await?;
        assert_eq!(open_streams().await?, 1.0, "one stream for eight tabs");

        // Close the tabs one by one, the first (which started the stream) first: the
        // others go on, each number once.
        let mut before = Vec::new();
        for tab in &tabs {
            client.switch_to_window(tab.clone()).await?;
            before.push(tab_state(browser).await?);
        }
        for closing in 0..7 {
            client.switch_to_window(tabs[closing].clone()).await?;
            client.close_window().await?;
            let next = tabs[closing + 1].clone();
            client.switch_to_window(next).await?;
            let (count, _) = tab_state(browser).await?;
            browser
                .wait_for_text("#count", wait, |t| number(t) >= count + 2)
                .await?;
        }
        let (count, received) = tab_state(browser).await?;
        let (first_count, first_received) = before[7];
        assert_eq!(
            received - first_received,
            count - first_count,
            "the last tab missed or repeated none while the others closed"
        );
        assert_eq!(open_streams().await?, 1.0, "still one stream");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn without_shared_worker_one_tab_holds_the_stream_and_the_next_takes_over() -> TestResult {
    let app = AppProcess::spawn(BIN, &ARGS).await?;
    let open_streams = || metric(app.url(), "sse_open_streams");
    Browser::run(async |browser| {
        let client = &browser.client;
        let wait = Duration::from_secs(10);
        // Three tabs of a browser without SharedWorker (Chrome on Android): the tabs
        // elect a holder with Web Locks, which relays over a BroadcastChannel.
        let no_worker = "Object.defineProperty(window, 'SharedWorker', { value: undefined });";
        let tabs = open_tabs(browser, app.url(), 3, Some(no_worker)).await?;
        for tab in &tabs {
            client.switch_to_window(tab.clone()).await?;
            let shared = browser.eval("return typeof SharedWorker").await?;
            assert_eq!(shared, "undefined", "the fallback is what runs");
        }
        assert_eq!(open_streams().await?, 1.0, "one stream for three tabs");

        // The first tab holds the lock; it closes, the next takes the stream over from
        // the last event the tabs saw: the last tab misses and repeats nothing.
        client.switch_to_window(tabs[2].clone()).await?;
        let (count, received) = tab_state(browser).await?;
        client.switch_to_window(tabs[0].clone()).await?;
        client.close_window().await?;
        client.switch_to_window(tabs[2].clone()).await?;
        browser
            .wait_for_text("#count", wait, |t| number(t) >= count + 5)
            .await?;
        let (later_count, later_received) = tab_state(browser).await?;
        assert_eq!(
            later_received - received,
            later_count - count,
            "no gap and no repeat across the hand-over"
        );
        wait_until(wait, "one stream again", || async {
            Ok(open_streams().await? == 1.0)
        })
        .await?;
        Ok(())
    })
    .await
}

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    check_page_on_a_phone(BIN, &ARGS, Some("open"), "sse-counter").await
}
