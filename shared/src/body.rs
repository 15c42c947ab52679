//! Request bodies through salvo's own parsers, with a size limit and a clear JSON error
//! for each way a client can get one wrong, never a panic. (The deadline for a whole
//! body is the `body_deadline` hoop's.)
//!
//! ```
//! use salvo::prelude::*;
//! use sse_shared::body;
//! use sse_shared::error::ApiError;
//!
//! /// Echoes a note of 1 to 1,000 bytes of UTF-8: `413`, `400` or `408` otherwise,
//! /// each as the JSON error.
//! #[handler]
//! async fn echo(req: &mut Request) -> Result<String, ApiError> {
//!     body::text(req, 1000).await
//! }
//! # let _ = Router::new().post(echo);
//! ```

use std::time::Duration;

use salvo::Request;
use salvo::http::{ParseError, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// How long a request body may go without a byte before the request fails with `408`
/// (salvo's fuse, `request_body_timeout`).
pub const BODY_STALL: Duration = Duration::from_secs(10);

/// The body as UTF-8 text of 1 to `max_bytes` bytes: `413` when larger, `400` when
/// empty or not UTF-8, `408` when it stops arriving or takes longer than the
/// `body_deadline` hoop allows (both readers here).
pub async fn text(req: &mut Request, max_bytes: usize) -> Result<String, ApiError> {
    let bytes = req.payload_with_max_size(max_bytes).await;
    let bytes = bytes
        .map(|b| b.to_vec())
        .map_err(|e| refused(e, max_bytes))?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty-body",
            "The body is empty; send some text.",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("invalid-utf8", "The body is not valid UTF-8 text."))
}

/// The body as a `T`, read from a JSON object by salvo's `parse_json_with_max_size`:
/// `415` unless the content type is JSON, `413` over `max_bytes`, `400 invalid-json`
/// when it is not a JSON object, and `400 invalid-field` naming the field that does not
/// fit `T` (give `T` `#[serde(deny_unknown_fields)]` to refuse fields it lacks).
/// Rules serde cannot state (lengths, allowed characters) are the caller's next step.
pub async fn json<T: DeserializeOwned>(req: &mut Request, max_bytes: usize) -> Result<T, ApiError> {
    // An object first: serde would also build a struct from a JSON array.
    let object = req
        .parse_json_with_max_size::<Map<String, Value>>(max_bytes)
        .await;
    let object = object.map_err(|e| refused(e, max_bytes))?;
    serde_path_to_error::deserialize(Value::Object(object)).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." => format!("{}.", e.inner()),
            path => format!("`{path}`: {}.", e.inner()),
        };
        ApiError::bad_request("invalid-field", message)
    })
}

fn refused(e: ParseError, max_bytes: usize) -> ApiError {
    match e {
        ParseError::PayloadTooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("The body is larger than {max_bytes} bytes."),
        ),
        ParseError::InvalidContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the body as JSON with content-type: application/json.",
        ),
        ParseError::SerdeJson(e) => ApiError::bad_request(
            "invalid-json",
            format!("The body is not a JSON object: {e}."),
        ),
        e if timed_out(&e) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            format!(
                "The body did not arrive in time: it stopped for {} s, or took longer than the server's deadline.",
                BODY_STALL.as_secs()
            ),
        ),
        e => ApiError::bad_request(
            "unreadable-body",
            format!("The body could not be read: {e}."),
        ),
    }
}

/// Whether the read failed because the body stalled (salvo's fuse, [`BODY_STALL`]) or
/// passed its deadline (the `body_deadline` hoop): an I/O error that timed out.
fn timed_out(e: &ParseError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = match e {
        ParseError::Other(inner) => Some(inner.as_ref()),
        e => Some(e),
    };
    while let Some(error) = cause {
        let io = error.downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return true;
        }
        // An I/O error that wraps another (a boxed body's, as the deadline hoop's is)
        // names it with `get_ref`: its `source` skips it.
        let wrapped = io.and_then(|io| io.get_ref()).map(|inner| inner as _);
        cause = wrapped.or_else(|| error.source());
    }
    false
}
