//! The stock page in a real Chromium: the chart draws, and each table row shows the
//! price of the last event it applied. A screenshot is kept under target/.

use std::time::Duration;

use sse_shared::testing::{
    AppProcess, Browser, SseConnection, TestResult, check_page_on_a_phone, json_data,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-stock-feed");
const SYMBOLS: &str = "AAPL,GOOGL,MSFT,AMZN,NVDA,META,TSLA,AMD,INTC,ORCL,IBM,SAP,ADBE,CRM,NFLX,PYPL,UBER,SHOP,SQ,ABNB";

#[tokio::test]
async fn the_chart_draws_and_the_table_matches_the_events() -> TestResult {
    // 20 symbols at 10 ticks a second: the load the page must stay smooth under.
    let mut app = AppProcess::spawn(
        BIN,
        &[
            "--symbols",
            SYMBOLS,
            "--interval-ms",
            "100",
            "--history",
            "5000",
        ],
    )
    .await?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        browser.wait_for_text("#connection", wait, |t| t == "open").await?;
        browser.wait_for_text("#received", wait, |t| t.parse::<u64>().is_ok_and(|n| n >= 400)).await?;

        // Every chart has drawn something: count the painted pixels of each canvas.
        let painted = browser
            .eval(
                "return [...document.querySelectorAll('#rows canvas')].map(c => {
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })",
            )
            .await?;
        let painted: Vec<u64> = painted
            .as_array()
            .ok_or("no canvases")?
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        assert_eq!(painted.len(), 20, "a chart per symbol");
        assert!(painted.iter().all(|&n| n > 50), "every chart drew a line: {painted:?}");

        // Every chart shows its scale: the lowest and the highest price it spans.
        let ranges = browser
            .eval("return [...document.querySelectorAll('#rows .range')].map(r => r.textContent)")
            .await?;
        let ranges = ranges.as_array().ok_or("no ranges")?;
        assert_eq!(ranges.len(), 20, "a scale per chart");
        for range in ranges {
            let text = range.as_str().unwrap_or_default();
            let (low, high) = text.split_once(" – ").ok_or(format!("a scale: {text:?}"))?;
            let (low, high): (f64, f64) = (low.parse()?, high.parse()?);
            assert!(0.0 < low && low <= high, "{text}");
        }

        // Each row shows the price of the event whose id it carries.
        let rows = browser
            .eval(
                "return [...document.querySelectorAll('#rows tr')].map(r =>
                   [r.dataset.symbol, r.dataset.id, r.querySelector('.price').textContent])",
            )
            .await?;
        let rows = rows.as_array().ok_or("no rows")?;
        assert_eq!(rows.len(), 20, "a row per symbol");
        for row in rows {
            let symbol = row[0].as_str().unwrap_or_default();
            // Ids are RUN-N: resume just before N to ask for that very event.
            let id = row[1].as_str().unwrap_or_default();
            let (run, n) = id.split_once('-').ok_or("an id without its run")?;
            let n: u64 = n.parse()?;
            let shown = row[2].as_str().unwrap_or_default();
            let url = format!("{}/prices?symbols={symbol}", app.url());
            let before = format!("{run}-{}", n - 1);
            let mut conn = SseConnection::open(&url, &[("last-event-id", &before)]).await?;
            let event = conn.next_event().await?;
            assert_eq!(event.id.as_deref(), Some(id));
            let data: serde_json::Value = json_data(&event)?;
            let price = data["price"].as_f64().ok_or("no price")?;
            assert_eq!(shown, format!("{price:.2}"), "{symbol} at id {id}");
        }
        browser
            .save_screenshot("sse-stock-feed")
            .await?;
        app.stop().await?;
        Ok(())
    })
    .await
}

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    check_page_on_a_phone(BIN, &[], Some("open"), "sse-stock-feed").await
}

/// `/?symbols=FOO` showed "closed" and an empty table while the server's `400` named the
/// symbols it has: the page now shows that message, and does not retry a request that
/// cannot succeed.
#[tokio::test]
async fn an_unknown_symbol_shows_the_servers_message() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    let url = format!("{}/?symbols=FOO", app.url());
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(&url).await?;
        let refused = browser
            .wait_for_text("#refused", wait, |t| !t.is_empty())
            .await?;
        assert!(
            refused.contains("FOO") && refused.contains("AAPL"),
            "{refused}"
        );
        browser
            .wait_for_text("#connection", wait, |t| t == "closed")
            .await?;
        Ok(())
    })
    .await?;
    app.stop().await
}
