//! A README's commands, run as written ([`ReadmeCommands`]): the `cargo run` that starts
//! the example, then each `curl` against it, so that a README cannot drift from what the
//! server does.

#[allow(unused_imports)]
use super::*;

/// The commands of one fenced `sh` block of a README, in order: continuation lines
/// (`\`) joined, comments (`  # ...`) and blank lines dropped.
pub struct ReadmeCommands {
    /// The commands, one a line.
    pub lines: Vec<String>,
}

/// What one `curl` of a README did.
#[derive(Debug)]
pub struct CurlRun {
    /// The command as run.
    pub command: String,
    /// The HTTP status (0: no response).
    pub status: u16,
    /// The body it printed (for a stream, what arrived before it was cut).
    pub body: String,
}

impl ReadmeCommands {
    /// The `n`-th (from 0) fenced `sh` block of `readme`.
    pub fn block(readme: &str, n: usize) -> TestResult<Self> {
        let mut blocks = readme.split("```sh\n").skip(1);
        let block = blocks.nth(n).ok_or(format!("no sh block {n}"))?;
        let block = block.split("\n```").next().unwrap_or_default();
        let joined = block.replace("\\\n", " ");
        let lines = joined
            .lines()
            .map(|line| match line.find("  #") {
                Some(comment) => &line[..comment],
                None => line,
            })
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Ok(Self { lines })
    }

    /// Starts `binary` as the block's first line, `cargo run -p <package> [-- ARGS]`, says.
    pub async fn start(&self, binary: &str, package: &str) -> TestResult<AppProcess> {
        let args = self.cargo_run_args(package)?;
        AppProcess::spawn(binary, &args.iter().map(String::as_str).collect::<Vec<_>>()).await
    }

    /// The arguments the block's `cargo run -p <package> [-- ARGS]` gives the example.
    fn cargo_run_args(&self, package: &str) -> TestResult<Vec<String>> {
        let start = format!("cargo run -p {package}");
        let line = self.lines.first().filter(|l| l.starts_with(&start));
        let line = line.ok_or(format!("the block does not start with `{start}`"))?;
        let args = line[start.len()..].trim().trim_start_matches("--");
        Ok(args.split_whitespace().map(str::to_owned).collect())
    }

    /// Runs the block's commands after its `cargo run` against the example listening on
    /// `port`, in a fresh folder (for cookie jars): each `curl` through `sh` as written,
    /// but for `localhost:8080` (the example's port), a bound on streams (`-N`: cut
    /// after `stream_for`) and options to read its status; a line `NAME=...` sets the
    /// shell variable to `fill(NAME, runs so far)` ([`no_variables`] for a block with
    /// none). Any other command is an error, so a README cannot gain one this test does
    /// not run; so is an answer that is not 2xx.
    pub async fn run(
        &self,
        port: u16,
        stream_for: Duration,
        mut fill: impl FnMut(&str, &[CurlRun]) -> TestResult<String>,
    ) -> TestResult<Vec<CurlRun>> {
        let dir = target_tmp()
            .ok_or("no target folder")?
            .join(format!("readme-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut vars: Vec<(String, String)> = Vec::new();
        let mut runs: Vec<CurlRun> = Vec::new();
        for line in self.lines.iter().skip(1) {
            if let Some((name, "...")) = line.split_once('=') {
                vars.push((name.to_owned(), fill(name, &runs)?));
                continue;
            }
            let Some(rest) = line.strip_prefix("curl ") else {
                return Err(format!("a README command this test does not run: {line}").into());
            };
            let rest = rest.replace("localhost:8080", &format!("localhost:{port}"));
            let cut = if rest.split_whitespace().any(|a| a == "-N") {
                format!("--max-time {} ", stream_for.as_secs_f64())
            } else {
                String::new()
            };
            let command = format!("curl -sS {cut}-o body -w '%{{http_code}}' {rest}");
            let mut sh = Command::new("sh");
            sh.args(["-c", &command])
                .current_dir(&dir)
                .envs(vars.clone());
            let output = command_output(&mut sh, stream_for + WAIT).await?;
            // curl's 28: cut by --max-time, as a stream is.
            let cut_short = !cut.is_empty() && output.status.code() == Some(28);
            if !output.status.success() && !cut_short {
                let stderr = String::from_utf8_lossy(&output.stderr);
                return Err(format!("`{line}` failed ({}): {stderr}", output.status).into());
            }
            let status = String::from_utf8_lossy(&output.stdout).trim().parse()?;
            let body = std::fs::read_to_string(dir.join("body")).unwrap_or_default();
            let _ = std::fs::remove_file(dir.join("body"));
            runs.push(CurlRun {
                command: line.clone(),
                status,
                body,
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
        match runs.iter().find(|run| !(200..300).contains(&run.status)) {
            Some(run) => {
                Err(format!("`{}` answered {}: {}", run.command, run.status, run.body).into())
            }
            None => Ok(runs),
        }
    }
}

/// The `fill` of a README block that sets no variable.
pub fn no_variables(name: &str, _: &[CurlRun]) -> TestResult<String> {
    Err(format!("the README sets {name}, and this test gives it no value").into())
}
