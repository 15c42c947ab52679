//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{ReadmeCommands, TestResult, no_variables};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let mut app = readme.start(BIN, "sse-counter").await?;
    let runs = readme
        .run(app.port()?, Duration::from_millis(2500), no_variables)
        .await?;
    assert!(
        runs[0].body.starts_with("retry:") && runs[0].body.contains("id: 1\n"),
        "{runs:?}"
    );
    assert!(runs[1].body.contains("id: 42\n"), "goes on at 42: {runs:?}");
    app.stop().await
}
