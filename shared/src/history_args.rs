//! The options of a hub's history, `--history` and `--history-bytes` (with `HISTORY`
//! and `HISTORY_BYTES` from the environment), for an example's command line.
//!
//! ```
//! use clap::Parser;
//! use sse_shared::history_args::HistoryArgs;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     history: HistoryArgs,
//! }
//!
//! let cli = Cli::parse_from(["app", "--history", "50"]);
//! assert_eq!(cli.history.limits().max_events, 50);
//! assert_eq!(cli.history.limits().max_bytes, 4 * 1024 * 1024);
//! ```

use crate::hub::HistoryLimits;

/// How much history an example keeps for replay (`--history`, `--history-bytes`).
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    /// Events kept for replay (at most ten million: Redis caps a stream by a signed
    /// 64-bit count, and the bytes bound below binds long before).
    #[arg(long = "history", env = "HISTORY", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub events: u64,
    /// Bytes of events kept for replay (64 KiB to 64 GiB).
    #[arg(long = "history-bytes", env = "HISTORY_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(64 * 1024..=64 << 30))]
    pub bytes: u64,
}

impl HistoryArgs {
    /// The hub's bounds these options describe.
    pub fn limits(&self) -> HistoryLimits {
        HistoryLimits {
            max_events: usize::try_from(self.events).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(self.bytes).unwrap_or(usize::MAX),
        }
    }
}
