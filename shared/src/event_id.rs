//! Event ids, `MS-N`: ordered, parsed strictly from what a client sends back as
//! `Last-Event-ID`, written the same way.
//!
//! ```
//! use sse_shared::event_id::EventId;
//!
//! let id: EventId = "1733500000000-42".parse()?;
//! assert_eq!((id.ms, id.seq), (1733500000000, 42));
//! assert_eq!(id.to_string(), "1733500000000-42");
//! assert!("7".parse::<EventId>()? < id); // `N` alone is (0, N)
//! assert!("-1".parse::<EventId>().is_err() && " 7".parse::<EventId>().is_err());
//! # Ok::<(), sse_shared::event_id::InvalidEventId>(())
//! ```

use std::fmt;
use std::str::FromStr;

use salvo_oapi::schema::{Object, Schema};
use salvo_oapi::{BasicType, Components, RefOr, ToSchema};

/// An event id, `MS-N`: for the in-memory hub `RUN-N`, where `RUN` is the millisecond the
/// hub was made (so ids never collide across restarts) and `N` counts 1, 2, 3, ...; for a
/// Redis stream, the entry's id. Ordered as the pair (MS, N); `N` alone means MS = 0, and
/// `0` is before every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// Milliseconds part: the run an in-memory hub's ids name, a Redis entry's
    /// milliseconds; 0 for an id written `N`.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl EventId {
    /// Before every event.
    pub const ZERO: EventId = EventId { ms: 0, seq: 0 };

    /// The id `N` (MS = 0), as a bare number parses.
    pub const fn seq(seq: u64) -> Self {
        Self { ms: 0, seq }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ms == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{}-{}", self.ms, self.seq)
        }
    }
}

/// The text is not an event id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event id")]
pub struct InvalidEventId;

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Digits only: no sign, no spaces, no empty part.
        fn number(part: &str) -> Result<u64, InvalidEventId> {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidEventId);
            }
            part.parse().map_err(|_| InvalidEventId)
        }
        match text.split_once('-') {
            None => Ok(Self::seq(number(text)?)),
            Some((ms, seq)) => Ok(Self {
                ms: number(ms)?,
                seq: number(seq)?,
            }),
        }
    }
}

impl EventId {
    /// What an id is, for documents (OpenAPI): a description and a pattern.
    pub const DOC: (&str, &str) = (
        "MS-N: the hub's start in milliseconds (or a Redis stream entry's) and a count; send it back as Last-Event-ID to resume after it.",
        "^[0-9]+(-[0-9]+)?$",
    );
}

/// An id in a document: a string `MS-N` (or `N`). (Beside the type, as a derive would
/// put it: an event's data that holds an id derives its schema with it.)
impl ToSchema for EventId {
    fn to_schema(_: &mut Components) -> RefOr<Schema> {
        let (description, pattern) = Self::DOC;
        let id = Object::new()
            .schema_type(BasicType::String)
            .description(description)
            .pattern(pattern);
        RefOr::Type(Schema::Object(Box::new(id)))
    }
}

impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
