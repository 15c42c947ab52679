//! The topic explorer in a real Chromium: an `EventSource` with mixed matchers (exact,
//! a URL pattern) receives exactly the public updates they select, never a private
//! one; and the page's form publishes with a token.

use std::time::Duration;

mod common;

use common::printed_token;
use serde_json::json;
use sse_shared::testing::{
    AppProcess, Browser, SseConnection, TestResult, check_page_on_a_phone, http, serve_plain,
};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a browser test secret, 32 bytes or more";
const AUDIENCE: &str = "urn:test-hub";

fn publisher() -> TestResult<String> {
    token(&["publish"])
}

/// A token granting `actions` on every topic.
fn token(actions: &[&str]) -> TestResult<String> {
    let claims = json!({
        "exp": unix_now() + 600,
        "aud": AUDIENCE,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": actions, "topics": [{"match": "*"}]}],
    });
    Ok(sign(SECRET.as_bytes(), &claims)?)
}

async fn publish(base: &str, token: &str, form: &[(&str, &str)]) -> TestResult {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let response = http()
        .post(format!("{base}/.well-known/mercure"))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("publish refused: {}", response.status()).into());
    }
    Ok(())
}

#[tokio::test]
async fn the_page_receives_exactly_the_public_updates_its_matchers_select() -> TestResult {
    let mut app =
        AppProcess::spawn(BIN, &["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE]).await?;
    let token = publisher()?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        // An exact matcher and a URL pattern, added through the page.
        browser.type_into("#pattern", "urn:news").await?;
        browser.click("#matcher-form button").await?;
        browser
            .eval("document.getElementById('match-type').value = 'match_urlpattern'")
            .await?;
        browser.type_into("#pattern", "/books/:id").await?;
        browser.click("#matcher-form button").await?;
        browser.click("#connect").await?;
        browser
            .wait_for_text("#status", wait, |t| t.starts_with("connected"))
            .await?;

        let base = app.url();
        publish(base, &token, &[("topic", "urn:news"), ("data", "news")]).await?;
        publish(base, &token, &[("topic", "urn:other"), ("data", "other")]).await?;
        publish(base, &token, &[("topic", "/books/1"), ("data", "book 1")]).await?;
        publish(
            base,
            &token,
            &[("topic", "/books/1/pages/2"), ("data", "a page")],
        )
        .await?;
        publish(
            base,
            &token,
            &[
                ("topic", "/books/2"),
                ("data", "private book"),
                ("private", "on"),
            ],
        )
        .await?;
        publish(
            base,
            &token,
            &[
                ("topic", "urn:news"),
                ("data", "private news"),
                ("private", "on"),
            ],
        )
        .await?;
        publish(base, &token, &[("topic", "/books/3"), ("data", "sentinel")]).await?;
        browser
            .wait_for_text("#log li:first-child pre", wait, |t| t == "sentinel")
            .await?;
        let seen = browser
            .eval("return [...document.querySelectorAll('#log li pre')].map(p => p.textContent)")
            .await?;
        assert_eq!(seen, json!(["sentinel", "book 1", "news"]), "newest first");

        // The page's own form publishes with the token typed into it.
        browser.type_into("#token", &token).await?;
        browser
            .eval("document.getElementById('topic').value = 'urn:news'")
            .await?;
        browser
            .eval("document.getElementById('data').value = 'from the page'")
            .await?;
        browser.click("#publish-form button").await?;
        browser
            .wait_for_text("#published", wait, |t| t.starts_with("published as #"))
            .await?;
        browser
            .wait_for_text("#log li:first-child pre", wait, |t| t == "from the page")
            .await?;
        browser.save_screenshot("sse-topics").await?;
        app.stop().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn the_page_shows_who_is_subscribed_to_its_matchers_live() -> TestResult {
    let mut app = AppProcess::spawn(
        BIN,
        &[
            "--jwt-secret",
            SECRET,
            "--jwt-audience",
            AUDIENCE,
            "--subscriptions",
        ],
    )
    .await?;
    let token = token(&["publish", "subscribe"])?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        browser.type_into("#pattern", "urn:news").await?;
        browser.click("#matcher-form button").await?;
        browser.type_into("#token", &token).await?;
        browser.click("#connect").await?;
        // The page's own EventSource is the first subscriber to urn:news.
        browser.wait_for_text("#subscribers-status", wait, |t| t == "1 subscribed").await?;
        // Another client subscribes to the same matcher, and to another one.
        let url = format!("{}/.well-known/mercure?match=urn%3Anews&match=urn%3Aother", app.url());
        let mut other = SseConnection::open(&url, &[]).await?;
        other.next().await?; // retry: it is subscribed
        browser.wait_for_text("#subscribers-status", wait, |t| t == "2 subscribed").await?;
        let shown = browser.eval("return [...document.querySelectorAll('#subscribers li')].map(li => li.textContent)").await?;
        let shown = shown.as_array().ok_or("no list")?;
        assert!(shown.iter().all(|s| s.as_str().is_some_and(|s| s.starts_with("exact urn:news: urn:uuid:"))), "{shown:?}");
        // It goes away: the list follows.
        drop(other);
        browser.wait_for_text("#subscribers-status", wait, |t| t == "1 subscribed").await?;
        browser.save_screenshot("sse-topics-subscribers").await?;
        app.stop().await?;
        Ok(())
    })
    .await
}

/// On a phone (390 px wide) the page fits with no sideways scrolling, and it has an
/// icon (every page's `/favicon.ico` was a `404`).
#[tokio::test]
async fn the_page_fits_a_phone_and_has_its_icon() -> TestResult {
    let args = ["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE];
    check_page_on_a_phone(BIN, &args, Some("not connected"), "sse-topics").await
}

/// An invalid URL pattern was added, its subscription got `400`, and the page said
/// "reconnecting" for ever while the header said "connecting": the page now shows the
/// server's message, both say "closed", and nothing is retried.
#[tokio::test]
async fn an_invalid_pattern_shows_the_servers_message() -> TestResult {
    let mut app =
        AppProcess::spawn(BIN, &["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE]).await?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(app.url()).await?;
        browser
            .wait_for_text("#connection", wait, |t| t == "not connected")
            .await?;
        browser
            .eval("document.getElementById('match-type').value = 'match_urlpattern'")
            .await?;
        browser
            .type_into("#pattern", "https://example.com/:id(")
            .await?;
        browser.click("#matcher-form button[type=submit]").await?;
        browser.click("#connect").await?;
        let status = browser
            .wait_for_text("#status", wait, |t| t.starts_with("closed:"))
            .await?;
        assert!(
            status.len() > "closed: ".len() + 10,
            "the server's message: {status}"
        );
        assert_eq!(browser.text("#connection").await?, "closed");
        // The remove control can be seen: not white on the page's own background.
        // (The background it is shown on: its own, or the nearest one behind it.)
        let colours = browser
            .eval(
                "const b = document.querySelector('#matchers button');
                 let e = b, bg = 'rgba(0, 0, 0, 0)';
                 while (e && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
                   bg = getComputedStyle(e).backgroundColor; e = e.parentElement; }
                 return [getComputedStyle(b).color, bg]",
            )
            .await?;
        assert_ne!(
            colours[0], colours[1],
            "the remove control's text is its background's colour"
        );
        Ok(())
    })
    .await?;
    app.stop().await
}

/// As the README says to try it: no `--jwt-secret`, the page at `localhost:PORT`, the
/// printed token pasted into it. The token names the hub as the page reaches it, so
/// the page's publish is accepted (it was not when the token named port 8080).
#[tokio::test]
async fn the_printed_token_publishes_from_the_page_at_localhost() -> TestResult {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    let token = printed_token(&app).await?;
    let page = format!("http://localhost:{}/", app.port()?);
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        browser.client.goto(&page).await?;
        browser.type_into("#token", &token).await?;
        browser
            .eval("document.getElementById('topic').value = 'urn:tried'")
            .await?;
        browser
            .eval("document.getElementById('data').value = 'tried out'")
            .await?;
        browser.click("#publish-form button").await?;
        browser
            .wait_for_text("#published", wait, |t| t.starts_with("published as #"))
            .await?;
        app.stop().await?;
        Ok(())
    })
    .await
}

/// A page of an app written for Mercure 0.x (as API Platform and Symfony apps are):
/// its response sets the `mercureAuthorization` cookie (`HttpOnly`, `SameSite=Strict`,
/// the hub's path, as Symfony's `Authorization::setCookie` does), and its script opens
/// an `EventSource` on the hub (`?hub=` in its URL) with `topic=` selectors and
/// `withCredentials`, listing the `data` of each update.
struct App0x {
    cookie_token: String,
}

#[salvo::async_trait]
impl salvo::Handler for App0x {
    async fn handle(
        &self,
        _req: &mut salvo::Request,
        _depot: &mut salvo::Depot,
        res: &mut salvo::Response,
        _ctrl: &mut salvo::FlowCtrl,
    ) {
        let cookie = format!(
            "mercureAuthorization={}; Path=/.well-known/mercure; HttpOnly; SameSite=Strict",
            self.cookie_token
        );
        let _ = res.add_header("set-cookie", cookie, false);
        res.render(salvo::writing::Text::Html(
            r#"<!doctype html><title>a Mercure 0.x app</title><ul id="updates"></ul>
<script>
  const hub = new URL(new URLSearchParams(location.search).get("hub"));
  hub.searchParams.append("topic", "https://example.com/books/{id}");
  hub.searchParams.append("topic", "*");
  const source = new EventSource(hub, { withCredentials: true });
  source.onopen = () => { document.title = "open"; };
  source.onmessage = (e) => {
    const item = document.createElement("li");
    item.textContent = e.data;
    document.getElementById("updates").append(item);
  };
</script>"#,
        ));
    }
}

#[tokio::test]
async fn a_mercure_0x_page_reads_private_updates_with_its_cookie_with_protocol_compat_8()
-> TestResult {
    // The 0.x token the app's cookie carries: the `mercure` claim, no `typ` or `aud`.
    let claims = json!({"exp": unix_now() + 600, "mercure": {"subscribe": ["https://example.com/books/{id}"]}});
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let cookie_token = jsonwebtoken::encode(&header, &claims, &key)?;
    // The app on a bare `salvo::Server` (its page's inline script is its own business,
    // not under our stack's CSP).
    let app = serve_plain(salvo::Router::new().get(App0x { cookie_token })).await?;
    let app_port = app.port();
    // The app and the hub on one site (`localhost`), two origins: the hub lets the
    // app's origin read with credentials, as a deployment with the cookie must.
    let app_origin = format!("http://localhost:{app_port}");
    let args = [
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        "--protocol-compat",
        "8",
        "--cors-origins",
        &app_origin,
    ];
    let mut hub = AppProcess::spawn(BIN, &args).await?;
    let hub_url = format!("http://localhost:{}/.well-known/mercure", hub.port()?);
    let token = publisher()?;
    Browser::run(async |browser| {
        let wait = Duration::from_secs(10);
        let page = format!(
            "{app_origin}/?hub={}",
            url::form_urlencoded::byte_serialize(hub_url.as_bytes()).collect::<String>()
        );
        browser.client.goto(&page).await?;
        let opened = async || Ok(browser.client.title().await? == "open");
        sse_shared::testing::wait_until(wait, "the page's EventSource to open", opened).await?;
        let base = hub.url();
        let private = |topic, data| [("topic", topic), ("data", data), ("private", "on")];
        publish(
            base,
            &token,
            &private("https://example.com/books/1", "book 1"),
        )
        .await?;
        publish(base, &token, &private("urn:other", "not for this token")).await?;
        publish(
            base,
            &token,
            &[("topic", "urn:public"), ("data", "sentinel")],
        )
        .await?;
        browser
            .wait_for_text("#updates li:last-child", wait, |t| t == "sentinel")
            .await?;
        let seen = browser
            .eval("return [...document.querySelectorAll('#updates li')].map(li => li.textContent)")
            .await?;
        assert_eq!(seen, json!(["book 1", "sentinel"]));
        hub.stop().await?;
        Ok(())
    })
    .await
}
