mod contract;
mod redis;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use sse_redis::RedisArgs;
use sse_shared::config;
use sse_shared::hub_metrics::HubMetrics;
use sse_shared::issuers::Issuers;
use sse_shared::secret::random_token;
use sse_shared::server::{self, MainResult};
use sse_shared::{HistoryArgs, Hub, ServerArgs, Streams};
use sse_topics::auth::{DETAIL_TYPE, MIN_SECRET_BYTES, sign, unix_now};
use sse_topics::subscriptions::{ActiveSubscriptions, Registry};
use sse_topics::{HUB_PATH, HubArgs, SetupError, TopicHub};
use url::Url;

/// A topic hub over SSE that speaks the Mercure protocol.
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
    hub: HubArgs,
    /// The HS256 key tokens are signed with (at least 32 bytes). Without it, a random
    /// one is made and a token granting everything for an hour is printed, to try the
    /// hub out.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

// jemalloc, with its background thread, as the allocator: after a wave of clients has
// gone, it gives the freed memory back to the system within seconds, where glibc's
// malloc keeps it (RELIABILITY.md, "Memory after waves").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    sse_shared::logging::init_tracing();
    let cli: Cli = config::read_options(Cli::command());
    if let Err(e) = check_audience_pinned(&cli) {
        e.exit();
    }
    server::exit_code(run(cli).await)
}

/// With a secret of one's own, the hub must know which tokens are its own: without
/// `--public-url`, `--hub-url` or `--jwt-audience`, the audience follows the request's
/// `Host`, so a token another hub sharing the secret issued would be accepted by naming
/// that hub in `Host`. (A secret the hub made itself is shared with no other hub.)
fn check_audience_pinned(cli: &Cli) -> Result<(), clap::Error> {
    let hub = &cli.hub;
    let pinned = hub.hub_url.is_some() || !hub.public_urls.is_empty() || hub.jwt_audience.is_some();
    if cli.jwt_secret.is_none() || pinned {
        return Ok(());
    }
    let message = "with --jwt-secret, say which hub its tokens are for: --public-url (the origins this hub answers on), --hub-url or --jwt-audience; else a token of any hub sharing the secret is accepted here by naming that hub in Host";
    Err(Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message))
}

async fn run(cli: Cli) -> MainResult {
    let streams = Streams::from_args(&cli.server);
    let hub = Hub::with_observer(
        cli.history.limits(),
        HubMetrics::register(streams.metrics()),
    );
    let (secret, made) = match cli.jwt_secret {
        Some(secret) => (secret.into_bytes(), false),
        None => (random_token().into_bytes(), true),
    };
    // With --redis, updates go through a Redis stream that feeds every instance's hub,
    // and (with --subscriptions) the active subscriptions are kept in Redis for every
    // instance to list.
    if cli.hub.compat() {
        tracing::warn!(
            "--protocol-compat 8: Mercure 0.x apps are accepted: topic= selectors (URI templates, each a regular expression run on every update's topics), lastEventID, tokens without typ, aud or exp granting through the mercure claim, and tokens in the authorization query parameter (a credential in a URL) and the mercureAuthorization cookie"
        );
    }
    let redis = cli.redis.url.as_deref();
    let (stream, token) = ("sse-topics:updates", streams.shutdown_token());
    let log = sse_redis::publisher(redis, stream, hub.clone(), token.clone()).await?;
    let registry: Arc<dyn Registry> = match redis.filter(|_| cli.hub.subscriptions) {
        None => Arc::new(ActiveSubscriptions::new(log.clone())),
        Some(url) => redis::registry(url, stream, &hub, token).await?,
    };
    // Who issues tokens: the secret, and the issuers with keys of their own (their JWKS
    // fetched now: a URL that does not answer is a start-up error).
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SetupError::SecretTooShort.into());
    }
    let refresh = Duration::from_secs(cli.hub.jwks_refresh_secs);
    let issuers = Issuers::from_args(&cli.hub.jwt_issuers, Some(&secret), refresh).await?;
    let topics = TopicHub::with_issuers(log, cli.hub, issuers, registry)?;
    let app = sse_topics::router(&topics);
    // `GET /openapi.json`, describing the routes.
    let app = contract::serve(app, &topics.settings().cookie_name);
    // Without --jwt-secret, once the port is known: a token to try the hub out with.
    let try_out = made.then(|| (secret, topics.settings().clone()));
    let print_token = |scheme: &str, addr: SocketAddr| {
        if let Some((secret, hub)) = try_out {
            let audience = try_out_audience(&hub, scheme, addr.port());
            match try_out_token(&secret, &audience, &hub) {
                Ok(token) => eprintln!(
                    "no --jwt-secret: a random one is used; this token grants everything for an hour at {audience}:\n{token}"
                ),
                Err(e) => eprintln!("cannot make a token to try the hub out with: {e}"),
            }
        }
    };
    Ok(server::run_then(&cli.server, streams, app, print_token).await)
}

/// The audience of the token printed to try the hub out: `--jwt-audience`, `--hub-url`,
/// the first `--public-url`, else the hub as `SCHEME://localhost:PORT` reaches it.
fn try_out_audience(hub: &HubArgs, scheme: &str, port: u16) -> String {
    let local = || format!("{scheme}://localhost:{port}{HUB_PATH}");
    let public = hub
        .public_urls
        .first()
        .and_then(|url| url.join(HUB_PATH).ok());
    let pinned = hub.hub_url.as_ref().or(public.as_ref()).map(Url::to_string);
    hub.jwt_audience.clone().or(pinned).unwrap_or_else(local)
}

/// An access token granting publish and subscribe on every topic until an hour from
/// now, with `audience` and the issuer the hub checks.
fn try_out_token(
    secret: &[u8],
    audience: &str,
    hub: &HubArgs,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut claims = serde_json::json!({
        "exp": unix_now() + 3600,
        "aud": audience,
        "authorization_details": [{
            "type": DETAIL_TYPE,
            "actions": ["publish", "subscribe"],
            "topics": [{"match": "*"}],
        }],
    });
    // The first issuer checked with the secret, if it has a name.
    if let Some(issuer) = hub.jwt_issuers.iter().find(|arg| arg.keys.is_none()) {
        claims["iss"] = issuer.name.as_str().into();
    }
    sign(secret, &claims)
}
