//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{ReadmeCommands, TestResult, no_variables};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let mut app = readme.start(BIN, "sse-notify").await?;
    let runs = readme
        .run(app.port()?, Duration::from_secs(2), no_variables)
        .await?;
    assert_eq!(runs.len(), 4, "{runs:?}");
    app.stop().await
}
