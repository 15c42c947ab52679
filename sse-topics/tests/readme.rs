//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{AppProcess, ReadmeCommands, TestResult, WAIT, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");

/// The token the hub printed at start, when it made its own secret.
async fn printed_token(app: &AppProcess) -> TestResult<String> {
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

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let mut app = readme.start(BIN, "sse-topics").await?;
    let token = printed_token(&app).await?;
    let runs = readme
        .run(app.port()?, Duration::from_secs(2), |name, _| match name {
            "TOKEN" => Ok(token.clone()),
            _ => Err(format!("no value for {name}").into()),
        })
        .await?;
    assert_eq!(runs.len(), 3, "{runs:?}");
    app.stop().await
}
