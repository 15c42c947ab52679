//! The sse-counter binary as a real process: shutdown on SIGTERM or SIGINT under load.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use sse_shared::testing::{
    AppProcess, SseConnection, TestResult, WAIT, check_contract, command_output, figure, metric,
    refused_at_start, send_raw, wait_until, within,
};

const BIN: &str = env!("CARGO_BIN_EXE_sse-counter");

/// How long this machine takes from SIGTERM to the exit of a counter with nothing open:
/// the margin a shutdown test allows past the grace scales with it, not a fixed second.
async fn idle_exit() -> TestResult<Duration> {
    let mut app = AppProcess::spawn(BIN, &[]).await?;
    let asked = Instant::now();
    app.terminate().await?;
    app.wait(WAIT).await?;
    let took = asked.elapsed();
    figure("shutdown", "exit with nothing open (ms)", took.as_millis());
    Ok(took)
}

/// Waits for the exit that follows a signal sent at `asked`: within `grace` plus twenty
/// idle exits (closing what is left and the process's own teardown; measured here under
/// the test suite's load: 2-6 ms idle, 6-18 ms past a 2 s grace with 100 connections to
/// close), and successful.
async fn exits_within(
    app: &mut AppProcess,
    asked: Instant,
    grace: Duration,
) -> TestResult<Duration> {
    let limit = grace + 20 * idle_exit().await?;
    let status = app
        .wait(limit.saturating_sub(asked.elapsed()) + WAIT)
        .await?;
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took <= limit,
        "exited after {took:?}, past the grace and margin {limit:?}"
    );
    Ok(took)
}

#[tokio::test]
async fn sigterm_or_sigint_with_200_open_streams_exits_within_the_grace() -> TestResult {
    // A service manager sends SIGTERM; Ctrl-C in a terminal sends SIGINT.
    for signal in ["TERM", "INT"] {
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

        let asked = Instant::now();
        app.signal(signal).await?;
        let took = exits_within(&mut app, asked, Duration::from_secs(5)).await?;
        figure(
            "shutdown",
            &format!("SIG{signal} to exit with 200 streams, 5 s grace (ms)"),
            took.as_millis(),
        );
        for conn in &mut conns {
            conn.expect_end(Duration::from_secs(1)).await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error_and_a_failing_exit() -> TestResult {
    let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port().to_string();
    let output = command_output(
        tokio::process::Command::new(BIN).args(["--port", &port]),
        WAIT,
    )
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
    let output = command_output(
        tokio::process::Command::new("curl")
            .args([
                "-sk",
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .arg(format!("{}/healthz", app.url())),
        WAIT,
    )
    .await?;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "2 200");
    app.stop().await?;

    let missing = dir.join("missing.pem").display().to_string();
    let output = command_output(
        tokio::process::Command::new(BIN).args([
            "--port",
            "0",
            "--tls-cert",
            &missing,
            "--tls-key",
            &key,
        ]),
        WAIT,
    )
    .await?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS: cannot read"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A key that is not the certificate's was accepted: the server said `listening on
/// https://...` and every handshake failed with nothing logged. Now the pair is checked
/// at start (status 2, naming both options and files), as is a file that is not PEM.
#[tokio::test]
async fn a_tls_key_of_another_certificate_or_a_file_that_is_not_pem_is_refused_at_start()
-> TestResult {
    let dir = std::env::temp_dir().join(format!("sse-test-tls-pair-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (one, other) = (
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?,
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?,
    );
    let path = |name: &str| dir.join(name).display().to_string();
    std::fs::write(path("cert.pem"), one.cert.pem())?;
    std::fs::write(path("other-key.pem"), other.signing_key.serialize_pem())?;
    std::fs::write(path("garbage.pem"), "not a certificate\n")?;
    std::fs::write(path("key.pem"), one.signing_key.serialize_pem())?;
    let (cert, key, other_key, garbage) = (
        path("cert.pem"),
        path("key.pem"),
        path("other-key.pem"),
        path("garbage.pem"),
    );
    let mismatch =
        format!("--tls-key {other_key} is not the key of the certificate in --tls-cert {cert}");
    let no_cert = format!("--tls-cert {garbage} holds no PEM certificate");
    let no_key = format!("--tls-key {garbage} holds no PEM private key");
    for (cert, key, says) in [
        (&cert, &other_key, &mismatch),
        (&garbage, &key, &no_cert),
        (&cert, &garbage, &no_key),
    ] {
        let (code, stderr) = refused_at_start(BIN, &["--tls-cert", cert, "--tls-key", key]).await?;
        assert_eq!(code, Some(2), "{cert} {key}: {stderr}");
        assert!(stderr.contains(says.as_str()), "{cert} {key}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `--retry-ms -5` said `unexpected argument '-5' found`, naming no option: a negative
/// number is now the option's value, refused by the option's own rule, by name.
#[tokio::test]
async fn a_negative_number_is_refused_by_its_option_by_name() -> TestResult {
    for option in [
        "--retry-ms",
        "--max-streams",
        "--keep-alive-secs",
        "--interval-ms",
    ] {
        let (code, stderr) = refused_at_start(BIN, &[option, "-5"]).await?;
        assert_eq!(code, Some(2), "{option} -5: {stderr}");
        assert!(stderr.contains(option), "{option} -5: {stderr}");
        assert!(
            !stderr.contains("unexpected argument"),
            "{option} -5: {stderr}"
        );
    }
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
        let (code, stderr) = refused_at_start(BIN, &[option, value]).await?;
        assert_eq!(code, Some(2), "{option} {value}: {stderr}");
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
    Ok(())
}

/// Options whose value would make the server useless, or could never work, are
/// refused at start with a message naming the option (clap's exit status 2).
#[tokio::test]
async fn options_that_would_make_the_server_useless_are_refused_at_start() -> TestResult {
    for (option, value) in [
        ("--max-streams", "0"),
        ("--max-streams-per-ip", "0"),
        ("--retry-ms", "0"),
        ("--retry-ms", "99"),
        ("--cors-origins", "https://a.example:65536"),
        ("--cors-origins", "https://a.example:0"),
        ("--cors-origins", "https://a.example/path"),
        ("--trusted-proxies", "0.0.0.0"),
        ("--trusted-proxies", "::"),
    ] {
        let (code, stderr) = refused_at_start(BIN, &[option, value]).await?;
        assert_eq!(code, Some(2), "{option} {value}: {stderr}");
        assert!(stderr.contains(option), "{option} {value}: {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn a_tls_client_that_never_says_hello_is_dropped_after_the_10_s_handshake_limit() -> TestResult
{
    use tokio::io::AsyncReadExt;
    let mut app = AppProcess::spawn(BIN, &["--tls-self-signed"]).await?;
    let addr = app.url().trim_start_matches("https://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&addr).await?;
    let opened = std::time::Instant::now();
    let mut buf = [0u8; 64];
    // Closed (or reset) by the server; a server without the limit keeps it open.
    let read = within(
        Duration::from_secs(20),
        "the server to drop the silent client",
        silent.read(&mut buf),
    )
    .await?;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_secs(9),
        "dropped after {after:?}, before the limit"
    );
    app.stop().await?;
    Ok(())
}

#[tokio::test]
async fn clients_that_never_finish_a_request_or_never_read_cannot_hold_the_exit() -> TestResult {
    let mut app = AppProcess::spawn(
        BIN,
        &["--max-streams-per-ip", "1000", "--shutdown-grace-secs", "2"],
    )
    .await?;
    let addr = app.url().trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    // 50 send half a request head, then nothing: the server allows 30 s for a head, so
    // only the end of the grace can close these. 50 open a stream and never read a byte.
    let half_head = b"GET /events HTTP/1.1\r\nhost: x\r\n";
    let whole_head = b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n";
    for request in [&half_head[..], &whole_head[..]] {
        for _ in 0..50 {
            held.push(send_raw(addr.as_str(), request).await?);
        }
    }
    wait_until(WAIT, "the 50 streams to open", || async {
        Ok(metric(app.url(), "sse_open_streams").await? == 50.0)
    })
    .await?;
    let asked = Instant::now();
    app.terminate().await?;
    // Past the 2 s grace (only its end closes these), far short of the 30 s head limit.
    let took = exits_within(&mut app, asked, Duration::from_secs(2)).await?;
    assert!(took >= Duration::from_secs(2), "exited after {took:?}");
    figure(
        "shutdown",
        "exit with 100 stuck clients, 2 s grace (ms)",
        took.as_millis(),
    );
    drop(held);
    Ok(())
}

/// `GET /openapi.json` (served by `main.rs`, from `contract.rs`) is valid OpenAPI 3.2
/// (checked by an independent validator), and what a stream sends, a reset and numbers,
/// is what it describes.
#[tokio::test]
async fn the_events_sent_are_the_ones_openapi_json_describes() -> TestResult {
    let app = AppProcess::spawn(BIN, &["--interval-ms", "20"]).await?;
    let url = format!("{}/events", app.url());
    let mut conn = SseConnection::open(&url, &[("last-event-id", "x")]).await?;
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(conn.next_event().await?);
    }
    check_contract(app.url(), "/events", &events, &["reset", "", ""]).await
}
