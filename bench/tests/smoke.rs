//! The benchmark harness itself works against every server: all streams open, every
//! event arrives (no loss), and a fixed-rate run reports latencies. Small loads, in
//! the debug build: the figures themselves come from `cargo run -p bench --release -- all`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bench");

fn run(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bench: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_server_delivers_everything_in_a_small_closed_loop() {
    for server in ["ours", "chat", "tutorial", "axum", "ceiling"] {
        let out = run(&["closed-loop", server, "--clients", "20", "--seconds", "1"]);
        assert!(out.contains("lost: 0"), "{server}: {out}");
        let rate: f64 = out
            .split("delivered_per_sec: ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(rate > 0.0, "{server}: {out}");
    }
}

#[test]
fn a_fixed_rate_run_measures_latency() {
    let out = run(&[
        "fixed-rate",
        "ours",
        "--clients",
        "20",
        "--rate",
        "50",
        "--seconds",
        "1",
    ]);
    assert!(out.contains("lost: 0") && out.contains("p99: "), "{out}");
}
