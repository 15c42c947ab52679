//! The counter's OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the
//! routes `#[endpoint]` describes, and what `GET /events` sends (the types the code
//! serializes). Not part of the pattern: a stream works without it.

use salvo::Router;
use salvo_oapi::OpenApi;
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;

/// `router` with `GET /openapi.json`, describing it.
pub fn serve(router: Router) -> Router {
    let doc = OpenApi::new("sse-counter", env!("CARGO_PKG_VERSION"));
    openapi::serve(doc, router, &[events()])
}

/// What `GET /events` sends.
fn events() -> StreamDoc {
    StreamDoc {
        path: "/events",
        ids: Some((
            "The count: a reconnect sends it back as Last-Event-ID.",
            "^[0-9]+$",
        )),
        events: vec![
            EventDoc::text(
                None,
                "The next number, from 1 (or the id sent back + 1).",
                "^[0-9]+$",
            ),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The id sent back was no count: counting starts again from 1.",
            ),
        ],
    }
}
