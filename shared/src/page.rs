//! An example's page: the shared layout and stylesheet, the example's own HTML, and its
//! static files, embedded in the binary at compile time.
//!
//! Scripts and styles are separate files (never inline), so every page can be served
//! with a strict `Content-Security-Policy`: only this origin's scripts run, and text
//! from other users can never become markup or code.

use std::collections::HashMap;
use std::sync::Arc;

use salvo::http::header::HeaderValue;
use salvo::prelude::*;

use crate::error::ApiError;

/// One embedded file, served at `/static/<name>`.
#[derive(Debug, Clone, Copy)]
pub struct StaticFile {
    /// The file name (no directories: there is nothing to traverse).
    pub name: &'static str,
    /// Its `content-type`.
    pub content_type: &'static str,
    /// Its contents.
    pub body: &'static str,
}

impl StaticFile {
    /// A JavaScript file; the page loads it with `<script defer>`.
    pub const fn script(name: &'static str, body: &'static str) -> Self {
        Self {
            name,
            content_type: "text/javascript; charset=utf-8",
            body,
        }
    }

    /// A stylesheet; the page links it after the shared one.
    pub const fn style(name: &'static str, body: &'static str) -> Self {
        Self {
            name,
            content_type: "text/css; charset=utf-8",
            body,
        }
    }
}

/// The stylesheet every page shares.
pub const SHARED_STYLE: StaticFile =
    StaticFile::style("sse.css", include_str!("../static/sse.css"));

const LAYOUT: &str = include_str!("../static/layout.html");

/// The `Content-Security-Policy` sent with every response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The page routes of one example: `GET /` and `GET /static/<name>`.
///
/// `main` is the HTML inside the layout's `<main>`; `files` are the example's scripts
/// and styles, linked from the page in order.
pub fn routes(title: &str, main: &str, files: &[StaticFile]) -> Router {
    let mut head = String::new();
    let mut scripts = String::new();
    for file in files {
        if file.name.ends_with(".css") {
            head.push_str(&format!(
                "<link rel=\"stylesheet\" href=\"/static/{}\">\n",
                file.name
            ));
        } else if file.name.ends_with(".js") {
            scripts.push_str(&format!(
                "<script src=\"/static/{}\" defer></script>\n",
                file.name
            ));
        }
    }
    let html = LAYOUT
        .replace("{{title}}", title)
        .replace("{{head}}", &head)
        .replace("{{main}}", main)
        .replace("{{scripts}}", &scripts);
    let mut table: HashMap<&'static str, StaticFile> = HashMap::new();
    for file in std::iter::once(&SHARED_STYLE).chain(files) {
        table.insert(file.name, *file);
    }
    Router::new()
        .get(IndexPage { html: html.into() })
        .push(Router::with_path("static/{name}").get(StaticFiles {
            table: Arc::new(table),
        }))
}

struct IndexPage {
    html: Arc<str>,
}

#[async_trait]
impl Handler for IndexPage {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        res.render(Text::Html(self.html.to_string()));
    }
}

struct StaticFiles {
    table: Arc<HashMap<&'static str, StaticFile>>,
}

#[async_trait]
impl Handler for StaticFiles {
    async fn handle(
        &self,
        req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let name = req.param::<String>("name").unwrap_or_default();
        match self.table.get(name.as_str()) {
            Some(file) => {
                res.headers_mut()
                    .insert("content-type", HeaderValue::from_static(file.content_type));
                res.headers_mut()
                    .insert("cache-control", HeaderValue::from_static("no-cache"));
                let _ = res.write_body(file.body);
            }
            None => res.render(ApiError::not_found(format!(
                "There is no static file named {name:?}."
            ))),
        }
    }
}

/// A hoop that adds the security headers to every response but event streams: the
/// CSP, `nosniff`, and no referrer.
///
/// An event stream is never rendered, so they would say nothing there, and they would
/// cost memory for as long as the stream is open: hyper keeps a response's header map
/// for its connection's lifetime (to reuse it), and three more headers double it.
#[handler]
pub async fn security_headers(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    let event_stream = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !event_stream {
        add_security_headers(res);
    }
}

/// Adds the security headers to `res` (for responses no hoop saw, such as a 404).
pub fn add_security_headers(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}
