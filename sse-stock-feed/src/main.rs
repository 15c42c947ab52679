use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sse_shared::{HistoryLimits, ServerArgs, Streams, server};

/// One simulated market for every client: named JSON events and a live chart.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Comma-separated symbols to simulate.
    #[arg(long, env = "SYMBOLS", default_value = "AAPL,GOOGL,MSFT", value_parser = sse_stock_feed::parse_symbols)]
    symbols: sse_stock_feed::SymbolList,
    /// Milliseconds between ticks.
    #[arg(long, env = "INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    interval_ms: u64,
    /// Price events kept for replay.
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
    let market = sse_stock_feed::Market::new(cli.symbols.0, history, &streams);
    tokio::spawn(market.clone().run(
        Duration::from_millis(cli.interval_ms),
        streams.shutdown_token(),
    ));
    let app = sse_stock_feed::router(&streams, &market);
    server::run(&cli.server, streams, app).await
}
