//! What the process-level tests of sse-resume share.

use sse_shared::testing::{TestResult, http};

/// Posts a note to the instance at `base`; returns its id.
pub async fn post(base: &str, text: String) -> TestResult<String> {
    let response = http()
        .post(format!("{base}/events"))
        .body(text)
        .send()
        .await?;
    let body: serde_json::Value = response.json().await?;
    Ok(body["id"].as_str().ok_or("no id")?.to_owned())
}
