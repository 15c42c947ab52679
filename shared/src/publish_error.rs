//! Why a publish failed: [`PublishError`], which the hub and the publishers return and
//! the `error` module answers over HTTP (`413`, `503`, `500`).
//!
//! ```
//! use sse_shared::publish_error::PublishError;
//!
//! let failure = PublishError::TooLarge { size: 10, max: 5 };
//! assert_eq!(failure.to_string(), "the event is 10 bytes, more than the history's 5 bytes");
//! ```

use crate::frame::FrameError;

/// Why a publish failed: nothing of it was published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event could not be turned into a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The frame alone is larger than the whole history may be.
    #[error("the event is {size} bytes, more than the history's {max} bytes")]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The history's byte bound.
        max: usize,
    },
    /// The log several instances share (Redis) could not take it, or the producer
    /// lease it was published under is gone.
    #[error("the shared event log could not take it: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}
