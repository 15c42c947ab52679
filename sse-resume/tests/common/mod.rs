//! What the process-level tests of sse-resume share.

use sse_shared::testing::{TestResult, http};

/// Posts a note to the instance at `base`; returns its id.
pub async fn post(base: &str, text: String) -> TestResult<String> {
    let response = http()
        .post(format!("{base}/events"))
        .body(text)
        .send()
        .await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    match body["id"].as_str() {
        Some(id) if status == 201 => Ok(id.to_owned()),
        _ => Err(format!("POST /events answered {status}: {body}").into()),
    }
}
