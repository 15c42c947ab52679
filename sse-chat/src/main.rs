use std::process::ExitCode;

use clap::Parser;
use sse_shared::{HistoryLimits, ServerArgs, Streams, server};

/// A chat room over SSE: join, presence, messages to everyone, no impersonation.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Events (messages, joins, leaves) kept for replay.
    #[arg(long, env = "HISTORY", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    history: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    server::init_tracing();
    let cli = Cli::parse();
    let streams = Streams::from_args(&cli.server);
    let history = HistoryLimits {
        max_events: usize::try_from(cli.history).unwrap_or(usize::MAX),
        ..HistoryLimits::default()
    };
    let room = sse_chat::ChatRoom::new(history, &streams);
    let app = sse_chat::router(&streams, &room);
    server::run(&cli.server, streams, app).await
}
