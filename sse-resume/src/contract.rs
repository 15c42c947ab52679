//! sse-resume's OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the
//! routes `#[endpoint]` describes, and what `GET /events` sends (the types the code
//! serializes). Not part of the pattern: a stream works without it.

use salvo::Router;
use salvo_oapi::OpenApi;
use sse_resume::Tick;
use sse_shared::hub::{EventId, Live};
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;

/// `router` with `GET /openapi.json`, describing it.
pub fn serve(router: Router) -> Router {
    let doc = OpenApi::new("sse-resume", env!("CARGO_PKG_VERSION"));
    openapi::serve(doc, router, &[events()])
}

/// What `GET /events` sends.
fn events() -> StreamDoc {
    StreamDoc {
        path: "/events",
        ids: Some(EventId::DOC),
        events: vec![
            EventDoc::json::<Tick>(Some("tick"), "The producer's heartbeat."),
            EventDoc::text(Some("note"), "Text someone posted (POST /events).", ""),
            EventDoc::json::<Live>(Some("live"), "The replay is over: what follows is live."),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The stream cannot go on from the id sent back: what it names is gone, or was never issued.",
            ),
        ],
    }
}
