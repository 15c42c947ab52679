//! The benchmark harness itself works against every server: all streams open, every
//! event arrives (no loss: published x clients - delivered is 0), a fixed-rate run
//! reports latencies, and a per-event CPU run reports a cost. Small loads, in the debug
//! build: the figures themselves come from the release build (see the README).

use std::time::Duration;

use sse_shared::testing::{TestResult, command_output};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bench");

async fn run(args: &[&str]) -> TestResult<String> {
    let out = command_output(Command::new(BIN).args(args), Duration::from_secs(120)).await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("bench {args:?} failed: {stderr}\n{stdout}").into());
    }
    Ok(stdout)
}

/// The number after `name: ` in a result line.
fn field(out: &str, name: &str) -> f64 {
    out.split(&format!("{name}: "))
        .nth(1)
        .and_then(|rest| rest.split([',', ' ', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn every_server_delivers_everything_in_a_small_closed_loop() -> TestResult {
    // Mercure's hub is left out: it is built by hand (bench/build-mercure.sh).
    for server in [
        "ours", "lean", "chat", "tutorial", "axum", "ceiling", "topics",
    ] {
        let out = run(&["closed-loop", server, "--clients", "20", "--seconds", "1"]).await?;
        assert_eq!(field(&out, "lost"), 0.0, "{server}: {out}");
        assert!(field(&out, "delivered_per_sec") > 0.0, "{server}: {out}");
    }
    Ok(())
}

#[tokio::test]
async fn a_fixed_rate_run_measures_latency() -> TestResult {
    let args = [
        "fixed-rate",
        "ours",
        "--clients",
        "20",
        "--rate",
        "50",
        "--seconds",
        "1",
    ];
    let out = run(&args).await?;
    assert_eq!(field(&out, "lost"), 0.0, "{out}");
    assert!(field(&out, "p99") > 0.0, "{out}");
    Ok(())
}

#[tokio::test]
async fn a_per_event_run_measures_server_cpu_in_both_regimes() -> TestResult {
    for regime in [&["--window", "4"], &["--rate", "50"]] {
        let mut args = vec!["cpu", "axum", "--clients", "200", "--seconds", "1"];
        args.extend(regime);
        let out = run(&args).await?;
        // Latency is recorded at a fixed rate only.
        let fixed = regime[0] == "--rate";
        assert_eq!(out.contains("latency_us: Some(("), fixed, "{out}");
        assert_eq!(field(&out, "lost"), 0.0, "{out}");
        assert!(field(&out, "delivered_per_sec") > 0.0, "{out}");
        // Server CPU is read in 10 ms ticks: a second of 200 streams takes tens of them.
        assert!(field(&out, "cpu_us") > 0.0, "{out}");
    }
    Ok(())
}
