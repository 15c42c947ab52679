//! An example's page: the shared layout and stylesheet around the example's own HTML,
//! and its static files, embedded in the binary at compile time.
//!
//! Scripts and styles are separate files (never inline), so every page can be served
//! with a strict `Content-Security-Policy` (see `routes`): only this origin's scripts
//! run, and text from other users can never become markup or code.
//!
//! ```
//! use sse_shared::page;
//!
//! // `GET /` (the layout around this HTML) and `GET /static/app.js`.
//! let files = [("app.js", "new EventSource('/events');")];
//! let router = page::routes("My stream", "<h1>Events</h1>", &files);
//! # let _ = router;
//! ```

use bytes::Bytes;
use salvo::http::header::HeaderValue;
use salvo::prelude::*;

/// What every page shares, under `/static/`: the stylesheet; the icon (without one,
/// every page load costs the browser a `404` for `/favicon.ico`); `sharedEventSource`,
/// which gives all the tabs of a page one stream (a page opts in by calling it); and the
/// `SharedWorker` that holds that stream (served, not linked).
pub const SHARED_FILES: [(&str, &str); 4] = [
    ("sse.css", include_str!("../static/sse.css")),
    ("favicon.svg", include_str!("../static/favicon.svg")),
    (
        "shared-stream.js",
        include_str!("../static/shared-stream.js"),
    ),
    (
        "stream.worker.js",
        include_str!("../static/stream.worker.js"),
    ),
];

const LAYOUT: &str = include_str!("../static/layout.html");

/// The page routes of one example: `GET /` and `GET /static/<name>` for the shared
/// files and each of `files` (`(name, contents)`: a `.css` name is linked in the head,
/// `favicon.svg` is the page's icon, a `.worker.js` name is only served, any other is
/// loaded as a deferred script, in order). `main` is the HTML inside the layout's
/// `<main>`. Any other `/static/` path has no route, so it is a 404.
pub fn routes(title: &str, main: &str, files: &[(&'static str, &'static str)]) -> Router {
    let (mut head, mut scripts) = (String::new(), String::new());
    let mut router = Router::new();
    for &(name, body) in SHARED_FILES.iter().chain(files) {
        let content_type = if name.ends_with(".worker.js") {
            "text/javascript; charset=utf-8"
        } else if name == "favicon.svg" {
            head.push_str(&format!(
                "<link rel=\"icon\" href=\"/static/{name}\" type=\"image/svg+xml\">\n"
            ));
            "image/svg+xml"
        } else if name.ends_with(".css") {
            head.push_str(&format!(
                "<link rel=\"stylesheet\" href=\"/static/{name}\">\n"
            ));
            "text/css; charset=utf-8"
        } else {
            scripts.push_str(&format!("<script src=\"/static/{name}\" defer></script>\n"));
            "text/javascript; charset=utf-8"
        };
        let file = Embedded {
            content_type,
            body: Bytes::from_static(body.as_bytes()),
        };
        router = router.push(Router::with_path(format!("static/{name}")).get(file));
    }
    let html = LAYOUT
        .replace("{{title}}", title)
        .replace("{{head}}", &head)
        .replace("{{main}}", main)
        .replace("{{scripts}}", &scripts);
    router.get(Embedded {
        content_type: "text/html; charset=utf-8",
        body: html.into(),
    })
}

/// One embedded file. `no-cache`: the browser revalidates, so a new build shows at once.
struct Embedded {
    content_type: &'static str,
    body: Bytes,
}

#[handler]
impl Embedded {
    async fn handle(&self, res: &mut Response) {
        let headers = res.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(self.content_type));
        headers.insert("cache-control", HeaderValue::from_static("no-cache"));
        let _ = res.write_body(self.body.clone());
    }
}
