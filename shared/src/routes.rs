//! The routes and hoops every example's server has: a panic net (a handler that panics
//! answers `500` and logs, the connection survives), the security headers, `GET
//! /healthz`, `GET /metrics`, and JSON errors for whatever salvo answers itself.

use salvo::catcher::Catcher;
use salvo::prelude::*;

use crate::error::JsonErrors;
use crate::page::security_headers;
use crate::streams::Streams;

/// The example's routes wrapped with what every server has: a panic net, security
/// headers, `/healthz`, `/metrics`, and JSON errors.
pub fn service(streams: &Streams, app: Router) -> Service {
    let router = Router::new()
        .hoop(salvo::catch_panic::CatchPanic::new())
        .hoop(security_headers)
        .push(Router::with_path("healthz").get(healthz))
        .push(Router::with_path("metrics").get(streams.metrics().clone()))
        .push(app);
    // A 404 or 405 never reached the router's hoops: the catcher adds the headers.
    Service::new(router).catcher(Catcher::new(JsonErrors).hoop(security_headers))
}

#[handler]
async fn healthz(res: &mut Response) {
    res.render(Text::Plain("ok"));
}
