//! Server-Sent Events frames, serialized once to [`Bytes`].
//!
//! A frame is built field by field and written straight into one buffer, so an event
//! published to ten thousand clients is formatted once and shared by reference count.
//!
//! Framing safety: any text is accepted as data. The SSE grammar ends a line at CR, LF
//! or CRLF, so each of those starts a new `data:` line and the parser on the other side
//! joins the lines back with LF. That is lossless except that CR and CRLF come back as
//! LF, which is what every conforming client does. A field value always follows `": "`,
//! so data that starts with a space keeps it. Ids and event names are single-line by
//! definition: CR, LF or NUL in them is a [`FrameError`], never a panic.
//!
//! ```
//! use sse_shared::frame::Frame;
//!
//! let frame = Frame::new().id("7")?.event("note")?.data("two\nlines").finish();
//! assert_eq!(&frame[..], b"id: 7\nevent: note\ndata: two\ndata: lines\n\n");
//! // An id with a line break would end the field early: refused, not written.
//! assert!(Frame::new().id("7\nevent: forged").is_err());
//! # Ok::<(), sse_shared::frame::FrameError>(())
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// An id or event name held CR, LF or NUL, which would end the field early
    /// (or, for NUL in an id, make browsers ignore it).
    #[error("the {field} must not contain CR, LF or NUL")]
    LineBreak {
        /// `"id"` or `"event name"`.
        field: &'static str,
    },
    /// The JSON value could not be serialized.
    #[error("could not serialize the event data as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The keep-alive frame: a comment, which every client ignores.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// A frame under construction. Fields are written in the order they are added;
/// [`Frame::finish`] adds the blank line that dispatches the event.
///
/// ```
/// use sse_shared::frame::Frame;
/// let bytes = Frame::new().id("7")?.event("tick")?.data("a\nb").finish();
/// assert_eq!(&bytes[..], b"id: 7\nevent: tick\ndata: a\ndata: b\n\n");
/// # Ok::<(), sse_shared::frame::FrameError>(())
/// ```
#[derive(Debug, Default)]
pub struct Frame {
    buf: BytesMut,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `id:` field. Errors on CR, LF or NUL.
    pub fn id(self, id: &str) -> Result<Self, FrameError> {
        self.single_line_field("id", "id", id)
    }

    /// The `event:` field (the event's name). Errors on CR, LF or NUL.
    pub fn event(self, name: &str) -> Result<Self, FrameError> {
        self.single_line_field("event", "event name", name)
    }

    /// `data:` lines carrying `text` exactly (CR, LF and CRLF each start a new line).
    pub fn data(mut self, text: &str) -> Self {
        for line in lines(text) {
            self.field("data", line);
        }
        self
    }

    /// `data:` carrying `value` as compact JSON (always a single line).
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, FrameError> {
        let text = serde_json::to_string(value)?;
        Ok(self.data(&text))
    }

    /// The `retry:` field: how long the client waits before reconnecting.
    pub fn retry(mut self, millis: u64) -> Self {
        self.field("retry", &millis.to_string());
        self
    }

    /// The finished frame, ending with the blank line that dispatches it.
    pub fn finish(mut self) -> Bytes {
        self.buf.put_u8(b'\n');
        self.buf.freeze()
    }

    fn single_line_field(
        mut self,
        name: &str,
        what: &'static str,
        value: &str,
    ) -> Result<Self, FrameError> {
        if value.contains(['\r', '\n', '\0']) {
            return Err(FrameError::LineBreak { field: what });
        }
        self.field(name, value);
        Ok(self)
    }

    fn field(&mut self, name: &str, value: &str) {
        self.buf.reserve(name.len() + value.len() + 3);
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        self.buf.put_slice(value.as_bytes());
        self.buf.put_u8(b'\n');
    }
}

/// Splits at CR, LF and CRLF, the three line ends of the SSE grammar. Always yields at
/// least one (possibly empty) line, so empty text still produces one `data:` line.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_each_start_a_data_line() {
        let bytes = Frame::new().data("a\rb\r\nc\nd").finish();
        assert_eq!(&bytes[..], b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn empty_text_and_trailing_newline_survive() {
        assert_eq!(&Frame::new().data("").finish()[..], b"data: \n\n");
        assert_eq!(
            &Frame::new().data("x\n").finish()[..],
            b"data: x\ndata: \n\n"
        );
    }

    #[test]
    fn ids_and_names_with_line_breaks_are_errors() {
        for bad in ["a\rb", "a\nb", "a\0b"] {
            assert!(matches!(
                Frame::new().id(bad),
                Err(FrameError::LineBreak { field: "id" })
            ));
            assert!(matches!(
                Frame::new().event(bad),
                Err(FrameError::LineBreak {
                    field: "event name"
                })
            ));
        }
    }
}
