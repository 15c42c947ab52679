use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use salvo::Router;
use sse_redis::RedisArgs;
use sse_shared::config;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::post_limit::PostLimit;
use sse_shared::server::{self, MainResult};
use sse_shared::{HistoryArgs, Hub, ServerArgs, Streams};

mod contract;

/// Last-Event-ID done right: a bounded history, replay with no gap and no duplicate.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
    /// Milliseconds between ticks.
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    interval_ms: u64,
    #[command(flatten)]
    history: HistoryArgs,
    #[command(flatten)]
    notes: NoteAllowance,
}

/// How many notes one client address may post: a burst, then a steady rate (`429`
/// beyond). Without a limit, 256 notes of 16 KiB push every other event out of the
/// default 4 MiB history, and every resuming client gets `history-gap`.
#[derive(Debug, Clone, Copy, clap::Args)]
struct NoteAllowance {
    /// Notes one client address may post at once.
    #[arg(long = "note-burst", env = "NOTE_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    burst: u32,
    /// Notes a second one client address may post after the burst.
    #[arg(long = "notes-per-second", env = "NOTES_PER_SECOND", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    per_second: u32,
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
    let redis = cli.redis.url.as_deref();
    // One producer across instances: the holder of the lease "sse-resume:producer".
    let (key, job) = ("sse-resume:events", "sse-resume:producer");
    let (token, ttl) = (streams.shutdown_token(), Duration::from_secs(3));
    let (log, producer) =
        sse_redis::publisher_and_producer(redis, key, hub, token, job, ttl).await?;
    let every = Duration::from_millis(cli.interval_ms);
    let producer = tokio::spawn(sse_resume::produce_ticks(
        producer,
        every,
        streams.shutdown_token(),
    ));
    // At most so many notes from one client address (`429` beyond), around the routes.
    let NoteAllowance { burst, per_second } = cli.notes;
    let app = Router::new()
        .hoop(PostLimit::per_client(burst, per_second, "notes"))
        .push(sse_resume::router(&log));
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app);
    let code = server::run(&cli.server, streams, app).await;
    // The producer stopped when the shutdown began; let it finish giving the lease back,
    // so another instance takes over now rather than when the lease runs out.
    let _ = tokio::time::timeout(Duration::from_millis(500), producer).await;
    Ok(code)
}
