//! Where the hub is. Without `--hub-url` it follows each request (its scheme and
//! `Host`), as Mercure 1.0 does: a hub on any port or name advertises the URL its
//! client used, and checks tokens' `aud` against it. `--public-url` lists the origins
//! it answers on (`421` for others), and a secret of one's own needs it (or `--hub-url`,
//! `--jwt-audience`); behind nginx it names the proxy's address, and `https` when a
//! trusted proxy says so last.

use serde_json::{Value, json};
use sse_shared::testing::reqwest;
use sse_shared::testing::reqwest::header::HOST;
use sse_shared::testing::{
    AppProcess, Nginx, TestResult, WAIT, expect_error, http, refused_at_start, send_raw, within,
};
use sse_topics::auth::{DETAIL_TYPE, sign, unix_now};
use tokio::io::AsyncReadExt;

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "a discovery test secret, at least 32 bytes";

fn publisher_token(audience: &str) -> TestResult<String> {
    let claims = json!({
        "exp": unix_now() + 600,
        "aud": audience,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}],
    });
    Ok(sign(SECRET.as_bytes(), &claims)?)
}

fn get(base: &str, path: &str, host: Option<&str>) -> reqwest::RequestBuilder {
    let request = http().get(format!("{base}{path}"));
    match host {
        Some(host) => request.header(HOST, host),
        None => request,
    }
}

/// The target of the `Link: <...>; rel="mercure"` on a resource, asked with `host`.
async fn hub_link(base: &str, host: Option<&str>, proto: Option<&str>) -> TestResult<String> {
    let mut request = get(base, "/books/1", host);
    if let Some(proto) = proto {
        request = request.header("x-forwarded-proto", proto);
    }
    let response = request.send().await?;
    let links = response.headers().get_all("link").iter();
    let mercure = links
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.ends_with("rel=\"mercure\""))
        .ok_or("no rel=mercure link")?;
    let target = mercure.split_once('>').ok_or("a link without <...>")?.0;
    Ok(target.trim_start_matches('<').to_owned())
}

async fn publish(base: &str, host: Option<&str>, token: &str) -> TestResult<reqwest::Response> {
    let mut request = http().post(format!("{base}/.well-known/mercure"));
    if let Some(host) = host {
        request = request.header(HOST, host);
    }
    let request = request
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=t&data=hello");
    Ok(request.send().await?)
}

fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The status of the answer to a raw HTTP/1.1 `request` (with what no client library
/// sends: two `Host` headers, an absolute-form target).
async fn raw_status(app: &AppProcess, request: &str) -> TestResult<u16> {
    let mut socket = send_raw(("127.0.0.1", app.port()?), request.as_bytes()).await?;
    let mut head = [0u8; 12];
    within(WAIT, "an answer", socket.read_exact(&mut head)).await??;
    let status = std::str::from_utf8(&head[9..12])?;
    Ok(status.parse()?)
}

#[tokio::test]
async fn the_hub_url_follows_the_port_and_host_a_client_used() -> TestResult {
    let (a_port, b_port) = (free_port()?, free_port()?);
    let spawn = |port: u16| async move {
        let (port, listed) = (
            port.to_string(),
            format!("http://127.0.0.1:{port},http://localhost:{port}"),
        );
        let args = [
            "--jwt-secret",
            SECRET,
            "--port",
            &port,
            "--public-url",
            &listed,
        ];
        AppProcess::spawn(BIN, &args).await
    };
    let (a, b) = (spawn(a_port).await?, spawn(b_port).await?);
    for app in [&a, &b] {
        let port = app.port()?;
        let by_address = format!("http://127.0.0.1:{port}/.well-known/mercure");
        assert_eq!(hub_link(app.url(), None, None).await?, by_address);
        let localhost = format!("localhost:{port}");
        let by_name = format!("http://localhost:{port}/.well-known/mercure");
        assert_eq!(hub_link(app.url(), Some(&localhost), None).await?, by_name);
        // A forwarded scheme is believed only from a trusted proxy (none here).
        let https = Some("https");
        assert_eq!(hub_link(app.url(), None, https).await?, by_address);
        // The metadata names the same resource, and caches are told it varies.
        let metadata = "/.well-known/oauth-protected-resource/.well-known/mercure";
        let response = get(app.url(), metadata, Some(&localhost)).send().await?;
        let vary = response
            .headers()
            .get("vary")
            .map(|v| v.to_str().map(str::to_owned));
        assert_eq!(
            vary.transpose()?.as_deref(),
            Some("host, x-forwarded-proto")
        );
        let body: Value = response.json().await?;
        assert_eq!(body["resource"], by_name.as_str(), "{body}");
    }
    // A token for A as `localhost:PORT` reaches it publishes there, and nowhere else:
    // not through A's address, nor on B (same key, another URL).
    let token = publisher_token(&format!("http://localhost:{a_port}/.well-known/mercure"))?;
    let there = publish(a.url(), Some(&format!("localhost:{a_port}")), &token).await?;
    assert_eq!(there.status(), 200, "{:?}", there.text().await);
    let by_address = publish(a.url(), None, &token).await?;
    expect_error(by_address, 401, "invalid-token").await?;
    let on_b = publish(b.url(), Some(&format!("localhost:{b_port}")), &token).await?;
    expect_error(on_b, 401, "invalid-token").await?;
    // A Host that is not a host (a user part, a path) is refused, not advertised.
    for host in ["evil@localhost", "localhost/x", "localhost:99999"] {
        let response = get(a.url(), "/books/1", Some(host)).send().await?;
        expect_error(response, 400, "invalid-host").await?;
    }
    // Where two parts of a request name the host, a proxy may read the other: two
    // `Host` headers, or a target naming another host, are refused.
    let listed = format!("localhost:{a_port}");
    let two_hosts =
        format!("GET /books/1 HTTP/1.1\r\nHost: {listed}\r\nHost: evil.example\r\n\r\n");
    assert_eq!(raw_status(&a, &two_hosts).await?, 400);
    let absolute = format!("GET http://evil.example/books/1 HTTP/1.1\r\nHost: {listed}\r\n\r\n");
    assert_eq!(raw_status(&a, &absolute).await?, 400);
    let agreeing = format!("GET http://{listed}/books/1 HTTP/1.1\r\nHost: {listed}\r\n\r\n");
    assert_eq!(raw_status(&a, &agreeing).await?, 200);
    Ok(())
}

/// A secret of one's own and nothing that says which hub its tokens are for: any hub
/// sharing the secret could have its tokens accepted here by naming it in `Host`.
#[tokio::test]
async fn a_secret_of_ones_own_needs_the_hubs_url_or_audience() -> TestResult {
    let (code, stderr) = refused_at_start(BIN, &["--jwt-secret", SECRET]).await?;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--public-url") && stderr.contains("--jwt-audience"),
        "{stderr}"
    );
    for pin in [
        ["--public-url", "http://hub.test"],
        ["--hub-url", "http://hub.test/.well-known/mercure"],
        ["--jwt-audience", "urn:hub"],
    ] {
        let app =
            AppProcess::spawn(BIN, &[&["--jwt-secret", SECRET][..], &pin[..]].concat()).await?;
        drop(app);
    }
    Ok(())
}

#[tokio::test]
async fn a_hub_with_public_urls_refuses_other_origins_with_421() -> TestResult {
    let args = [
        "--jwt-secret",
        SECRET,
        "--public-url",
        "http://hub.test,https://hub.test",
    ];
    let app = AppProcess::spawn(BIN, &args).await?;
    let token = publisher_token("http://hub.test/.well-known/mercure")?;
    // Listed: answered, advertised as itself.
    let link = hub_link(app.url(), Some("hub.test"), None).await?;
    assert_eq!(link, "http://hub.test/.well-known/mercure");
    let listed = publish(app.url(), Some("hub.test:80"), &token).await?;
    assert_eq!(listed.status(), 200, "{:?}", listed.text().await);
    // Not listed: the page, a resource, a subscription and a publish all get 421
    // before anything runs (the token is valid for the listed name).
    let port = app.port()?;
    let other = format!("localhost:{port}");
    for path in ["/", "/books/1", "/.well-known/mercure?match=*"] {
        for host in [None, Some(other.as_str()), Some("hub.test:8080")] {
            let response = get(app.url(), path, host).send().await?;
            expect_error(response, 421, "misdirected-request").await?;
        }
    }
    let unlisted = publish(app.url(), None, &token).await?;
    expect_error(unlisted, 421, "misdirected-request").await?;
    // Health checks come from anywhere.
    let health = http().get(format!("{}/healthz", app.url())).send().await?;
    assert_eq!(health.status(), 200);
    Ok(())
}

#[tokio::test]
async fn behind_nginx_the_hub_is_where_the_proxy_is() -> TestResult {
    let port = free_port()?;
    let upstream = format!("127.0.0.1:{port}");
    let nginx = Nginx::start(&[upstream.as_str()]).await?;
    let proxied = format!("{}/.well-known/mercure", nginx.url());
    // Answered through nginx, and directly over TLS that ends at a trusted proxy.
    let listed = format!("{},https://{upstream}", nginx.url());
    let port = port.to_string();
    let args = [
        "--jwt-secret",
        SECRET,
        "--port",
        &port,
        "--public-url",
        &listed,
        "--trusted-proxies",
        "127.0.0.1",
    ];
    let app = AppProcess::spawn(BIN, &args).await?;
    assert_eq!(hub_link(&nginx.url(), None, None).await?, proxied);
    // A token for the proxy's address publishes through it.
    let token = publisher_token(&proxied)?;
    let response = publish(&nginx.url(), None, &token).await?;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    // The trusted proxy's word on the scheme is the last one (a client may have sent
    // its own before it): `https` here, and plain `http` is not a listed origin.
    let https = format!("https://{upstream}/.well-known/mercure");
    assert_eq!(hub_link(app.url(), None, Some("https")).await?, https);
    assert_eq!(hub_link(app.url(), None, Some("http, https")).await?, https);
    for not_https in [None, Some("https, http")] {
        let mut request = get(app.url(), "/books/1", None);
        if let Some(proto) = not_https {
            request = request.header("x-forwarded-proto", proto);
        }
        expect_error(request.send().await?, 421, "misdirected-request").await?;
    }
    Ok(())
}
