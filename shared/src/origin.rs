//! Requests from other origins: nothing that changes state or issues an identity answers
//! a page this server did not serve, unless `--cors-origins` lists that page's origin.
//!
//! CORS alone does not stop this: a page on any origin can send a form POST, or a
//! `fetch` in `no-cors` mode, with the browser's cookies; CORS only hides the answer.
//! And `SameSite=Strict` cookies travel between the ports of one host (one site), and
//! a cross-site *navigation* is answered with a `Set-Cookie` the browser keeps. So the
//! server asks the browser where the request comes from: `Sec-Fetch-Site` (Fetch
//! Metadata, sent by every current browser to HTTPS and localhost), else `Origin`
//! (sent with every POST), and refuses with `403` what is not its own.
//!
//! ```
//! use salvo::Request;
//! use sse_shared::origin::is_own_origin;
//!
//! let mut req = Request::new();
//! req.headers_mut().insert("sec-fetch-site", "cross-site".parse()?);
//! req.headers_mut().insert("origin", "https://evil.example".parse()?);
//! assert!(!is_own_origin(&req, &[]));
//! // Unless `--cors-origins` lists the page's origin.
//! assert!(is_own_origin(&req, &["https://evil.example".to_owned()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use salvo::http::header::HOST;
use salvo::http::uri::Scheme;
use salvo::http::{Method, StatusCode};
use salvo::prelude::*;

use crate::error::ApiError;

/// Whether `req` comes from this server's own pages, from a page of one of `listed`
/// (origins as `--cors-origins` keeps them), or from a client that is not a browser.
///
/// - `Sec-Fetch-Site: same-origin`, or `none` (the user typed the address): yes.
/// - `Sec-Fetch-Site: same-site` or `cross-site`: only from a listed `Origin`.
/// - No Fetch Metadata (plain HTTP to a host that is not localhost, older browsers):
///   an `Origin` must be this server's own (its `Host`) or listed; without an `Origin`,
///   a `Referer`'s origin must be (a privacy tool may strip `Origin` and leave it),
///   and without either, a browser navigation (it asks for `text/html`) is refused,
///   since it could come from any site, and anything else is a client that is not a
///   page.
pub fn is_own_origin(req: &Request, listed: &[String]) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = header("origin");
    let from_listed = origin.is_some_and(|o| listed.iter().any(|l| l == o));
    match header("sec-fetch-site") {
        Some("same-origin" | "none") => true,
        Some(_) => from_listed,
        None => match (origin, header("referer")) {
            (Some(origin), _) => from_listed || is_this_host(origin, req),
            (None, Some(referer)) => {
                let origin = url::Url::parse(referer).map(|u| u.origin().ascii_serialization());
                origin.is_ok_and(|o| listed.contains(&o) || is_this_host(&o, req))
            }
            (None, None) => !header("accept").is_some_and(|accept| accept.contains("text/html")),
        },
    }
}

/// Whether `origin` (`scheme://host[:port]`) names this server as the request reached
/// it (its `Host`). An `http://` page does not count as ours when we are served over
/// TLS; an `https://` one does when TLS ends at a proxy in front of us.
fn is_this_host(origin: &str, req: &Request) -> bool {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let (Some(host), Some((scheme, authority))) = (host, origin.split_once("://")) else {
        return false;
    };
    let default_port = match scheme {
        "https" => ":443",
        "http" if req.scheme() != &Scheme::HTTPS => ":80",
        _ => return false,
    };
    let bare = |a: &str| {
        a.strip_suffix(default_port)
            .unwrap_or(a)
            .to_ascii_lowercase()
    };
    bare(authority) == bare(host)
}

/// The origins whose pages may call too (`--cors-origins`), put in the `Depot` by the
/// production stack (`routes::service`) for [`from_own_origin`].
#[derive(Clone, Debug, Default)]
pub struct CorsOrigins(pub Vec<String>);

/// [`is_own_origin`] with the origins the `Depot` lists (none without the production
/// stack: this server's own pages and clients that are not browsers only).
pub fn from_own_origin(req: &Request, depot: &Depot) -> bool {
    let listed = depot.get_typed::<CorsOrigins>().map(|o| o.0.as_slice());
    is_own_origin(req, listed.unwrap_or_default())
}

/// The `403` for a request from another origin.
pub fn cross_origin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross-origin",
        "This request comes from a page of another origin; only this server's own pages (and --cors-origins) may make it.",
    )
}

/// A hoop that refuses (`403 cross-origin`) every request but `GET`, `HEAD` and
/// `OPTIONS` that [`is_own_origin`] does not accept: every POST and DELETE of a server.
pub struct SameOriginOnly {
    listed: Vec<String>,
}

impl SameOriginOnly {
    /// Pages of `listed` origins (as `--cors-origins` keeps them) may call too.
    pub fn new(listed: &[String]) -> Self {
        Self {
            listed: listed.to_vec(),
        }
    }
}

#[handler]
impl SameOriginOnly {
    async fn handle(&self, req: &mut Request, res: &mut Response, ctrl: &mut FlowCtrl) {
        let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(req.method());
        if !safe && !is_own_origin(req, &self.listed) {
            res.render(cross_origin());
            ctrl.skip_rest();
        }
    }
}
