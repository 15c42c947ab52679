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
//! Read top-down: the router, the two handlers, the hub, the update type. Matchers are
//! in [`matcher`], tokens in [`auth`]. Everything else is the shared core's: one
//! bounded history that is every subscriber's queue (each subscriber a cursor and a
//! filter), admission, the drain, metrics, JSON errors.

pub mod auth;
pub mod matcher;
pub mod subscriptions;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use percent_encoding::percent_decode_str;
use salvo::affix_state::inject;
use salvo::http::StatusCode;
use salvo::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue};
use salvo::prelude::*;
use salvo_oapi::schema::Object;
use salvo_oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use salvo_oapi::{
    BasicType, Components, EndpointOutRegister, OpenApi, Operation, Parameter, ParameterIn,
    Required, ToSchema, endpoint,
};
use serde::{Deserialize, Serialize};
use sse_shared::address::StreamClient;
use sse_shared::body;
use sse_shared::error::ApiError;
use sse_shared::event_stream;
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::{EventId, Hub, HubEvent, Start};
use sse_shared::matching::Matching;
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::page;
use sse_shared::publish::Publisher;
use sse_shared::resume::{Reset, ResetReason};
use sse_shared::secret::bearer_token;
use sse_shared::snapshot::find_oldest;
use sse_shared::stream_route::{StreamRoute, StreamSettings};
use url::Url;

use self::auth::{Grants, Token};
use self::matcher::{
    MatchLimits, MatchType, MatcherError, Matchers, Selection, Selector, is_clean,
};
use self::subscriptions::{ActiveSubscriptions, Registry, Subscription};

/// Where the hub is served.
pub const HUB_PATH: &str = "/.well-known/mercure";
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
/// advertises it (`GET /books/{id}`), the page, and `GET /openapi.json`. The hub is in
/// every handler's `Depot`.
pub fn router(hub: &Arc<TopicHub>) -> Router {
    let mut mercure = Router::with_path(".well-known/mercure")
        .hoop(hub.token_hoop())
        // The subscription is an event stream; the subscriptions API below is not.
        .push(Router::new().hoop(StreamRoute).get(subscribe))
        .post(publish);
    if hub.settings.subscriptions {
        let api = Router::with_path("subscriptions")
            .get(subscriptions::api)
            .push(Router::with_path("{**rest}").get(subscriptions::api));
        mercure = mercure.push(api);
    }
    let page = page::routes("SSE topics", include_str!("../static/index.html"), &FILES);
    let router = Router::new()
        .hoop(inject(Arc::clone(hub)))
        .hoop(advertise)
        .push(mercure)
        .push(Router::with_path("books/{id}").get(book))
        .push(
            Router::with_path(".well-known/oauth-protected-resource/.well-known/mercure")
                .get(resource_metadata),
        )
        .push(page);
    let doc = document(&hub.settings.cookie_name);
    let doc = subscription_paths(openapi::document(doc, &router, &[updates_doc()]));
    router.push(doc.into_router(openapi::PATH))
}

/// The subscriptions API's deeper paths as Mercure names them. The router serves them
/// with one catch-all (`{**rest}`), since a pattern is one percent-encoded segment that
/// may hold `%2F`; the handler splits the raw path itself.
fn subscription_paths(mut doc: OpenApi) -> OpenApi {
    let Some(any) = doc
        .paths
        .remove(&format!("{HUB_PATH}/subscriptions/{{**rest}}"))
    else {
        return doc;
    };
    let param = |name: &str, description: &str| {
        let text = Object::new().schema_type(BasicType::String);
        Parameter::new(name)
            .location(ParameterIn::Path)
            .required(Required::True)
            .description(description)
            .schema(text)
    };
    let match_type = param("match_type", "`exact` or `urlpattern`.");
    let pattern = param(
        "match",
        "The matcher's pattern, percent-encoded as one segment.",
    );
    let subscriber = param(
        "subscriber",
        "The subscriber's `urn:uuid:`, percent-encoded.",
    );
    let deeper = [
        (
            "{match_type}/{match}",
            "matcher_subscriptions",
            vec![match_type.clone(), pattern.clone()],
        ),
        (
            "{match_type}/{match}/{subscriber}",
            "subscription",
            vec![match_type, pattern, subscriber],
        ),
    ];
    for (suffix, id, params) in deeper {
        let mut item = any.clone();
        for operation in item.operations.values_mut() {
            operation.operation_id = Some(id.to_owned());
            for param in &params {
                operation.parameters.insert(param.clone());
            }
        }
        doc.paths
            .insert(format!("{HUB_PATH}/subscriptions/{suffix}"), item);
    }
    doc
}

/// The OpenAPI document's own parts: how a token is presented.
fn document(cookie_name: &str) -> OpenApi {
    let bearer = Http::new(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(
            "A JWT whose `mercure` claim grants `publish` / `subscribe` (Mercure's Authorization).",
        );
    let cookie =
        ApiKeyValue::with_description(cookie_name, "The same JWT in a cookie (for EventSource).");
    OpenApi::new("sse-topics", env!("CARGO_PKG_VERSION"))
        .add_security_scheme("bearer", SecurityScheme::Http(bearer))
        .add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)))
}

/// What `GET /.well-known/mercure` sends, for the OpenAPI document.
fn updates_doc() -> StreamDoc {
    StreamDoc {
        path: HUB_PATH,
        ids: Some((
            "The publisher's id if it gave one, else `#` and the hub's MS-N; send it back as Last-Event-ID (or last_event_id) to resume after it.",
            "",
        )),
        events: vec![
            EventDoc::any_name_but(
                &["mercure", "reset"],
                "An update: `event` is its `type` (none: unnamed), `data` its data, as published.",
            ),
            EventDoc::json::<Subscription>(
                Some("mercure"),
                "With --subscriptions, to tokens that may read it: a subscription began (`active: true`) or ended.",
            ),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The id sent back names no retained update: everything retained follows.",
            ),
        ],
    }
}

/// The updates whose topics match any of the request's matchers (and, when private,
/// that its token may read), from `Last-Event-ID` (or `last_event_id`) or from now.
#[endpoint(
    status_codes(200, 400, 401, 403, 429, 503),
    parameters(
        ("match" = Option<Vec<String>>, Query, description = "A topic, exactly (`*`: every topic). Repeatable, as are the others: an update matching any is sent."),
        ("match_exact" = Option<Vec<String>>, Query, description = "The same as `match`."),
        ("match_urlpattern" = Option<Vec<String>>, Query, description = "A WHATWG URL Pattern, e.g. `https://example.com/books/:id`."),
        ("last-event-id" = Option<String>, Header, description = "The last id seen: the updates after it (or `earliest`: all retained)."),
        ("last_event_id" = Option<String>, Query, description = "The same, for a client that cannot send the header (the header wins).")
    ),
    security((), ("bearer" = []), ("cookie" = []))
)]
async fn subscribe(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), Refusal> {
    let (settings, hub) = state(depot)?;
    refuse_malformed_presentation(req, &hub.settings.cookie_name)?;
    // Before the token and admission only the query's text is read: nothing is
    // compiled, cached or scanned for a request that is then refused.
    let query = form_pairs(req.uri().query().unwrap_or_default())?;
    let (wanted, query_cursor) = hub.subscription(&query)?;
    let (grants, exp) = match auth::token(depot, &hub.matchers).await {
        Token::Valid { grants, exp } => (Some(grants), Some(exp)),
        Token::None if hub.settings.anonymous => (None, None),
        Token::None => return Err(Refusal::bearer(None, "This hub needs an access token.")),
        Token::Invalid => return Err(invalid_token()),
    };
    let matchers = hub.matchers.compile_off_workers(wanted).await;
    let routing = Selection::new(matchers.map_err(matcher_refused)?);
    // What its patterns cost to match, held for its client while the stream lives.
    let weight = routing.matchers().iter().map(|m| m.weight).sum();
    let client = depot.get_typed::<StreamClient>().ok().and_then(|c| c.0);
    let held = hub.hold_weight(client, weight)?;
    // The header wins over the query parameter.
    let header = req.headers().get("last-event-id").map(|v| v.to_str());
    let cursor = match header {
        Some(Ok(id)) => Some(id.to_owned()),
        Some(Err(_)) => Some(String::new()), // not text: an id of nothing here
        None => query_cursor,
    };
    let resume = cursor.map(|id| hub.resume_after(&id));
    let start = resume.as_ref().map_or(Start::Live, |r| r.start.clone());

    let announced_matchers = hub
        .settings
        .subscriptions
        .then(|| routing.matchers().to_vec());
    let announced_grants = grants.clone();
    let filter = UpdateFilter { grants, routing };
    let mut subscription = hub.hub().subscribe_matching(start, filter);
    if let Some(resume) = resume {
        let value = HeaderValue::from_str(&resume.preceding);
        if let Ok(value) = value {
            res.headers_mut().insert("mercure-last-event-id", value);
        }
        if let Some(reset) = resume.reset {
            subscription = subscription.send_first(reset);
        }
    }
    let frames = subscription.into_stream();
    // With --subscriptions, its matchers are announced now, and their end when the
    // stream ends (the guard lives as long as the stream).
    let announced = match announced_matchers {
        Some(matchers) => {
            Some(subscriptions::enter(&hub, &matchers, announced_grants.as_deref()).await)
        }
        None => None,
    };
    let frames = event_stream::with_guard(frames, (announced, held));
    // With a token, the stream ends at its `exp`: the client comes back with a new one.
    let until = exp.map(|exp| exp.saturating_sub(auth::unix_now()));
    let end = tokio::time::sleep(until.map_or(Duration::MAX, Duration::from_secs));
    event_stream::respond(res, &settings, frames.take_until(end));
    Ok(())
}

/// What one subscriber reads: the updates its matchers select, private ones only if
/// its token grants one of their topics. Privacy first: a private update is never
/// matched against the routing of a subscriber who may not read it (nor remembered
/// for it). What takes evaluating a pattern's expressions the hub asks off its workers.
struct UpdateFilter {
    grants: Option<Arc<Grants>>,
    routing: Selection,
}

impl Matching<Update> for UpdateFilter {
    fn quick(&self, update: &Update) -> Option<bool> {
        if update.private {
            let grants = self
                .grants
                .as_ref()
                .map(|g| g.subscribe.quick_any(&update.topics));
            if !grants.unwrap_or(Some(false))? {
                return Some(false);
            }
        }
        self.routing.quick_any(&update.topics)
    }

    fn test(&self, update: &Update) -> bool {
        let readable = !update.private
            || self
                .grants
                .as_ref()
                .is_some_and(|g| g.may_read(&update.topics));
        readable && self.routing.matches_any(&update.topics)
    }
}

/// The fields of `POST /.well-known/mercure`'s form, for the OpenAPI document (the
/// handler reads them with [`form_pairs`]: `topic` repeats).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct UpdateForm {
    /// One or more (repeat the field): the first is canonical.
    topic: Vec<String>,
    /// The update's data (empty when absent).
    data: Option<String>,
    /// Present (any value): only subscribers whose token grants one of its topics get it.
    private: Option<String>,
    /// The update's id (the hub makes one when absent).
    id: Option<String>,
    /// The SSE event name.
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// The SSE `retry`, in milliseconds.
    retry: Option<u64>,
}

/// Publishes the form's update, answering its id as text.
#[endpoint(
    request_body(content = UpdateForm, content_type = "application/x-www-form-urlencoded"),
    status_codes(200, 400, 401, 403, 408, 413, 415, 503),
    responses((status_code = 200, description = "Published: the update's id.", body = String, content_type = "text/plain")),
    security(("bearer" = []), ("cookie" = []))
)]
async fn publish(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), Refusal> {
    let (_, hub) = state(depot)?;
    let form = req
        .content_type()
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded");
    if !form {
        let message = "Publish with an application/x-www-form-urlencoded body.";
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(ApiError::new(status, "unsupported-media-type", message).into());
    }
    refuse_malformed_presentation(req, &hub.settings.cookie_name)?;
    let grants = match auth::token(depot, &hub.matchers).await {
        Token::Valid { grants, .. } => grants,
        Token::None => return Err(Refusal::bearer(None, "Publishing needs an access token.")),
        Token::Invalid => return Err(invalid_token()),
    };
    let body = body::text(req, depot, MAX_BODY_BYTES).await?;
    let update = hub.update(&form_pairs(&body)?)?;
    if !update.topics.iter().all(|topic| grants.may_publish(topic)) {
        let message = "The token does not grant publish on every topic of this update.";
        return Err(Refusal::bearer(Some("insufficient_scope"), message));
    }
    let own_id = update.id.clone();
    let id = hub.log.publish(update).await.map_err(ApiError::from)?;
    let shown = own_id.unwrap_or_else(|| format!("#{id}"));
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let _ = res.write_body(shown);
    Ok(())
}

/// A resource whose updates the hub carries, advertising the hub (`Link:
/// rel="mercure"`, added by [`advertise`]) and its own topic (`rel="self"`).
#[endpoint(parameters(("id" = u32, Path, description = "Any number.")))]
async fn book(req: &mut Request, res: &mut Response) -> Json<Book> {
    let id = req.param::<u32>("id").unwrap_or(1);
    let topic = format!("/books/{id}");
    if let Ok(link) = HeaderValue::from_str(&format!("<{topic}>; rel=\"self\"")) {
        res.headers_mut().append("link", link);
    }
    let title = format!("Book {id}");
    Json(Book { id: topic, title })
}

/// A sample resource (JSON-LD).
#[derive(Serialize, ToSchema)]
struct Book {
    /// Its topic.
    #[serde(rename = "@id")]
    id: String,
    title: String,
}

/// A hoop that advertises the hub: `Link: <hub>; rel="mercure"` on the page and every
/// resource (Mercure's discovery; the subscriptions API sets its own, with the cursor),
/// and where its metadata is in every `WWW-Authenticate: Bearer` challenge (RFC 9728).
#[handler]
async fn advertise(req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
    let hub = depot.get_typed::<Arc<TopicHub>>().ok().cloned();
    ctrl.call_next(req, depot, res).await;
    let Some(hub) = hub else { return };
    let headers = res.headers_mut();
    if let Some(challenge) = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
    {
        let params = challenge
            .strip_prefix("Bearer")
            .unwrap_or_default()
            .trim_start();
        let metadata = format!("resource_metadata=\"{}\"", hub.metadata_url());
        let challenge = match params {
            "" => format!("Bearer {metadata}"),
            params => format!("Bearer {params}, {metadata}"),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert("www-authenticate", value);
        }
    }
    let stream = headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mercure = |v: &HeaderValue| v.to_str().is_ok_and(|v| v.contains("rel=\"mercure\""));
    let linked = headers.get_all("link").iter().any(mercure);
    let link = HeaderValue::from_str(&format!("<{}>; rel=\"mercure\"", hub.url()));
    if let (Ok(link), false, false) = (link, stream, linked) {
        headers.append("link", link);
    }
}

/// The hub's protected resource metadata (RFC 9728, as Mercure's Discovery section
/// describes it).
#[endpoint]
async fn resource_metadata(depot: &mut Depot) -> Result<Json<ResourceMetadata>, ApiError> {
    let (_, hub) = state(depot)?;
    let settings = &hub.settings;
    let resource = hub.audience();
    Ok(Json(ResourceMetadata {
        resource,
        authorization_details_types_supported: [auth::DETAIL_TYPE],
        bearer_methods_supported: ["header"],
        mercure_cookie: settings.cookie_name.clone(),
        mercure_subscriptions: settings.subscriptions.then_some(true),
    }))
}

/// RFC 9728 protected resource metadata, with Mercure's fields.
#[derive(Serialize, ToSchema)]
struct ResourceMetadata {
    /// The hub's URL (or the configured JWT audience).
    resource: String,
    authorization_details_types_supported: [&'static str; 1],
    bearer_methods_supported: [&'static str; 1],
    /// The cookie a token may come in.
    mercure_cookie: String,
    /// `true` when the subscriptions API is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    mercure_subscriptions: Option<bool>,
}

/// How streams talk to their clients, and the hub, from the `Depot`.
fn state(depot: &Depot) -> Result<(StreamSettings, Arc<TopicHub>), ApiError> {
    let internal = || {
        let message = "The hub is not set up.";
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    };
    let settings = depot
        .get_typed::<StreamSettings>()
        .map_err(|_| internal())?;
    let hub = depot.get_typed::<Arc<TopicHub>>().map_err(|_| internal())?;
    Ok((*settings, Arc::clone(hub)))
}

/// The hub: its history, its matchers, and who may subscribe.
pub struct TopicHub {
    log: Publisher<Update>,
    matchers: Arc<Matchers>,
    settings: HubArgs,
    secret: Vec<u8>,
    registry: Arc<dyn Registry>,
    /// What the open subscriptions of each client address weigh ([`Matcher::weight`]).
    weights: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A subscription's weight, held for its client until its stream ends.
struct HeldWeight {
    weights: Arc<Mutex<HashMap<IpAddr, usize>>>,
    client: IpAddr,
    weight: usize,
}

impl Drop for HeldWeight {
    fn drop(&mut self) {
        let mut weights = self.weights.lock();
        if let Some(held) = weights.get_mut(&self.client) {
            *held = held.saturating_sub(self.weight);
            if *held == 0 {
                weights.remove(&self.client);
            }
        }
    }
}

/// Where a subscription resumes, and what it says about that.
struct Resume {
    start: Start,
    /// The `Mercure-Last-Event-ID` to answer: the id the stream goes on after, or
    /// `earliest`.
    preceding: String,
    /// The family's `event: reset`, sent first when the id names no retained update.
    reset: Option<Bytes>,
}

impl TopicHub {
    /// A hub publishing through `log`, its tokens checked with `secret` (at least
    /// [`auth::MIN_SECRET_BYTES`]), its active subscriptions kept in this process.
    pub fn new(
        log: Publisher<Update>,
        settings: HubArgs,
        secret: &[u8],
    ) -> Result<Arc<Self>, SecretTooShort> {
        let registry = Arc::new(ActiveSubscriptions::new(log.clone()));
        Self::with_registry(log, settings, secret, registry)
    }

    /// [`TopicHub::new`] with the active subscriptions kept in `registry`.
    pub fn with_registry(
        log: Publisher<Update>,
        settings: HubArgs,
        secret: &[u8],
        registry: Arc<dyn Registry>,
    ) -> Result<Arc<Self>, SecretTooShort> {
        if secret.len() < auth::MIN_SECRET_BYTES {
            return Err(SecretTooShort);
        }
        let matchers = Arc::new(Matchers::new(settings.hub_url.clone(), settings.limits));
        Ok(Arc::new(Self {
            log,
            matchers,
            settings,
            secret: secret.to_vec(),
            registry,
            weights: Arc::default(),
        }))
    }

    /// The updates' history.
    pub fn hub(&self) -> &Hub<Update> {
        self.log.hub()
    }

    /// The hub's URL (the base of relative topics and patterns).
    pub fn url(&self) -> &Url {
        self.matchers.base()
    }

    /// Where the hub's protected resource metadata is: its URL's path under
    /// `/.well-known/oauth-protected-resource` (RFC 9728).
    pub fn metadata_url(&self) -> String {
        let path = format!("/.well-known/oauth-protected-resource{}", self.url().path());
        self.url().join(&path).map_or(path, |url| url.to_string())
    }

    fn token_hoop(&self) -> salvo::jwt_auth::JwtAuth<auth::Claims, auth::TokenDecoder> {
        let settings = &self.settings;
        let issuer = settings.jwt_issuer.as_deref();
        auth::hoop(
            &self.secret,
            &self.audience(),
            issuer,
            &settings.cookie_name,
        )
    }

    /// Holds `weight` for `client` while the returned guard lives: `429
    /// patterns-too-costly` past `--max-pattern-weight-per-client`, so no address can
    /// make every publish run more expressions than that.
    fn hold_weight(
        &self,
        client: Option<IpAddr>,
        weight: usize,
    ) -> Result<Option<HeldWeight>, ApiError> {
        let Some(client) = client.filter(|_| weight > 0) else {
            return Ok(None);
        };
        let max = self.matchers.limits().client_weight;
        let mut weights = self.weights.lock();
        let total = weights.get(&client).copied().unwrap_or(0) + weight;
        if total > max {
            let message = format!(
                "The open subscriptions of this address would run {total} bytes of expressions on every topic, past this hub's {max}; close some, or use fewer custom regular expressions."
            );
            let status = StatusCode::TOO_MANY_REQUESTS;
            return Err(ApiError::new(status, "patterns-too-costly", message));
        }
        weights.insert(client, total);
        let weights = Arc::clone(&self.weights);
        Ok(Some(HeldWeight {
            weights,
            client,
            weight,
        }))
    }

    /// The hub's resource identifier, which every token's `aud` must name:
    /// `--jwt-audience`, else the hub's URL.
    pub fn audience(&self) -> String {
        let settings = &self.settings;
        let url = || self.url().to_string();
        settings.jwt_audience.clone().unwrap_or_else(url)
    }

    /// A subscription's matchers (read, not compiled), and its `last_event_id` (the
    /// first one), from the query: `400` for a name in the `match` namespace that is not
    /// a supported type, a pattern too long or with a bad character, too many
    /// matchers, or none.
    fn subscription(
        &self,
        query: &[(String, String)],
    ) -> Result<(Vec<Selector>, Option<String>), ApiError> {
        let mut wanted = Vec::new();
        let mut cursor = None;
        let max = self.matchers.limits().max_matchers;
        for (name, value) in query {
            if name == "last_event_id" {
                cursor.get_or_insert_with(|| value.clone());
                continue;
            }
            if !name.to_ascii_lowercase().starts_with("match") {
                continue; // not ours to judge
            }
            let match_type = match name.as_str() {
                "match" | "match_exact" => MatchType::Exact,
                "match_urlpattern" => MatchType::UrlPattern,
                _ => {
                    let message = format!(
                        "{name:?} is not a matcher this hub knows: use match, match_exact or match_urlpattern."
                    );
                    return Err(ApiError::bad_request("unknown-matcher-type", message));
                }
            };
            if wanted.len() == max {
                let message = format!("At most {max} matchers per subscription.");
                return Err(ApiError::bad_request("too-many-matchers", message));
            }
            Matchers::check(value).map_err(matcher_refused)?;
            wanted.push((match_type, value.clone()));
        }
        if wanted.is_empty() {
            let message =
                "Subscribe with at least one match, match_exact or match_urlpattern parameter.";
            return Err(ApiError::bad_request("no-matcher", message));
        }
        Ok((wanted, cursor))
    }

    /// Where a subscription that sent `id` starts: after the oldest retained update
    /// with that id; everything retained for `earliest`; and for an id that names no
    /// retained update (never issued, or trimmed), everything retained too, after an
    /// `event: reset` that says so (`Mercure-Last-Event-ID: earliest` either way).
    fn resume_after(&self, id: &str) -> Resume {
        let everything = Start::Recent(usize::MAX);
        if id == "earliest" {
            return Resume {
                start: everything,
                preceding: "earliest".into(),
                reset: None,
            };
        }
        let hub = self.hub();
        // A hub-made id (`#RUN-N`) is read once, not formatted for every update.
        let made = id.strip_prefix('#').and_then(|n| n.parse::<EventId>().ok());
        let names = |event_id: EventId, update: &Update| match &update.id {
            Some(own) => own == id,
            None => made == Some(event_id),
        };
        match find_oldest(hub, names) {
            Some(found) => Resume {
                start: Start::After(found.to_string()),
                preceding: id.into(),
                reset: None,
            },
            None => {
                let reset = hub.reset(ResetReason::UnknownId);
                Resume {
                    start: everything,
                    preceding: "earliest".into(),
                    reset: Some(reset),
                }
            }
        }
    }

    /// The update a publish form describes, or why not: `400` for a missing topic, a
    /// topic that is `*` or in the hub's reserved namespace, a control or format
    /// character, an id starting with `#` or equal to `earliest`, the type `mercure`,
    /// a `retry` that is not digits; `413` past the size limits.
    fn update(&self, form: &[(String, String)]) -> Result<Update, ApiError> {
        let first = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let too_large = |what: &str| {
            let message = format!("The {what} is longer than {MAX_FIELD_BYTES} bytes.");
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", message)
        };
        let bad = |code: &'static str, message: String| ApiError::bad_request(code, message);
        let topics: Vec<String> = form
            .iter()
            .filter(|(n, _)| n == "topic")
            .map(|(_, v)| v.clone())
            .collect();
        if topics.is_empty() {
            return Err(bad(
                "missing-topic",
                "An update needs at least one topic field.".into(),
            ));
        }
        if topics.len() > MAX_TOPICS {
            let message = format!("An update may have at most {MAX_TOPICS} topics.");
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                message,
            ));
        }
        for topic in &topics {
            if topic.len() > MAX_FIELD_BYTES {
                return Err(too_large("topic"));
            }
            if !is_clean(topic) {
                return Err(bad(
                    "invalid-topic",
                    format!("The topic {topic:?} has a control or format character."),
                ));
            }
            if topic == "*" {
                return Err(bad(
                    "invalid-topic",
                    "The topic * is reserved: it matches every topic.".into(),
                ));
            }
            if self.is_reserved(topic) {
                return Err(bad(
                    "reserved-topic",
                    format!("The topic {topic:?} is in the hub's own namespace ({HUB_PATH})."),
                ));
            }
        }
        // An empty id or type is no id or type, as Mercure's hub reads them (an empty
        // `id:` line would clear the client's last event id).
        let id = first("id").filter(|id| !id.is_empty());
        if let Some(id) = id {
            if id.len() > MAX_FIELD_BYTES {
                return Err(too_large("id"));
            }
            if id.starts_with('#') || id == "earliest" || !is_clean(id) {
                let message = format!(
                    "The id {id:?} may not start with #, be earliest, or hold a control or format character."
                );
                return Err(bad("invalid-id", message));
            }
        }
        let event_type = first("type").filter(|t| !t.is_empty());
        if let Some(event_type) = event_type {
            if event_type.len() > MAX_FIELD_BYTES {
                return Err(too_large("type"));
            }
            // The hub's own event names, however a client might compare them, and any
            // name a client could read as one once it trims spaces.
            let padded = event_type.trim() != event_type;
            let own = ["mercure", "reset"]
                .iter()
                .any(|name| event_type.eq_ignore_ascii_case(name));
            if own || padded || !is_clean(event_type) {
                let message = format!(
                    "The type {event_type:?} is the hub's own (mercure, reset), starts or ends with a space, or holds a control or format character."
                );
                return Err(bad("invalid-type", message));
            }
        }
        let retry = match first("retry") {
            None => None,
            Some(retry) => {
                let digits = !retry.is_empty() && retry.bytes().all(|b| b.is_ascii_digit());
                let parsed = retry.parse::<u64>().ok().filter(|_| digits);
                Some(parsed.ok_or_else(|| {
                    bad(
                        "invalid-retry",
                        format!("The retry {retry:?} is not a number of milliseconds."),
                    )
                })?)
            }
        };
        Ok(Update {
            topics,
            data: first("data").unwrap_or_default().to_owned(),
            private: form.iter().any(|(n, _)| n == "private"),
            id: id.map(str::to_owned),
            event_type: event_type.map(str::to_owned),
            retry,
        })
    }

    /// Whether `topic`, resolved against the hub's URL, lies in the hub's namespace
    /// (its path, or under it, and `/.well-known/mercure`, where subscriptions are
    /// announced, whatever `--hub-url`'s path), whatever its scheme and host: after the URL parser
    /// removed dot segments, with percent-encoded unreserved characters decoded (so
    /// `/.well-known/%6Dercure` is caught too).
    fn is_reserved(&self, topic: &str) -> bool {
        let Ok(resolved) = self.url().join(topic) else {
            return false; // not a URL reference: it cannot name a hub path
        };
        let decoded = decode_unreserved(resolved.path());
        // Decoding can make new dot segments (`%2E%2E`): resolve once more.
        let path = self
            .url()
            .join(&decoded)
            .map_or(decoded, |u| u.path().to_owned());
        let under = |root: &str| {
            let root = root.trim_end_matches('/');
            path == root || path.starts_with(&format!("{root}/"))
        };
        under(self.url().path()) || under(HUB_PATH)
    }
}

/// `path` with its percent-encoded unreserved characters (ALPHA, DIGIT, `-._~`)
/// decoded, the others left encoded.
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        let decoded = hex
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(char::from);
        match decoded {
            Some(c) if bytes[i] == b'%' && (c.is_ascii_alphanumeric() || "-._~".contains(c)) => {
                out.push(c);
                i += 3;
            }
            _ => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

/// `text` read as `application/x-www-form-urlencoded` (the URL standard's parsing, as
/// `URLSearchParams` does), except that a name or value that is not UTF-8 once
/// decoded is refused (`400`) rather than patched with U+FFFD.
pub fn form_pairs(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |part: &str| -> Result<String, ApiError> {
        let spaced = part.replace('+', " ");
        let decoded = percent_decode_str(&spaced).decode_utf8();
        decoded.map(Cow::into_owned).map_err(|_| {
            ApiError::bad_request("invalid-utf8", "A name or value is not UTF-8 once decoded.")
        })
    };
    let pairs = text.split('&').filter(|pair| !pair.is_empty());
    pairs
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
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
    /// The hub's public URL: the base of relative topics and URL patterns, and where
    /// the page and resources say the hub is (`Link: rel="mercure"`).
    #[arg(
        long,
        env = "HUB_URL",
        default_value = "http://localhost:8080/.well-known/mercure"
    )]
    pub hub_url: Url,
    /// The hub's resource identifier, which every token's `aud` must name (default:
    /// the hub's URL, `--hub-url`).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The `iss` every token must name (unchecked when unset).
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
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
    /// What one subscription may make the hub do.
    #[command(flatten)]
    pub limits: MatchLimits,
}

/// The JWT secret is too short to verify HS256 tokens with.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least {} bytes", auth::MIN_SECRET_BYTES)]
pub struct SecretTooShort;

/// Why a request was refused: the family's JSON error, with the `WWW-Authenticate`
/// challenge Mercure (RFC 6750) asks for when it is about the token.
#[derive(Debug)]
pub enum Refusal {
    Api(ApiError),
    Bearer { error: ApiError, challenge: String },
}

impl Refusal {
    /// `401` (no `error`: no token was given) or, with `insufficient_scope`, `403`.
    fn bearer(error: Option<&str>, message: &str) -> Self {
        let (status, code, challenge) = match error {
            None => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Bearer".to_owned(),
            ),
            Some(e) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("Bearer error=\"{e}\""),
            ),
        };
        Refusal::Bearer {
            error: ApiError::new(status, code, message),
            challenge,
        }
    }
}

/// `400` with `error="invalid_request"` when the token's presentation is malformed or
/// ambiguous: an `Authorization` header that is not exactly one `Bearer <token>` (RFC
/// 6750), or the token's cookie more than once (a sibling domain can add one, and which
/// one counts would be the order the browser sent them in).
fn refuse_malformed_presentation(req: &Request, cookie_name: &str) -> Result<(), Refusal> {
    let headers = req.headers().get_all(AUTHORIZATION).iter().count();
    let cookies = req
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter(|c| {
            c.split_once('=')
                .is_some_and(|(n, _)| n.trim() == cookie_name)
        })
        .count();
    let header_ok = headers == 0 || (headers == 1 && bearer_token(req).is_some());
    if header_ok && cookies <= 1 {
        return Ok(());
    }
    let message =
        "Present the access token once: one Authorization: Bearer <token> header, or one cookie.";
    Err(Refusal::Bearer {
        error: ApiError::bad_request("invalid-request", message),
        challenge: "Bearer error=\"invalid_request\"".to_owned(),
    })
}

/// `400` for a matcher the hub will not take: `matcher-too-costly` for one past the
/// compile budget, `invalid-matcher` for the others.
fn matcher_refused(e: MatcherError) -> ApiError {
    let code = match e {
        MatcherError::TooCostly(_) => "matcher-too-costly",
        _ => "invalid-matcher",
    };
    ApiError::bad_request(code, e.to_string())
}

fn invalid_token() -> Refusal {
    let message =
        "The access token is not valid here (signature, type, expiry, audience, issuer or grants).";
    Refusal::Bearer {
        error: ApiError::new(StatusCode::UNAUTHORIZED, "invalid-token", message),
        challenge: "Bearer error=\"invalid_token\"".to_owned(),
    }
}

/// A refusal is the family's JSON error (see [`ApiError`]'s statuses).
impl EndpointOutRegister for Refusal {
    fn register(components: &mut Components, operation: &mut Operation) {
        ApiError::register(components, operation);
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl Scribe for Refusal {
    fn render(self, res: &mut Response) {
        match self {
            Refusal::Api(e) => e.render(res),
            Refusal::Bearer { error, challenge } => {
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert("www-authenticate", value);
                }
                error.render(res);
            }
        }
    }
}
