//! An example's binary as a real process ([`AppProcess`]).

#[allow(unused_imports)]
use super::*;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// An example's binary running as a real process.
pub struct AppProcess {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    url: String,
    /// The last lines it wrote to stderr (also passed on to the test's own stderr).
    stderr: Arc<Mutex<VecDeque<String>>>,
}

/// The most stderr lines an [`AppProcess`] keeps.
const STDERR_LINES: usize = 1000;

impl AppProcess {
    /// Starts `binary` (use `env!("CARGO_BIN_EXE_<name>")`) on 127.0.0.1 with `args`
    /// (and `--port 0` unless they name a port), and waits for its `listening on
    /// http://…` line.
    pub async fn spawn(binary: &str, args: &[&str]) -> TestResult<Self> {
        Self::spawn_logging(binary, args, "warn").await
    }

    /// [`AppProcess::spawn`] with `RUST_LOG` set to `filter` (e.g. `trace`: to check
    /// what never reaches a log line).
    pub async fn spawn_logging(binary: &str, args: &[&str], filter: &str) -> TestResult<Self> {
        let mut command = Command::new(binary);
        command.args(["--host", "127.0.0.1"]);
        if !args.contains(&"--port") {
            command.args(["--port", "0"]);
        }
        let mut child = command
            .args(args)
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
        let kept = Arc::clone(&stderr);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == STDERR_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        within(
            Duration::from_secs(30),
            "the listening line",
            stdout.read_line(&mut line),
        )
        .await??;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line: {line:?}"))?
            .to_owned();
        Ok(Self {
            child,
            _stdout: stdout,
            url,
            stderr,
        })
    }

    /// What it has written to stderr so far (the last 1,000 lines).
    pub fn stderr_lines(&self) -> Vec<String> {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> TestResult<u16> {
        let port = self.url.rsplit(':').next().ok_or("no port in the url")?;
        Ok(port.parse()?)
    }

    /// Sends SIGTERM, as a service manager would.
    pub async fn terminate(&self) -> TestResult {
        self.signal("TERM").await
    }

    /// Sends the signal `name` (`TERM`, `INT`, ...).
    pub async fn signal(&self, name: &str) -> TestResult {
        let pid = self.child.id().ok_or("the process has already exited")?;
        let mut kill = Command::new("kill");
        kill.args([format!("-{name}"), pid.to_string()]);
        let status = command_output(&mut kill, WAIT).await?.status;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{name} {pid} failed: {status}").into())
        }
    }

    /// Stops the process as a service manager would (SIGTERM) and fails unless it exits
    /// cleanly within 10 s (the default 5 s grace, with room on a loaded machine).
    pub async fn stop(&mut self) -> TestResult {
        self.terminate().await?;
        let status = self.wait(Duration::from_secs(10)).await?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("stopped with {status}").into())
        }
    }

    /// Kills the process at once (SIGKILL): no shutdown, no cleanup, like a crash.
    pub async fn kill(&mut self) -> TestResult {
        self.child.kill().await?;
        Ok(())
    }

    /// Waits for the process to exit, failing after `limit`.
    pub async fn wait(&mut self, limit: Duration) -> TestResult<ExitStatus> {
        Ok(within(limit, "the process to exit", self.child.wait()).await??)
    }
}
