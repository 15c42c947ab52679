//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

mod common;

use common::printed_token;
use sse_shared::testing::{ReadmeCommands, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");

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
