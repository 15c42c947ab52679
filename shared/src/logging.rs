//! Logging through `tracing`, to stderr.
//!
//! ```
//! sse_shared::logging::init_tracing();
//! tracing::info!("logged to stderr");
//! ```

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); stdout is kept for the
/// `listening on` line. Safe to call more than once.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
