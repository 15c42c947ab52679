//! A real Chromium through chromedriver ([`Browser`]).

#[allow(unused_imports)]
use super::*;

/// A fresh headless Chromium driven over WebDriver.
pub struct Browser {
    /// The WebDriver client.
    pub client: fantoccini::Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver (env `CHROMEDRIVER`, default `/usr/bin/chromedriver`) on a
    /// free port and a headless Chromium (env `CHROME`, default `/usr/bin/chromium`)
    /// with a fresh profile.
    pub async fn launch() -> TestResult<Self> {
        let driver_path =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome_path = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into());
        for path in [&driver_path, &chrome_path] {
            if !std::path::Path::new(path).exists() {
                return Err(format!(
                    "{path} not found: install chromium and chromium-driver (scripts/test does)"
                )
                .into());
            }
        }
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let webdriver = format!("http://127.0.0.1:{port}");
        wait_until(Duration::from_secs(20), "chromedriver to start", || async {
            Ok(http()
                .get(format!("{webdriver}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()))
        })
        .await?;

        let profile =
            std::env::temp_dir().join(format!("sse-test-chromium-{}-{port}", std::process::id()));
        let mut capabilities = serde_json::Map::new();
        // The HTTPS tests serve a self-signed certificate.
        capabilities.insert("acceptInsecureCerts".into(), serde_json::Value::Bool(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chrome_path,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = within(
            Duration::from_secs(30),
            "a Chromium session",
            fantoccini::ClientBuilder::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
            .capabilities(capabilities)
            .connect(&webdriver),
        )
        .await??;
        Ok(Self {
            client,
            driver,
            profile,
        })
    }

    /// Runs `test` with a fresh browser, which is closed afterwards however the test
    /// ended.
    pub async fn run(test: impl AsyncFnOnce(&Browser) -> TestResult) -> TestResult {
        let browser = Self::launch().await?;
        let result = test(&browser).await;
        let closed = browser.close().await;
        result.and(closed)
    }

    /// [`Browser::run`] with two browsers, for two users (cookies are per browser).
    pub async fn run_two(test: impl AsyncFnOnce(&Browser, &Browser) -> TestResult) -> TestResult {
        let (first, second) = Self::launch_two().await?;
        let result = test(&first, &second).await;
        let closed = (first.close().await, second.close().await);
        result.and(closed.0).and(closed.1)
    }

    /// Two browsers, for two users (cookies are per browser); if the second cannot
    /// start, the first is closed.
    pub async fn launch_two() -> TestResult<(Self, Self)> {
        let first = Self::launch().await?;
        match Self::launch().await {
            Ok(second) => Ok((first, second)),
            Err(e) => {
                first.close().await?;
                Err(e)
            }
        }
    }

    /// Runs `script` first in every page this tab loads from now on, before the page's
    /// own scripts (Chrome DevTools' `Page.addScriptToEvaluateOnNewDocument`, through
    /// chromedriver): to take away an API a browser may lack, for instance.
    pub async fn before_each_page(&self, script: &str) -> TestResult {
        let params = serde_json::json!({ "source": script });
        let command = DevTools("Page.addScriptToEvaluateOnNewDocument", params);
        self.client.issue_cmd(command).await?;
        Ok(())
    }

    /// Lays pages out as a phone does from now on: a viewport 390 CSS pixels wide and
    /// 844 high, on a touch screen (Chrome DevTools' `Emulation.setDeviceMetricsOverride`;
    /// a window cannot be made that narrow).
    pub async fn as_phone(&self) -> TestResult {
        let params = serde_json::json!({
            "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true,
        });
        let command = DevTools("Emulation.setDeviceMetricsOverride", params);
        self.client.issue_cmd(command).await?;
        Ok(())
    }

    /// Checks what every page owes its visitor, in the page now loaded: nothing wider
    /// than the viewport (no sideways scrolling), and an icon the server serves (without
    /// one, every load costs a `404` for `/favicon.ico`).
    pub async fn check_page_fits_and_has_its_icon(&self) -> TestResult {
        let script = r#"
            const done = arguments[arguments.length - 1];
            const icon = document.querySelector('link[rel~="icon"]');
            const widths = [document.documentElement.scrollWidth, window.innerWidth];
            const status = icon ? fetch(icon.href).then(r => r.status, () => -1) : Promise.resolve(0);
            status.then(status => done([status, ...widths]));
        "#;
        let found = self.client.execute_async(script, Vec::new()).await?;
        let number = |i: usize| found[i].as_i64().unwrap_or(-1);
        let (icon, page, viewport) = (number(0), number(1), number(2));
        if icon != 200 {
            return Err(format!("the page's icon: status {icon} (0: no <link rel=icon>)").into());
        }
        if page > viewport {
            return Err(format!("the page is {page} px wide in a {viewport} px viewport").into());
        }
        Ok(())
    }

    /// Loads `url` as a phone shows it, waits for the badge (`#connection`) to say
    /// `state` when given, checks [`Browser::check_page_fits_and_has_its_icon`], and
    /// saves a screenshot as `<name>-390`.
    pub async fn check_on_a_phone(&self, url: &str, state: Option<&str>, name: &str) -> TestResult {
        self.as_phone().await?;
        self.client.goto(url).await?;
        if let Some(state) = state {
            self.wait_for_text("#connection", WAIT, |t| t == state)
                .await?;
        }
        self.save_screenshot(&format!("{name}-390")).await?;
        self.check_page_fits_and_has_its_icon().await
    }

    /// Runs `script` in the page and returns its result.
    pub async fn eval(&self, script: &str) -> TestResult<serde_json::Value> {
        Ok(self.client.execute(script, Vec::new()).await?)
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&self, css: &str) -> TestResult {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    }

    /// Types `text` into the first element matching a CSS selector.
    pub async fn type_into(&self, css: &str, text: &str) -> TestResult {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await?
            .send_keys(text)
            .await?;
        Ok(())
    }

    /// The text of the first element matching a CSS selector.
    pub async fn text(&self, css: &str) -> TestResult<String> {
        let element = self.client.find(fantoccini::Locator::Css(css)).await?;
        Ok(element.text().await?)
    }

    /// Waits until the text of `css` satisfies `check`, returning that text.
    pub async fn wait_for_text(
        &self,
        css: &str,
        limit: Duration,
        check: impl Fn(&str) -> bool,
    ) -> TestResult<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // The element may not exist yet while the page loads.
            let text = self.text(css).await.unwrap_or_default();
            if check(&text) {
                return Ok(text);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "timed out after {limit:?} waiting for the text of {css}; last text: {text:?}"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG screenshot of the page as `<target>/tmp/screenshots/<name>.png`.
    pub async fn save_screenshot(&self, name: &str) -> TestResult {
        let dir = target_tmp().ok_or("no target folder")?.join("screenshots");
        self.screenshot(&dir.join(format!("{name}.png"))).await
    }

    /// Saves a PNG screenshot of the page to `path` (creating its folder).
    pub async fn screenshot(&self, path: &std::path::Path) -> TestResult {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Ends the session and chromedriver, and removes the profile.
    pub async fn close(mut self) -> TestResult {
        let closed = within(WAIT, "the browser to close", self.client.clone().close()).await;
        let _ = self.driver.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(closed??)
    }
}

/// Starts `binary` with `args` and checks its page on a phone in a fresh browser
/// ([`Browser::check_on_a_phone`]), then stops it.
pub async fn check_page_on_a_phone(
    binary: &str,
    args: &[&str],
    state: Option<&str>,
    name: &str,
) -> TestResult {
    let mut app = AppProcess::spawn(binary, args).await?;
    let url = app.url().to_owned();
    Browser::run(async |browser| browser.check_on_a_phone(&url, state, name).await).await?;
    app.stop().await
}

/// A browser dropped without [`Browser::close`] (a test that panicked in an assertion):
/// chromedriver dies with its handle, but the Chromium it started would live on, so its
/// processes (found by this browser's own profile folder) are ended here.
impl Drop for Browser {
    fn drop(&mut self) {
        if self.profile.exists() {
            let _ = std::process::Command::new("pkill")
                .arg("-f")
                .arg(self.profile.as_os_str())
                .status();
            let _ = std::fs::remove_dir_all(&self.profile);
        }
    }
}

/// A Chrome DevTools command for the current tab, through chromedriver's
/// `goog/cdp/execute`.
#[derive(Debug)]
struct DevTools(&'static str, serde_json::Value);

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session.unwrap_or_default();
        base.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _: &url::Url) -> (salvo::http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.0, "params": self.1 });
        (salvo::http::Method::POST, Some(body.to_string()))
    }
}
