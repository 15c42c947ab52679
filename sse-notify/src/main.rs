use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use sse_notify::session::SessionKey;
use sse_shared::secret::random_token;
use sse_shared::server::{self, MainResult};
use sse_shared::{EventLog, HistoryArgs, Hub, RedisArgs, ServerArgs, Streams};

/// A notification service over SSE: an authenticated publish API, broadcast and
/// per-user delivery.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
    /// The token `POST /notifications` needs; generated and printed when unset.
    #[arg(long, env = "NOTIFY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The key that signs session cookies; generated when unset (sessions then end
    /// with the process).
    #[arg(long, env = "NOTIFY_SESSION_KEY", hide_env_values = true)]
    session_key: Option<String>,
    #[command(flatten)]
    history: HistoryArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    sse_shared::config::init_tracing();
    // This service's keep-alive default is 30 s (the tutorial's choice), not 15.
    let matches = Cli::command()
        .mut_arg("keep_alive_secs", |arg| arg.default_value("30"))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    server::exit_code(run(cli).await)
}

async fn run(cli: Cli) -> MainResult {
    let admin_token = cli.admin_token.unwrap_or_else(|| {
        let token = random_token();
        eprintln!("admin token (generated, pass --admin-token to choose one): {token}");
        token
    });
    if admin_token.len() < 16 {
        return Err("the admin token must be at least 16 characters".into());
    }
    let session_key = SessionKey::new(cli.session_key.unwrap_or_else(random_token));
    let streams = Streams::from_args(&cli.server);
    let limits = cli.history.limits();
    let hub = Hub::new(limits, streams.metrics().clone());
    let redis = cli.redis.url.as_deref();
    let log = EventLog::open(
        redis,
        "sse-notify:notifications",
        hub,
        streams.shutdown_token(),
    )
    .await?;
    let notifier = sse_notify::Notifier::new(log, admin_token, session_key);
    let app = sse_notify::router(&streams, &notifier);
    Ok(server::run(&cli.server, streams, app).await)
}
