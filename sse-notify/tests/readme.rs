//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{AppProcess, ReadmeCommands, TestResult, all_succeeded};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let args = readme.cargo_run_args("sse-notify")?;
    let mut app =
        AppProcess::spawn(BIN, &args.iter().map(String::as_str).collect::<Vec<_>>()).await?;
    let runs = readme
        .run(app.port()?, Duration::from_secs(2), |name, _| {
            Err(format!("no value for {name}").into())
        })
        .await?;
    all_succeeded(&runs)?;
    assert_eq!(runs.len(), 4, "{runs:?}");
    app.stop().await
}
