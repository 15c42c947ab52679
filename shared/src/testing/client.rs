//! A client of the streams that is another program ([`ClientProcess`]): the npm, PyPI
//! and Go clients the tests run, each writing one JSON line per step to stdout.

#[allow(unused_imports)]
use super::*;

/// Another program reading a stream, one JSON line per step on its stdout; killed
/// when dropped.
pub struct ClientProcess {
    _child: Child,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
    name: String,
}

impl ClientProcess {
    /// Starts `program` with `args`. `hint` says how to get the program when it cannot
    /// be run (which script makes it, which variable names it).
    pub fn spawn(program: &str, args: &[&str], hint: &str) -> TestResult<Self> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {program} ({e}): {hint}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        Ok(Self {
            _child: child,
            lines: BufReader::new(stdout).lines(),
            name: program.to_owned(),
        })
    }

    /// Its next line, as JSON, within `limit`.
    pub async fn next_within(&mut self, limit: Duration) -> TestResult<serde_json::Value> {
        let line = within(limit, &self.name, self.lines.next_line()).await??;
        let line = line.ok_or_else(|| format!("{} ended", self.name))?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Its next line, as JSON, within [`WAIT`].
    pub async fn next(&mut self) -> TestResult<serde_json::Value> {
        self.next_within(WAIT).await
    }
}

/// A program the tests run: the path in the environment variable `var` (set by
/// `scripts/test`), else `default` under the workspace's target folder.
pub fn tool_path(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        let target = target_tmp().and_then(|tmp| tmp.parent().map(Path::to_path_buf));
        let target = target.unwrap_or_else(|| PathBuf::from("target"));
        target.join(default).display().to_string()
    })
}
