//! The README's commands, run as written against the example (`sse_shared::testing::
//! ReadmeCommands`): a README cannot drift from what the server does.

use std::process::Stdio;
use std::time::Duration;

use sse_shared::testing::{CurlRun, ReadmeCommands, TestResult, WAIT, wait_until, within};
use tokio::process::Command;

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

/// The root README's scale-out commands (Redis, two instances, nginx in front, a stream
/// through it) and its `nginx.conf`, run as written but on free ports, and with this
/// test's build of the binary in place of `cargo build --release`'s.
#[tokio::test]
async fn the_root_readmes_scale_out_commands_work_as_written() -> TestResult {
    let readme = include_str!("../../README.md");
    let block = fenced(readme, "sh", "redis-server --port 6379 &")?;
    let conf = fenced(readme, "nginx", "upstream sse")?;
    let free = || -> TestResult<String> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
            .to_string())
    };
    // (README port, this run's port): Redis, the two instances, nginx.
    let ports = [
        ("6379", free()?),
        ("8081", free()?),
        ("8082", free()?),
        ("8080", free()?),
    ];
    let on_free_ports = |text: &str| {
        ports.iter().fold(text.to_owned(), |text, (readme, ours)| {
            text.replace(readme, ours)
        })
    };
    let dir = std::env::temp_dir().join(format!("sse-readme-scale-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("nginx.conf"), on_free_ports(&conf))?;
    let mut background = Background(Vec::new());
    let mut stream = None;
    for line in block.lines() {
        let command = line.split(" #").next().unwrap_or_default().trim();
        if command == "cargo build --release -p sse-resume" {
            continue; // the test's own build is BIN
        }
        let command = on_free_ports(command).replace("./target/release/sse-resume", BIN);
        if let Some(command) = command.strip_suffix('&') {
            let child = Command::new("sh")
                .args(["-c", &format!("exec {command}")])
                .current_dir(&dir)
                .env("PATH", format!("/usr/sbin:{}", std::env::var("PATH")?))
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            background.0.push(child);
            // What it listens on must be up before the next command needs it: nginx on
            // the README's 8080, the others on their `--port`.
            let listens = |(_, ours): &&(&str, String)| command.contains(&format!("port {ours}"));
            let port = match command.starts_with("nginx ") {
                true => Some(&ports[3].1),
                false => ports.iter().find(listens).map(|(_, ours)| ours),
            };
            let port = port.ok_or(format!("which port does `{command}` listen on?"))?;
            let addr = format!("127.0.0.1:{port}");
            wait_until(WAIT, &format!("`{command}` to listen"), || async {
                Ok(tokio::net::TcpStream::connect(&addr).await.is_ok())
            })
            .await?;
        } else if let Some(args) = command.strip_prefix("curl -N ") {
            let curl = Command::new("curl")
                .args(["-sS", "-N", "--max-time", "3", args])
                .output();
            stream = Some(within(WAIT, "curl through nginx", curl).await??);
        } else {
            return Err(format!("a command this test does not run: {command}").into());
        }
    }
    let output = stream.ok_or("no stream was read")?;
    let body = String::from_utf8_lossy(&output.stdout);
    assert!(body.contains("event: tick"), "{body}");
    drop(background);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The commands run with `&`: stopped with SIGTERM when dropped, as a shell's user
/// would, so nginx's master stops its workers (SIGKILL would leave them running).
struct Background(Vec<tokio::process::Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for pid in self.0.iter().filter_map(|child| child.id()) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        // Each has a moment to stop its own (`kill_on_drop` then kills what is left).
        let until = std::time::Instant::now() + WAIT;
        for child in &mut self.0 {
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The fenced ```kind block of `text` that contains `marker`.
fn fenced(text: &str, kind: &str, marker: &str) -> TestResult<String> {
    let open = format!("```{kind}\n");
    let found = text.split(&open).skip(1).find_map(|rest| {
        let block = rest.split("\n```").next()?;
        block.contains(marker).then(|| block.to_owned())
    });
    Ok(found.ok_or(format!("no ```{kind} block with `{marker}`"))?)
}
