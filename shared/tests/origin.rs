//! `origin::is_own_origin`: which requests count as coming from the server's own pages.

use salvo::Request;
use salvo::http::header::HeaderName;
use sse_shared::origin::is_own_origin;

/// A request to `host` with these headers.
fn request(host: &str, headers: &[(&str, &str)]) -> Request {
    let mut req = Request::new();
    let mut all = vec![("host", host)];
    all.extend_from_slice(headers);
    for (name, value) in all {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            salvo::http::HeaderValue::from_str(value),
        ) {
            req.headers_mut().insert(name, value);
        }
    }
    req
}

#[test]
fn own_listed_and_other_origins() {
    let listed = ["https://app.example".to_owned()];
    let host = "127.0.0.1:8080";
    for (headers, own) in [
        (vec![("sec-fetch-site", "same-origin")], true),
        (vec![("sec-fetch-site", "none")], true),
        (
            vec![
                ("sec-fetch-site", "same-site"),
                ("origin", "http://127.0.0.1:9999"),
            ],
            false,
        ),
        (
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
            ],
            false,
        ),
        (
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://app.example"),
            ],
            true,
        ),
        (vec![("sec-fetch-site", "cross-site")], false),
        // Cross-site but claiming our host as Origin: Fetch Metadata wins.
        (
            vec![
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://127.0.0.1:8080"),
            ],
            false,
        ),
        (vec![("origin", "http://127.0.0.1:8080")], true),
        (vec![("origin", "https://127.0.0.1:8080")], true),
        (vec![("origin", "http://127.0.0.1:9999")], false),
        (vec![("origin", "http://localhost:8080")], false),
        (vec![("origin", "null")], false),
        (vec![("origin", "https://app.example")], true),
        (vec![("origin", "https://APP.example")], false),
        (vec![("accept", "text/html,application/xhtml+xml")], false),
        (vec![("accept", "text/event-stream")], true),
        (vec![], true),
    ] {
        let req = request(host, &headers);
        assert_eq!(is_own_origin(&req, &listed), own, "{headers:?}");
    }
    // Default ports are the same origin written two ways.
    let req = request("a.example", &[("origin", "http://a.example:80")]);
    assert!(is_own_origin(&req, &[]));
    let req = request("a.example:443", &[("origin", "https://a.example")]);
    assert!(is_own_origin(&req, &[]));
}
