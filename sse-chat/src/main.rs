mod contract;
mod redis;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sse_chat::ChatRoom;
use sse_redis::RedisArgs;
use sse_shared::config;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::server::{self, MainResult};
use sse_shared::{HistoryArgs, Hub, ServerArgs, Streams};

/// A chat room over SSE: join, presence, messages to everyone, no impersonation.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    limits: sse_chat::RoomLimits,
}

// jemalloc, with its background thread, as the allocator: after a wave of clients has
// gone, it gives the freed memory back to the system within seconds, where glibc's
// malloc keeps it (RELIABILITY.md, "Memory after waves").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    sse_shared::logging::init_tracing();
    server::exit_code(run(config::read_options(Cli::command())).await)
}

async fn run(cli: Cli) -> MainResult {
    let streams = Streams::from_args(&cli.server);
    let limits = cli.history.limits();
    let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
    let room = match cli.redis.url.as_deref() {
        None => ChatRoom::in_memory(hub, cli.limits),
        Some(url) => {
            let shutdown = streams.shutdown_token();
            let log = sse_redis::publisher(Some(url), "sse-chat:events", hub, shutdown).await?;
            redis::room(log, url, cli.limits, streams.shutdown_token()).await?
        }
    };
    let app = sse_chat::router(&room);
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app);
    Ok(server::run(&cli.server, streams, app).await)
}
