use std::process::ExitCode;

use clap::Parser;
use sse_shared::{EventLog, HistoryLimits, Hub, RedisArgs, ServerArgs, Streams, server};

/// A chat room over SSE: join, presence, messages to everyone, no impersonation.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
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
    let hub = Hub::new(history, streams.metrics().clone());
    let redis = cli.redis.url.as_deref();
    let room = match EventLog::open(redis, "sse-chat:events", hub, streams.shutdown_token()).await {
        Ok(log) => sse_chat::ChatRoom::open(log, redis, streams.shutdown_token()).await,
        Err(e) => Err(e),
    };
    let room = match room {
        Ok(room) => room,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = sse_chat::router(&streams, &room);
    server::run(&cli.server, streams, app).await
}
