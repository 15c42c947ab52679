use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use sse_redis::RedisArgs;
use sse_shared::config;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::server::{self, MainResult};
use sse_shared::{HistoryArgs, Hub, ServerArgs, Streams};

mod contract;

/// One simulated market for every client: named JSON events and a live chart.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
    /// Comma-separated symbols to simulate.
    #[arg(long, env = "SYMBOLS", default_value = "AAPL,GOOGL,MSFT", value_parser = sse_stock_feed::parse_symbols)]
    symbols: sse_stock_feed::SymbolList,
    /// Milliseconds between ticks.
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    interval_ms: u64,
    #[command(flatten)]
    history: HistoryArgs,
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
    // At least two ticks' worth, so the history always holds every symbol's last price.
    let mut limits = cli.history.limits();
    limits.max_events = limits.max_events.max(2 * cli.symbols.0.len());
    let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
    let redis = cli.redis.url.as_deref();
    let token = streams.shutdown_token();
    // One simulator across instances: the holder of the lease "sse-stock-feed:simulator".
    let (key, job) = ("sse-stock-feed:prices", "sse-stock-feed:simulator");
    let ttl = Duration::from_secs(3);
    let (log, producer) =
        sse_redis::publisher_and_producer(redis, key, hub, token, job, ttl).await?;
    let market = sse_stock_feed::Market::new(cli.symbols.0, log);
    let every = Duration::from_millis(cli.interval_ms);
    let simulator = tokio::spawn(
        market
            .clone()
            .run(producer, every, streams.shutdown_token()),
    );
    let app = sse_stock_feed::router(&market);
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app);
    let code = server::run(&cli.server, streams, app).await;
    // The simulator stopped when the shutdown began; let it finish giving the lease
    // back, so another instance takes over now rather than when the lease runs out.
    let _ = tokio::time::timeout(Duration::from_millis(500), simulator).await;
    Ok(code)
}
