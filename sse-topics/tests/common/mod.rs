//! Helpers more than one of sse-topics' test files use.

use sse_shared::testing::{AppProcess, TestResult, WAIT, wait_until};

/// The token the hub printed at start, when it made its own secret.
pub async fn printed_token(app: &AppProcess) -> TestResult<String> {
    let token = || {
        let lines = app.stderr_lines();
        let at = lines.iter().position(|l| l.contains("grants everything"))?;
        lines.get(at + 1).cloned()
    };
    wait_until(WAIT, "the hub to print its token", || async {
        Ok(token().is_some())
    })
    .await?;
    Ok(token().ok_or("no token printed")?)
}
