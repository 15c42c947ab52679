//! The routes and hoops every example's server has: a panic net (a handler that panics
//! answers `500` and logs, the connection survives), the security headers, the refusal
//! of POST and DELETE requests from other origins' pages, `GET /healthz`, `GET
//! /metrics`, and JSON errors for whatever salvo answers itself.
//!
//! ```
//! use clap::Parser;
//! use salvo::prelude::*;
//! use sse_shared::{ServerArgs, Streams, routes};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     server: ServerArgs,
//! }
//!
//! # #[handler] async fn events() {}
//! let cli = Cli::parse_from(["app"]);
//! let streams = Streams::from_args(&cli.server);
//! let app = Router::with_path("events").get(events);
//! // The app inside what every server has; serve it with `salvo::Server`.
//! let service: Service = routes::service(&streams, app);
//! # let _ = service;
//! ```

use salvo::affix_state::inject;
use salvo::catcher::Catcher;
use salvo::cors::{AllowCredentials, Cors, CorsHandler};
use salvo::http::header::{self, HeaderName, HeaderValue};
use salvo::http::{Method, ResBody, StatusCode};
use salvo::prelude::*;

use crate::address::TrustedProxies;
use crate::body_deadline::BodyDeadline;
use crate::error::ApiError;
use crate::origin::{CorsOrigins, SameOriginOnly};
use crate::streams::Streams;

/// The `Content-Security-Policy` sent with every response but event streams.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The example's routes wrapped with what every server has: a panic net, security
/// headers, no POST or DELETE from another origin's page (`403`), the request-body
/// deadline, `/healthz`, `/metrics`, and JSON errors.
pub fn service(streams: &Streams, app: Router) -> Service {
    let origins = &streams.args().cors_origins;
    let router = Router::new()
        .hoop(salvo::catch_panic::CatchPanic::new())
        .hoop(security_headers)
        .hoop(SameOriginOnly::new(origins))
        .hoop(BodyDeadline::new(streams.args().body_deadline))
        // What handlers find in the `Depot`: the streams, their settings, the proxies
        // believed about a client's address, the origins whose pages may call.
        .hoop(
            inject(streams.clone())
                .inject(streams.settings())
                .inject(TrustedProxies(streams.args().trusted_proxies.clone()))
                .inject(CorsOrigins(origins.clone())),
        )
        .push(Router::with_path("healthz").get(healthz))
        .push(Router::with_path("metrics").get(streams.metrics().clone()))
        // Admission, the slot held by the body, the end on shutdown: around every
        // route marked `StreamRoute`.
        .push(streams.guard(app));
    // A 404 or 405 never reached the router's hoops: the catcher adds the headers.
    let service = Service::new(router).catcher(Catcher::new(json_errors).hoop(security_headers));
    match cors(origins) {
        // On the service, not the router: a preflight `OPTIONS` matches no route.
        Some(cors) => service.hoop(cors),
        None => service,
    }
}

/// Salvo's CORS handler for `origins` (none: no handler, and no CORS headers): they
/// may open streams with credentials (`EventSource` with `withCredentials`) and call
/// the POST APIs with a bearer token or a JSON body.
fn cors(origins: &[String]) -> Option<CorsHandler> {
    if origins.is_empty() {
        return None;
    }
    let listed: Vec<String> = origins.to_vec();
    // Credentials only for a listed origin: an unlisted one gets no CORS header at all.
    let credentials = AllowCredentials::dynamic(move |origin, _, _| {
        origin.is_some_and(|o| listed.iter().any(|l| l.as_bytes() == o.as_bytes()))
    });
    let handler = Cors::new()
        .allow_origin(&origins.to_vec())
        .allow_credentials(credentials)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .max_age(600)
        .into_handler();
    Some(handler)
}

#[handler]
async fn healthz(res: &mut Response) {
    res.render(Text::Plain("ok"));
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
    let content_type = res.headers().get("content-type");
    if content_type.is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) {
        return;
    }
    let headers = res.headers_mut();
    let csp = HeaderValue::from_static(CONTENT_SECURITY_POLICY);
    headers.insert("content-security-policy", csp);
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

/// A catcher goal that renders every error without a body as [`ApiError`] JSON:
/// `Service::new(router).catcher(Catcher::new(json_errors))`.
#[handler]
pub async fn json_errors(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    let has_body = !(res.body.is_none() || res.body.is_error());
    if has_body || !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    let (code, message) = describe(status);
    // Salvo's own briefs repeat the status name; a caught panic's says what happened.
    let message = match &res.body {
        ResBody::Error(e) if e.brief != e.name && !e.brief.is_empty() => e.brief.clone(),
        _ => message.to_owned(),
    };
    res.body = ResBody::None;
    ApiError::new(status, code, message).render(res);
    ctrl.skip_rest();
}

/// The code, and a sentence for when salvo gave none, for an error status.
fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad-request", "The request is malformed."),
        StatusCode::UNAUTHORIZED => ("unauthorized", "This needs valid credentials."),
        StatusCode::FORBIDDEN => ("forbidden", "This is not allowed."),
        StatusCode::NOT_FOUND => ("not-found", "Nothing is served at this path."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "This path does not accept that method.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload-too-large", "The request body is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "The request body has the wrong content type.",
        ),
        StatusCode::TOO_MANY_REQUESTS => ("too-many-requests", "Too many requests; slow down."),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "The service is unavailable right now."),
        s if s.is_client_error() => ("client-error", "The request was refused."),
        _ => ("internal", "The server failed to handle this request."),
    }
}
