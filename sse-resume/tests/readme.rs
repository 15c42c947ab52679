//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::time::Duration;

use sse_shared::testing::{CurlRun, ReadmeCommands, TestResult};

const BIN: &str = env!("CARGO_BIN_EXE_sse-resume");

/// The first id the first command's stream got.
fn first_id(runs: &[CurlRun]) -> TestResult<String> {
    let body = &runs.first().ok_or("no stream ran")?.body;
    let id = body.lines().find_map(|l| l.strip_prefix("id: "));
    Ok(id.ok_or(format!("no id in {body}"))?.to_owned())
}

#[tokio::test]
async fn the_readme_commands_work_as_written() -> TestResult {
    let readme = ReadmeCommands::block(include_str!("../README.md"), 0)?;
    let mut app = readme.start(BIN, "sse-resume").await?;
    let runs = readme
        .run(
            app.port()?,
            Duration::from_millis(2500),
            |name, runs| match name {
                "ID" => first_id(runs),
                _ => Err(format!("no value for {name}").into()),
            },
        )
        .await?;
    assert!(runs[0].body.contains("event: tick"), "{runs:?}");
    // Resumed from an id of this run: replayed, then `live`, and no `reset`.
    assert!(
        runs[1].body.contains("event: live") && !runs[1].body.contains("reset"),
        "{runs:?}"
    );
    assert_eq!(runs[2].status, 201, "{runs:?}");
    app.stop().await
}
