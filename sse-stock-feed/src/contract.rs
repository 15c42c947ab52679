//! sse-stock-feed's OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the
//! routes `#[endpoint]` describes, and what `GET /prices` sends (the types the code
//! serializes). Not part of the pattern: a stream works without it.

use salvo::Router;
use salvo_oapi::OpenApi;
use sse_shared::hub::EventId;
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;
use sse_stock_feed::{Quote, Snapshot};

/// `router` with `GET /openapi.json`, describing it.
pub fn serve(router: Router) -> Router {
    let doc = OpenApi::new("sse-stock-feed", env!("CARGO_PKG_VERSION"));
    openapi::serve(doc, router, &[prices()])
}

/// What `GET /prices` sends.
fn prices() -> StreamDoc {
    StreamDoc {
        path: "/prices",
        ids: Some(EventId::DOC),
        events: vec![
            EventDoc::json::<Snapshot>(
                Some("snapshot"),
                "First on a new stream, and after a reset (no id): the current prices.",
            ),
            EventDoc::json::<Quote>(Some("price"), "One symbol's price after a tick."),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The stream cannot go on from the id sent back: a snapshot follows.",
            ),
        ],
    }
}
