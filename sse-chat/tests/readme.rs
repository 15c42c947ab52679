//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{CurlRun, ReadmeCommands, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-chat");

/// The token of the welcome the first command's stream got.
fn welcome_token(runs: &[CurlRun]) -> TestResult<String> {
    let body = &runs.first().ok_or("no stream ran")?.body;
    let start = body
        .find("\"token\":\"")
        .ok_or(format!("no token in {body}"))?
        + 9;
    let end = body[start..].find('"').ok_or("an unfinished token")?;
    Ok(body[start..start + end].to_owned())
}

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let mut app = readme.start(BIN, "sse-chat").await?;
    let runs = readme
        .run(
            app.port()?,
            Duration::from_secs(2),
            |name, runs| match name {
                "TOKEN" => welcome_token(runs),
                _ => Err(format!("no value for {name}").into()),
            },
        )
        .await?;
    assert!(runs[0].body.contains("event: welcome"), "{runs:?}");
    assert_eq!(runs[1].status, 202, "{runs:?}");
    app.stop().await
}
