//! The sse-counter binary as a real process: shutdown on SIGTERM under load.

use std::time::Duration;

use futures_util::future::try_join_all;
use sse_shared::testing::{AppProcess, SseConnection, TestResult, metric};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");

#[tokio::test]
async fn sigterm_with_200_open_streams_exits_within_the_grace() -> TestResult {
    let mut app = AppProcess::spawn(
        BIN,
        &[
            "--interval-ms",
            "100",
            "--max-streams-per-ip",
            "1000",
            "--shutdown-grace-secs",
            "5",
        ],
    )
    .await?;
    let url = format!("{}/events", app.url());
    let mut conns = try_join_all((0..200).map(|_| async {
        let mut conn = SseConnection::open(&url, &[]).await?;
        conn.next_event().await?;
        TestResult::Ok(conn)
    }))
    .await?;
    assert_eq!(metric(app.url(), "sse_open_streams").await?, 200.0);

    app.terminate().await?;
    // The grace period, plus a little for the process to be reaped.
    let status = app.wait(Duration::from_secs(6)).await?;
    assert!(status.success(), "exit status {status}");
    for conn in &mut conns {
        conn.expect_end(Duration::from_secs(1)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error_and_a_failing_exit() -> TestResult {
    let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port().to_string();
    let output = tokio::process::Command::new(BIN)
        .args(["--port", &port])
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn tls_from_certificate_files_serves_http2_and_a_bad_path_is_a_clear_error() -> TestResult {
    let dir = std::env::temp_dir().join(format!("sse-test-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());

    let mut app = AppProcess::spawn(BIN, &["--tls-cert", &cert, "--tls-key", &key]).await?;
    assert!(app.url().starts_with("https://"), "{}", app.url());
    // curl (in the base image) as an independent TLS and HTTP/2 client.
    let output = tokio::process::Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg(format!("{}/healthz", app.url()))
        .output()
        .await?;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2 200");
    app.terminate().await?;
    app.wait(Duration::from_secs(6)).await?;

    let missing = dir.join("missing.pem").display().to_string();
    let output = tokio::process::Command::new(BIN)
        .args(["--port", "0", "--tls-cert", &missing, "--tls-key", &key])
        .output()
        .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS: cannot read"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn a_duration_option_past_its_bound_is_refused_at_start() -> TestResult {
    // u64::MAX seconds overflowed the keep-alive timer into a panic; each duration
    // option now has a maximum, and clap refuses what is past it (exit status 2).
    for (option, value) in [
        ("--keep-alive-secs", "18446744073709551615"),
        ("--keep-alive-secs", "3601"),
        ("--shutdown-grace-secs", "18446744073709551615"),
        ("--write-stall-secs", "3601"),
        ("--retry-ms", "600001"),
        ("--interval-ms", "18446744073709551615"),
    ] {
        let run = tokio::process::Command::new(BIN)
            .args([option, value, "--port", "0"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(10), run).await??;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
    Ok(())
}
