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

/// The body as a JSON value: `415` unless the content type is `application/json`,
/// `413` over `max_bytes`, `400` when it is not JSON.
pub async fn json(req: &mut Request, max_bytes: usize) -> Result<serde_json::Value, ApiError> {
    let is_json = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the body as JSON with content-type: application/json.",
        ));
    }
    let text = text(req, max_bytes).await?;
    serde_json::from_str(&text).map_err(|e| {
        ApiError::bad_request("invalid-json", format!("The body is not valid JSON: {e}."))
    })
}
