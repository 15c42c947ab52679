//! # sse-topics: a topic hub that speaks Mercure
//!
//! `GET /.well-known/mercure?match=..&match_urlpattern=..` subscribes to every update
//! whose topics match any of the matchers (exact, WHATWG URL patterns, or `*`);
//! `POST /.well-known/mercure` (a form: `topic`, `data`, `private`, `id`, `type`,
//! `retry`) publishes, with a token that grants `publish` on every topic. An update
//! marked `private` reaches only subscribers whose token grants `subscribe` on one of
//! its topics, live or replayed. The protocol is Mercure's (`spec/mercure.md` in the
//! dunglas/mercure repository), so its clients work with this hub as they are.
//!
//! Read top-down: the router and the hub's state here, then one file per part of the
//! protocol, as Mercure's own hub has them:
//!
//! - `subscribe.rs`: `GET /.well-known/mercure`, what each subscriber reads;
//! - `publish.rs`: `POST /.well-known/mercure`, what an update may hold;
//! - `discovery.rs`: `Link: rel="mercure"` and the hub's metadata;
//! - `refusal.rs`: the errors, with their `WWW-Authenticate` challenges;
//! - [`auth`]: tokens; [`matcher`]: topics and URL patterns; [`subscriptions`]: the
//!   announcements and the subscriptions API (`--subscriptions`); `uri_template.rs`:
//!   Mercure 0.x's `topic=` templates (`--protocol-compat 8`; its tokens: `auth.rs`).
//!
//! `main.rs` adds the production stack and `contract.rs` (the OpenAPI document).
//! Everything else is the shared core's: one bounded history that is every
//! subscriber's queue (each subscriber a cursor and a filter).

pub mod auth;
mod discovery;
pub mod matcher;
mod publish;
mod refusal;
mod subscribe;
pub mod subscriptions;
mod uri_template;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use salvo::affix_state::inject;
use salvo::prelude::*;
use serde::{Deserialize, Serialize};
use sse_shared::error::ApiError;
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::{EventId, Hub, HubEvent};
use sse_shared::issuers::{IssuerArg, Issuers};
use sse_shared::page;
use sse_shared::publish::Publisher;
use sse_shared::stream_route::StreamRoute;
use url::Url;

use self::matcher::{MatchLimits, Matchers};
pub use self::publish::form_pairs;
pub use self::refusal::Refusal;
use self::subscriptions::{ActiveSubscriptions, Registry};

/// Where the hub is served.
pub const HUB_PATH: &str = "/.well-known/mercure";
/// What relative topics and URL patterns resolve against when `--hub-url` is unset (the
/// hub's URL then differs from request to request; `.invalid` names no real host, RFC
/// 6761). Relative matches relative; a relative pattern meets an absolute topic only
/// under a pinned `--hub-url`, as in Mercure.
pub const FALLBACK_BASE: &str = "http://hub.invalid/.well-known/mercure";
/// The largest publish request body, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The most topics one update may carry.
pub const MAX_TOPICS: usize = 100;
/// The longest topic, id or type, in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

const FILES: [(&str, &str); 2] = [
    ("topics.css", include_str!("../static/topics.css")),
    ("topics.js", include_str!("../static/topics.js")),
];

/// The routes: the hub (`GET` subscribes, `POST` publishes), a sample resource that
/// advertises it (`GET /books/{id}`), and the page. The hub is in every handler's
/// `Depot`. (`#[endpoint]` describes a route for OpenAPI; `main.rs` serves the
/// description, see `contract.rs`.)
pub fn router(hub: &Arc<TopicHub>) -> Router {
    let mut mercure = Router::with_path(".well-known/mercure")
        .hoop(hub.token_hoop())
        // The subscription is an event stream; the subscriptions API below is not.
        .push(Router::new().hoop(StreamRoute).get(subscribe::subscribe))
        .post(publish::publish);
    if hub.settings.subscriptions {
        let api = Router::with_path("subscriptions")
            .get(subscriptions::api)
            .push(Router::with_path("{**rest}").get(subscriptions::api));
        mercure = mercure.push(api);
    }
    let page = page::routes("SSE topics", include_str!("../static/index.html"), &FILES);
    Router::new()
        .hoop(inject(Arc::clone(hub)))
        .hoop(discovery::locate)
        .hoop(discovery::advertise)
        .push(mercure)
        .push(Router::with_path("books/{id}").get(discovery::book))
        .push(
            Router::with_path(".well-known/oauth-protected-resource/.well-known/mercure")
                .get(discovery::resource_metadata),
        )
        .push(page)
}

/// The hub, which [`router`] puts in the `Depot`.
fn state(depot: &Depot) -> Result<Arc<TopicHub>, ApiError> {
    let hub = depot.get_typed::<Arc<TopicHub>>().cloned();
    hub.map_err(|_| ApiError::internal("The hub is not set up."))
}

/// The hub: its history, its matchers, and who may subscribe.
pub struct TopicHub {
    log: Publisher<Update>,
    matchers: Arc<Matchers>,
    settings: HubArgs,
    issuers: Issuers,
    registry: Arc<dyn Registry>,
    /// What the open subscriptions of each client address weigh ([`matcher::Matcher::weight`]).
    weights: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl TopicHub {
    /// A hub publishing through `log`, its tokens checked with `secret` (at least
    /// [`auth::MIN_SECRET_BYTES`]), its active subscriptions kept in this process.
    /// Issuers with keys of their own (`NAME=pem:...`) need [`TopicHub::with_issuers`].
    pub fn new(
        log: Publisher<Update>,
        settings: HubArgs,
        secret: &[u8],
    ) -> Result<Arc<Self>, SetupError> {
        if secret.len() < auth::MIN_SECRET_BYTES {
            return Err(SetupError::SecretTooShort);
        }
        let args = &settings.jwt_issuers;
        if let Some(arg) = args.iter().find(|arg| arg.keys.is_some()) {
            return Err(SetupError::IssuerKeys(arg.name.clone()));
        }
        let issuers = Issuers::default().with_secret_for(args, secret);
        let registry = Arc::new(ActiveSubscriptions::new(log.clone()));
        Self::with_issuers(log, settings, issuers, registry)
    }

    /// A hub whose tokens are checked by `issuers` (see [`Issuers::from_args`]), its
    /// active subscriptions kept in `registry`.
    pub fn with_issuers(
        log: Publisher<Update>,
        settings: HubArgs,
        issuers: Issuers,
        registry: Arc<dyn Registry>,
    ) -> Result<Arc<Self>, SetupError> {
        let base = match &settings.hub_url {
            Some(url) => url.clone(),
            None => Url::parse(FALLBACK_BASE)?,
        };
        let matchers = Arc::new(Matchers::new(base, settings.limits));
        Ok(Arc::new(Self {
            log,
            matchers,
            settings,
            issuers,
            registry,
            weights: Arc::default(),
        }))
    }

    /// The hub's options.
    pub fn settings(&self) -> &HubArgs {
        &self.settings
    }

    /// The updates' history.
    pub fn hub(&self) -> &Hub<Update> {
        self.log.hub()
    }

    /// What relative topics and URL patterns resolve against: `--hub-url`, else
    /// [`FALLBACK_BASE`].
    pub fn base(&self) -> &Url {
        self.matchers.base()
    }

    fn token_hoop(&self) -> salvo::jwt_auth::JwtAuth<auth::Claims, auth::TokenDecoder> {
        let settings = &self.settings;
        auth::hoop(
            self.issuers.clone(),
            &settings.cookie_name,
            settings.compat(),
        )
    }
}

/// One update: its topics (the first is canonical), its data, and how it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub topics: Vec<String>,
    pub data: String,
    pub private: bool,
    /// The publisher's id, if it gave one; else the hub's (see [`Update::shown_id`]).
    pub id: Option<String>,
    /// The SSE `event` name.
    pub event_type: Option<String>,
    /// The SSE `retry`, in milliseconds.
    pub retry: Option<u64>,
}

impl HubEvent for Update {
    /// The id clients see: the publisher's, or `#` and the hub's own (a fragment, as
    /// Mercure asks of hub-made ids; a publisher's id may not start with `#`, so the
    /// two never meet).
    fn shown_id(&self, id: EventId) -> String {
        match &self.id {
            Some(own) => own.clone(),
            None => format!("#{id}"),
        }
    }

    /// Announcements of subscriptions (`mercure`, which publishers may not use) are
    /// kept apart: a visitor who opens and closes streams makes them, and they must not
    /// evict the updates clients resume from.
    fn kept_apart(&self) -> bool {
        self.event_type.as_deref() == Some("mercure")
    }

    /// Its topics: a subscriber of exact topics is woken by the updates naming one.
    fn wake_keys(&self, key: &mut dyn FnMut(&str)) {
        for topic in &self.topics {
            key(topic);
        }
    }

    /// Its topics: up to 100 of 2 KB each that no client is sent, but the history holds.
    fn held_bytes(&self) -> usize {
        self.topics.iter().map(String::len).sum()
    }

    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        let mut frame = Frame::new().id(&self.shown_id(id))?;
        if let Some(event_type) = &self.event_type {
            frame = frame.event(event_type)?;
        }
        if let Some(retry) = self.retry {
            frame = frame.retry(retry);
        }
        // One `data:` line per line of the data (CR, LF and CRLF each end one).
        Ok(frame.data(&self.data).finish())
    }
}

/// The hub's own options.
#[derive(Debug, Clone, clap::Args)]
pub struct HubArgs {
    /// The hub's public URL, pinned: where resources say the hub is (`Link:
    /// rel="mercure"`), what tokens' `aud` must name (unless `--jwt-audience`), and the
    /// base of relative topics and URL patterns. Unset, it follows each request, as
    /// Mercure 1.0 does: its scheme and `Host`, then `/.well-known/mercure` (see
    /// `discovery.rs`), and relative topics resolve against `http://hub.invalid/.well-known/mercure`.
    #[arg(long, env = "HUB_URL")]
    pub hub_url: Option<Url>,
    /// The origins the hub answers on (`scheme://host[:port]`; repeat the option or
    /// separate with commas): a request for any other origin gets `421 Misdirected
    /// Request`. Set it when the hub's URL follows the request and a proxy in front
    /// passes on whatever `Host` a client sends.
    #[arg(long = "public-url", env = "PUBLIC_URLS", value_delimiter = ',')]
    pub public_urls: Vec<Url>,
    /// The hub's resource identifier, which every token's `aud` must name (default:
    /// the hub's URL, `--hub-url` or as the request reached it).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Who issues the tokens, repeatable (comma-separated in the variable): `NAME`,
    /// whose tokens must say `iss: NAME` and are checked with `--jwt-secret`; or
    /// `NAME=pem:PATH` (an RSA, EC or Ed25519 public key), `NAME=jwks:URL` (an
    /// identity provider's key set, fetched at start and on an unknown `kid`) or
    /// `NAME=secret-file:PATH` (another HS256 secret), whose tokens are checked only
    /// with those keys. With none of the `NAME` form, `--jwt-secret` checks tokens
    /// naming no issuer (or none of these).
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER", value_delimiter = ',')]
    pub jwt_issuers: Vec<IssuerArg>,
    /// The least time between two fetches of an issuer's JWKS for a `kid` it lacks.
    #[arg(long, env = "JWKS_REFRESH_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub jwks_refresh_secs: u64,
    /// The cookie a browser's `EventSource` carries its token in.
    #[arg(
        long,
        env = "COOKIE_NAME",
        default_value = "__Secure-mercure_access_token"
    )]
    pub cookie_name: String,
    /// Whether subscribers without a token may subscribe (they never see private
    /// updates): `--anonymous false` requires a token of everyone.
    #[arg(long, env = "ANONYMOUS", default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous: bool,
    /// Announce every subscription (private `mercure` updates on the hub's
    /// `/subscriptions/...` topics) and serve the subscriptions API. Off by default:
    /// each subscribe and unsubscribe then takes a place in the history.
    #[arg(long, env = "SUBSCRIPTIONS")]
    pub subscriptions: bool,
    /// Accept Mercure 0.x apps too, as Mercure's hub does with
    /// `protocol_version_compatibility 8` (the only value): `topic=` selectors (`*`,
    /// exact, or RFC 6570 URI templates as 0.x matched them), `lastEventID` for
    /// `last_event_id`, `Last-Event-ID` on the response beside `Mercure-Last-Event-ID`,
    /// tokens without `typ`, `aud` or `exp` granting through the `mercure` claim, found
    /// also in the `authorization` query parameter and the `mercureAuthorization`
    /// cookie. Off by default.
    #[arg(long, env = "PROTOCOL_COMPAT", value_parser = clap::value_parser!(u8).range(8..=8))]
    pub protocol_compat: Option<u8>,
    /// What one subscription may make the hub do.
    #[command(flatten)]
    pub limits: MatchLimits,
}

impl HubArgs {
    /// Whether Mercure 0.x apps are accepted (`--protocol-compat 8`).
    pub fn compat(&self) -> bool {
        self.protocol_compat == Some(8)
    }
}

/// Why a [`TopicHub`] cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An issuer with keys of its own given to [`TopicHub::new`], which has only the
    /// secret (`main.rs` reads their keys with [`Issuers::from_args`]).
    #[error("the issuer {0:?} has keys of its own: build the hub with TopicHub::with_issuers")]
    IssuerKeys(String),
    /// The JWT secret is too short to verify HS256 tokens with.
    #[error("the JWT secret must be at least {} bytes", auth::MIN_SECRET_BYTES)]
    SecretTooShort,
    /// [`FALLBACK_BASE`] is not a URL.
    #[error("the fallback base of topics is not a URL: {0}")]
    FallbackBase(#[from] url::ParseError),
}
