//! Reading request bodies with a size limit and a clear JSON error for each way a
//! client can get it wrong, never a panic.

use salvo::Request;
use salvo::http::ParseError;
use salvo::http::StatusCode;

use crate::error::ApiError;

/// The body as UTF-8 text of 1 to `max_bytes` bytes: `413` when larger, `400` when
/// empty or not UTF-8.
pub async fn text(req: &mut Request, max_bytes: usize) -> Result<String, ApiError> {
    let bytes = match req.payload_with_max_size(max_bytes).await {
        Ok(bytes) => bytes.clone(),
        Err(ParseError::PayloadTooLarge) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                format!("The body is larger than {max_bytes} bytes."),
            ));
        }
        Err(e) => {
            return Err(ApiError::bad_request(
                "unreadable-body",
                format!("The body could not be read: {e}."),
            ));
        }
    };
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "empty-body",
            "The body is empty; send some text.",
        ));
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("invalid-utf8", "The body is not valid UTF-8 text."))
}
