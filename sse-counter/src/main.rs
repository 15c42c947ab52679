use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sse_shared::{ServerArgs, Streams, server};

/// The smallest SSE stream: a counter with ids, so a reconnect goes on counting.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Milliseconds between counts.
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    server::init_tracing();
    let cli = Cli::parse();
    let streams = Streams::from_args(&cli.server);
    let app = sse_counter::router(&streams, Duration::from_millis(cli.interval_ms));
    server::run(&cli.server, streams, app).await
}
