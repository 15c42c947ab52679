use clap::{CommandFactory, Parser};
use std::process::ExitCode;
use std::time::Duration;

use sse_notify::session::Sessions;
use sse_redis::RedisArgs;
use sse_shared::config;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::issuers::{IssuerArg, Issuers};
use sse_shared::secret::random_token;
use sse_shared::server::{self, MainResult};
use sse_shared::{HistoryArgs, Hub, ServerArgs, Streams};

mod contract;

/// A notification service over SSE: an authenticated publish API, broadcast and
/// per-user delivery.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    redis: RedisArgs,
    /// The token `POST /notifications` needs (at least 16 characters); generated and
    /// printed when unset.
    #[arg(long, env = "NOTIFY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The secret that signs and checks session JWTs (HS256, at least 32 bytes): your
    /// app's login signs with the same one. Generated and printed when unset (sessions
    /// then end with the process).
    #[arg(long, env = "NOTIFY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// How long a session from `POST /session` lasts, in seconds (at most a day).
    #[arg(long, env = "NOTIFY_SESSION_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    session_secs: u64,
    /// Your identity provider, repeatable (comma-separated in the variable):
    /// `NAME=pem:PATH` (an RSA, EC or Ed25519 public key), `NAME=jwks:URL` (its key
    /// set, fetched at start and on an unknown `kid`) or `NAME=secret-file:PATH`; its
    /// tokens (`iss: NAME`, `sub` the user) are checked only with those keys. `NAME`
    /// alone: tokens saying `iss: NAME` signed with --jwt-secret.
    #[arg(long = "jwt-issuer", env = "NOTIFY_JWT_ISSUER", value_delimiter = ',')]
    jwt_issuers: Vec<IssuerArg>,
    /// The `aud` every token must name (an identity provider's access tokens carry
    /// one); this service's own sessions name it too. Without it, a token naming any
    /// audience is refused.
    #[arg(long, env = "NOTIFY_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// The least time between two fetches of an issuer's JWKS for a `kid` it lacks.
    #[arg(long, env = "NOTIFY_JWKS_REFRESH_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    jwks_refresh_secs: u64,
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
    // This service's keep-alive default is 30 s (the tutorial's choice), not 15.
    let command = Cli::command().mut_arg("keep_alive", |arg| arg.default_value("30"));
    server::exit_code(run(config::read_options(command)).await)
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
    let jwt_secret = cli.jwt_secret.unwrap_or_else(|| {
        let secret = random_token() + &random_token();
        eprintln!("JWT secret (generated, pass --jwt-secret to choose one): {secret}");
        secret
    });
    let tls = cli.server.tls_cert.is_some() || cli.server.tls_self_signed;
    let lifetime = Duration::from_secs(cli.session_secs);
    let sessions = Sessions::new(jwt_secret.as_bytes(), tls, lifetime)?;
    // This service's own sessions, and your identity provider's tokens (a JWKS that
    // does not answer is a start-up error).
    let refresh = Duration::from_secs(cli.jwks_refresh_secs);
    let secret = Some(jwt_secret.as_bytes());
    let issuers = Issuers::from_args(&cli.jwt_issuers, secret, refresh).await?;
    // The sessions of `POST /session` name no issuer: always checked with the secret.
    let sessions = sessions
        .accepting(issuers.with_secret(None, jwt_secret.as_bytes()))
        .for_audience(cli.jwt_audience);
    let streams = Streams::from_args(&cli.server);
    let limits = cli.history.limits();
    let hub = Hub::with_observer(limits, HubMetrics::register(streams.metrics()));
    let redis = cli.redis.url.as_deref();
    let token = streams.shutdown_token();
    let log = sse_redis::publisher(redis, "sse-notify:notifications", hub, token).await?;
    let notifier = sse_notify::Notifier::new(log, admin_token, sessions);
    let app = sse_notify::router(&notifier);
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app);
    Ok(server::run(&cli.server, streams, app).await)
}
