//! Active subscriptions (Mercure's section of that name), with `--subscriptions`: every
//! matcher of every subscriber is announced when its stream opens and when it closes,
//! as a private update of type `mercure` on the topic
//! `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`, and
//! `GET /.well-known/mercure/subscriptions[/{match_type}/{match}[/{subscriber}]]`
//! lists the active ones, each only to tokens that grant `subscribe` on its path.
//!
//! Subscriber ids are the hub's own (`urn:uuid:` and 122 random bits): a client can
//! never choose or reuse one.
//!
//! A Mercure 0.x subscription (`topic=`, `--protocol-compat 8`) keeps 0.x's shape, as
//! Mercure's hub keeps it in that mode: its path is
//! `/.well-known/mercure/subscriptions/{topic}/{subscriber}` (no type), its document has
//! `topic` instead of `match` and `match_type`, and the API also answers
//! `/subscriptions/{topic}[/{subscriber}]` (a first segment that is no type name).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use salvo::async_trait;
use salvo::http::StatusCode;
use salvo::http::header::HeaderValue;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::Serialize;
use serde_json::Value;
use sse_shared::error::ApiError;
use sse_shared::publish::Publisher;
use sse_shared::secret::random_token;
use sse_shared::snapshot::find_newest;

use super::auth::{self, Grants, Token};
use super::discovery::HubUrl;
use super::matcher::{MatchType, Matcher};
use super::refusal::{invalid_token, refuse_malformed_presentation};
use super::{HUB_PATH, Refusal, TopicHub, Update, state};

/// What RFC 6570 leaves unencoded in a simple expansion: ALPHA, DIGIT, `-._~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the active subscriptions are kept: in this process ([`ActiveSubscriptions`]),
/// or with `--redis` in Redis, for every instance (`src/redis.rs`).
#[async_trait]
pub trait Registry: Send + Sync {
    /// Registers `subscriber` with its subscriptions (`docs`) and announces each one.
    async fn enter(&self, subscriber: &str, docs: Vec<Value>) -> Result<(), RegistryError>;
    /// Forgets `subscriber` and announces the end of each of its subscriptions.
    async fn leave(&self, subscriber: &str) -> Result<(), RegistryError>;
    /// Every active subscription.
    async fn all(&self) -> Result<Vec<Value>, RegistryError>;
}

/// The registry could not be read or changed (Redis is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("the subscriptions registry failed: {0}")]
pub struct RegistryError(pub Box<dyn std::error::Error + Send + Sync>);

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        tracing::warn!("{e}");
        let message = "The subscriptions registry (Redis) is unreachable; try again shortly.";
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend-unavailable",
            message,
        )
        .retry_after(std::time::Duration::from_secs(1))
    }
}

/// The active subscriptions of this process, by subscriber, announced through `log`.
pub struct ActiveSubscriptions {
    log: Publisher<Update>,
    by_subscriber: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl ActiveSubscriptions {
    /// None yet; announcements go through `log`.
    pub fn new(log: Publisher<Update>) -> Self {
        Self {
            log,
            by_subscriber: Mutex::default(),
        }
    }

    /// Publishes the announcement of each of `docs`, as one batch.
    async fn announce(&self, docs: &[Value], active: bool) -> Result<(), RegistryError> {
        if docs.is_empty() {
            return Ok(());
        }
        let updates = docs.iter().map(|doc| announcement(doc, active)).collect();
        let published = self.log.publish_batch(updates).await;
        published.map(|_| ()).map_err(|e| RegistryError(e.into()))
    }
}

#[async_trait]
impl Registry for ActiveSubscriptions {
    async fn enter(&self, subscriber: &str, docs: Vec<Value>) -> Result<(), RegistryError> {
        let known = subscriber.to_owned();
        self.by_subscriber.lock().insert(known, docs.clone());
        self.announce(&docs, true).await
    }

    async fn leave(&self, subscriber: &str) -> Result<(), RegistryError> {
        let docs = self.by_subscriber.lock().remove(subscriber);
        self.announce(&docs.unwrap_or_default(), false).await
    }

    async fn all(&self) -> Result<Vec<Value>, RegistryError> {
        let active = self.by_subscriber.lock();
        Ok(active.values().flatten().cloned().collect())
    }
}

/// A subscriber's registration: dropping it (its stream ended) ends its subscriptions.
pub struct Subscriber {
    registry: Arc<dyn Registry>,
    id: String,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let (registry, id) = (Arc::clone(&self.registry), std::mem::take(&mut self.id));
        // Drop cannot wait; the leave (a Redis call, with Redis) goes on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = registry.leave(&id).await {
                    tracing::warn!("cannot end a subscriber's subscriptions: {e}");
                }
            });
        }
    }
}

/// Registers a new subscriber with `matchers` (payloads from `grants`), which announces
/// each of its subscriptions.
pub async fn enter(
    hub: &TopicHub,
    matchers: &[Arc<Matcher>],
    grants: Option<&Grants>,
) -> Subscriber {
    let id = subscriber_id();
    let docs: Vec<Value> = matchers
        .iter()
        .map(|m| {
            let payload = grants.and_then(|g| g.payload_for(&m.pattern)).cloned();
            document(m.match_type, &m.pattern, &id, payload)
        })
        .collect();
    let registry = Arc::clone(&hub.registry);
    if let Err(e) = registry.enter(&id, docs).await {
        tracing::warn!("cannot announce a subscriber: {e}");
    }
    Subscriber { registry, id }
}

/// The announcement of the subscription `doc`, `active` or not: a private `mercure`
/// update on its own topic (its `id`).
pub fn announcement(doc: &Value, active: bool) -> Update {
    let mut doc = doc.clone();
    doc["active"] = active.into();
    Update {
        topics: vec![doc["id"].as_str().unwrap_or_default().to_owned()],
        data: doc.to_string(),
        private: true,
        id: None,
        event_type: Some("mercure".into()),
        retry: None,
    }
}

/// A new subscriber id: a random (version 4) UUID as a URN.
fn subscriber_id() -> String {
    let hex = random_token(); // 32 hex digits
    let variant = ["8", "9", "a", "b"][usize::from(hex.as_bytes()[16] % 4)];
    let (a, b, c, d, e) = (
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32],
    );
    format!("urn:uuid:{a}-{b}-4{c}-{variant}{d}-{e}")
}

/// The path of a subscription (or, without a subscriber, of its matcher's collection):
/// each variable percent-encoded once, as a whole (RFC 6570).
/// A 0.x subscription's path has no type: `.../subscriptions/{topic}[/{subscriber}]`.
fn path(match_type: MatchType, pattern: &str, subscriber: Option<&str>) -> String {
    let encode = |text: &str| utf8_percent_encode(text, UNRESERVED).to_string();
    let mut path = match match_type {
        MatchType::UriTemplate => format!("{HUB_PATH}/subscriptions/{}", encode(pattern)),
        _ => format!(
            "{HUB_PATH}/subscriptions/{}/{}",
            match_type.name(),
            encode(pattern)
        ),
    };
    if let Some(subscriber) = subscriber {
        path = format!("{path}/{}", encode(subscriber));
    }
    path
}

/// A subscription, as the subscriptions API lists it and its `mercure` announcements
/// carry it (Mercure's Active Subscriptions). The registry keeps it as JSON.
#[derive(Serialize, ToSchema)]
pub struct Subscription {
    /// Its path under the hub: `/.well-known/mercure/subscriptions/{match_type}/{match}/{subscriber}`
    /// (0.x: `.../subscriptions/{topic}/{subscriber}`).
    pub id: String,
    /// Always `subscription`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `exact` or `urlpattern` (absent for a Mercure 0.x `topic=` subscription).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_type: Option<&'static str>,
    /// The matcher's pattern (absent for a Mercure 0.x `topic=` subscription).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A Mercure 0.x subscription's `topic=` selector (`--protocol-compat 8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The subscriber: a `urn:uuid:` the hub chose.
    pub subscriber: String,
    /// Whether the subscription is open (an announcement of its end says `false`).
    pub active: bool,
    /// What the subscriber's token says about it (`mercure.payload`), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

/// A collection of subscriptions, as `GET /.well-known/mercure/subscriptions[/..]` lists it.
#[derive(Serialize, ToSchema)]
pub struct Subscriptions {
    /// The path asked for.
    pub id: String,
    /// Always `subscriptions`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[salvo(schema(value_type = Vec<Subscription>))]
    pub subscriptions: Vec<Value>,
}

/// The JSON document describing one subscription (active until announced otherwise).
fn document(
    match_type: MatchType,
    pattern: &str,
    subscriber: &str,
    payload: Option<Value>,
) -> Value {
    let legacy = match_type == MatchType::UriTemplate;
    let doc = Subscription {
        id: path(match_type, pattern, Some(subscriber)),
        kind: "subscription",
        match_type: (!legacy).then(|| match_type.name()),
        pattern: (!legacy).then(|| pattern.to_owned()),
        topic: legacy.then(|| pattern.to_owned()),
        subscriber: subscriber.to_owned(),
        active: true,
        payload,
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// The active subscriptions under this path (all, a matcher's, or one), to a token that
/// grants `subscribe` on it. One subscription is a `Subscription`, the others a
/// `Subscriptions` collection.
#[endpoint(
    status_codes(200, 400, 401, 403, 404, 421, 503),
    responses((status_code = 200, description = "The subscriptions (`Subscriptions`), or one (`Subscription`) for a path that names a subscriber.", body = Subscriptions)),
    security(("bearer" = []), ("cookie" = []))
)]
pub async fn api(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), Refusal> {
    let hub = state(depot)?;
    refuse_malformed_presentation(req, &hub.settings)?;
    let requested = req.uri().path().to_owned();
    let grants = match auth::token(depot, &hub.matchers, hub.settings.compat()).await {
        Token::Valid { grants, .. } => grants,
        Token::None => {
            return Err(Refusal::bearer(
                None,
                "The subscriptions API needs an access token.",
            ));
        }
        Token::Invalid => return Err(invalid_token()),
    };
    if !grants.subscribe.matches(&requested) {
        let message = "The token does not grant subscribe on this path.";
        return Err(Refusal::bearer(Some("insufficient_scope"), message));
    }
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such subscription or collection.",
        )
    };
    let rest = requested
        .strip_prefix(&format!("{HUB_PATH}/subscriptions"))
        .unwrap_or_default();
    let parts: Vec<String> = rest
        .split('/')
        .skip(1)
        .map(|part| percent_decode_str(part).decode_utf8_lossy().into_owned())
        .collect();
    let active = hub.registry.all().await.map_err(ApiError::from)?;
    let all = active.iter();
    // 0.x's paths name a topic where 1.0's name a type (`--protocol-compat 8` only).
    let is_type = |name: &str| MatchType::from_name(name).is_some();
    let topic = |d: &Value, topic: &str| d["topic"] == *topic;
    let body = match parts.as_slice() {
        [] => collection(requested, all.cloned().collect()),
        [t] if hub.settings.compat() && !t.is_empty() => {
            collection(requested, all.filter(|d| topic(d, t)).cloned().collect())
        }
        [t, subscriber] if hub.settings.compat() && !is_type(t) => {
            let mut found = all.filter(|d| topic(d, t) && d["subscriber"] == *subscriber);
            found.next().cloned().ok_or_else(not_found)?
        }
        [match_type, pattern] | [match_type, pattern, _]
            if !is_type(match_type) || pattern.is_empty() =>
        {
            return Err(not_found().into());
        }
        [match_type, pattern] => {
            let found = all
                .filter(|d| d["match_type"] == *match_type && d["match"] == *pattern)
                .cloned()
                .collect();
            collection(requested, found)
        }
        [match_type, pattern, subscriber] => {
            let mut found = all.filter(|d| {
                d["match_type"] == *match_type
                    && d["match"] == *pattern
                    && d["subscriber"] == *subscriber
            });
            found.next().cloned().ok_or_else(not_found)?
        }
        _ => return Err(not_found().into()),
    };
    let located = depot.get_typed::<HubUrl>().map(|url| url.0.to_string());
    let link = format!(
        "<{}>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        located.unwrap_or_else(|_| HUB_PATH.to_owned()),
        last_event_id(&hub)
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    if let Ok(link) = HeaderValue::from_str(&link) {
        res.headers_mut().append("link", link);
    }
    res.render(Json(body));
    Ok(())
}

/// The collection at `id`, as JSON.
fn collection(id: String, subscriptions: Vec<Value>) -> Value {
    let kind = "subscriptions";
    let list = Subscriptions {
        id,
        kind,
        subscriptions,
    };
    serde_json::to_value(list).unwrap_or_default()
}

/// The id of the last update the hub dispatched, or `earliest`: the newest retained
/// update is the last one published.
fn last_event_id(hub: &TopicHub) -> String {
    let newest = find_newest(hub.hub(), |update| Some(update.id.clone()));
    match (newest, hub.hub().latest()) {
        (Some(Some(own)), _) => own,
        (Some(None), Some(id)) => format!("#{id}"),
        _ => "earliest".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_each_variable_once_as_a_whole() {
        let path = path(
            MatchType::UrlPattern,
            "https://example.com/:selector",
            Some("urn:uuid:bb3de268"),
        );
        assert_eq!(
            path,
            "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268"
        );
        // A `%` already in the matcher is encoded too: never decoded, never doubled.
        assert_eq!(
            path_of("a%20b"),
            "/.well-known/mercure/subscriptions/exact/a%2520b"
        );
    }

    fn path_of(pattern: &str) -> String {
        path(MatchType::Exact, pattern, None)
    }

    #[test]
    fn subscriber_ids_are_version_4_uuids_and_differ() {
        let (a, b) = (subscriber_id(), subscriber_id());
        assert_ne!(a, b);
        let uuid = a.strip_prefix("urn:uuid:").unwrap_or_default();
        let groups: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4') && "89ab".contains(&groups[3][..1]));
    }
}
