//! Resuming: reading the client's `Last-Event-ID`, and the `reset` event that tells a
//! client its cursor cannot be honoured.
//!
//! A browser's `EventSource` reconnects with a `Last-Event-ID` header. Polyfills and
//! pages that reconnect by hand pass `?lastEventId=` instead. Both are accepted; the
//! header wins, since the browser sends it on its own reconnects and it is the newer.
//!
//! A cursor the server cannot honour must never be answered with a 4xx: `EventSource`
//! gives up for good on an HTTP error. The stream starts instead with `event: reset`,
//! data `{"reason": .., "oldest": .., "latest": ..}`, and goes on live.
//!
//! ```
//! use salvo::Request;
//! use sse_shared::resume::{Reset, ResetReason, last_event_id};
//!
//! let mut req = Request::new();
//! req.headers_mut().insert("last-event-id", "41".parse()?);
//! assert_eq!(last_event_id(&req).as_deref(), Some("41"));
//! // An id that cannot be honoured: the `data` of the `reset` the stream starts with.
//! let reset = Reset::new(ResetReason::HistoryGap, Some(45), Some(90));
//! let json = serde_json::to_string(&reset)?;
//! assert_eq!(json, r#"{"reason":"history-gap","oldest":"45","latest":"90"}"#);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt::Display;

use salvo::Request;
use salvo_oapi::ToSchema;
use serde::Serialize;

/// The query parameter read when there is no `Last-Event-ID` header.
pub const LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// The client's resume cursor, if it sent one. A header that is not valid UTF-8 comes
/// back lossily converted, so it fails to parse as an id and earns `invalid-id`.
pub fn last_event_id(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get("last-event-id") {
        return Some(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    req.queries().get(LAST_EVENT_ID_QUERY).cloned()
}

/// Why a stream starts with `event: reset` instead of resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResetReason {
    /// The id is older than the oldest event still retained: something was missed.
    HistoryGap,
    /// The id has the right shape but was never issued here (newer than the latest,
    /// or of another run).
    UnknownId,
    /// The id is not an id of this stream at all.
    InvalidId,
    /// The client read too slowly and fell off the retained history.
    Lagged,
}

/// The `data` of `event: reset`: why, and the oldest and latest ids the server holds
/// (`null` where it holds none).
#[derive(Debug, Serialize, ToSchema)]
pub struct Reset {
    /// Why the stream could not go on from the client's id.
    pub reason: ResetReason,
    /// The oldest event id still retained.
    pub oldest: Option<String>,
    /// The latest event id.
    pub latest: Option<String>,
}

impl Reset {
    /// A reset for `reason`, naming the ids held.
    pub fn new(
        reason: ResetReason,
        oldest: Option<impl Display>,
        latest: Option<impl Display>,
    ) -> Self {
        let oldest = oldest.map(|id| id.to_string());
        let latest = latest.map(|id| id.to_string());
        Self {
            reason,
            oldest,
            latest,
        }
    }
}
