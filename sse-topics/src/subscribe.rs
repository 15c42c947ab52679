//! Subscribing (Mercure's "Subscription" section): `GET /.well-known/mercure` with
//! `match` / `match_urlpattern` matchers, a token when private updates are wanted, and
//! `Last-Event-ID` to resume. What a subscriber reads is chosen by [`UpdateFilter`];
//! what its patterns cost is held for its client address while it streams.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;
use salvo::http::StatusCode;
use salvo::http::header::HeaderValue;
use salvo::prelude::*;
use salvo_oapi::endpoint;
use sse_shared::address::StreamClient;
use sse_shared::error::ApiError;
use sse_shared::event_stream;
use sse_shared::hub::{EventId, Start};
use sse_shared::matching::Matching;
use sse_shared::resume::ResetReason;
use sse_shared::snapshot::find_oldest;
use sse_shared::stream_route::StreamSettings;

use super::auth::{self, Grants, Token};
use super::matcher::{MatchType, Matchers, Selection, Selector};
use super::publish::form_pairs;
use super::refusal::{Refusal, invalid_token, matcher_refused, refuse_malformed_presentation};
use super::{TopicHub, Update, state, subscriptions};

/// The updates whose topics match any of the request's matchers (and, when private,
/// that its token may read), from `Last-Event-ID` (or `last_event_id`) or from now.
#[endpoint(
    status_codes(200, 400, 401, 403, 421, 429, 503),
    parameters(
        ("match" = Option<Vec<String>>, Query, description = "A topic, exactly (`*`: every topic). Repeatable, as are the others: an update matching any is sent."),
        ("match_exact" = Option<Vec<String>>, Query, description = "The same as `match`."),
        ("match_urlpattern" = Option<Vec<String>>, Query, description = "A WHATWG URL Pattern, e.g. `https://example.com/books/:id`."),
        ("last-event-id" = Option<String>, Header, description = "The last id seen: the updates after it (or `earliest`: all retained)."),
        ("last_event_id" = Option<String>, Query, description = "The same, for a client that cannot send the header (the header wins)."),
        ("topic" = Option<Vec<String>>, Query, description = "Mercure 0.x: a topic exactly, `*`, or an RFC 6570 URI template; only with --protocol-compat 8."),
        ("lastEventID" = Option<String>, Query, description = "Mercure 0.x's `last_event_id`; only with --protocol-compat 8."),
        ("authorization" = Option<String>, Query, description = "Mercure 0.x: the access token, when there is no Authorization header; only with --protocol-compat 8 (a credential in a URL: prefer the header or the cookie).")
    ),
    security((), ("bearer" = []), ("cookie" = []))
)]
pub(crate) async fn subscribe(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), Refusal> {
    let hub = state(depot)?;
    refuse_malformed_presentation(req, &hub.settings)?;
    // Before the token and admission only the query's text is read: nothing is
    // compiled, cached or scanned for a request that is then refused.
    let query = form_pairs(req.uri().query().unwrap_or_default())?;
    let (wanted, query_cursor) = hub.subscription(&query)?;
    let (grants, exp) = match auth::token(depot, &hub.matchers, hub.settings.compat()).await {
        Token::Valid { grants, exp } => (Some(grants), exp),
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
    // Exact topics only: woken by the updates naming them, not by every publish.
    let keys: Option<Vec<String>> = routing
        .exact_topics()
        .filter(|topics| !topics.is_empty())
        .map(|topics| topics.into_iter().map(str::to_owned).collect());
    let filter = UpdateFilter { grants, routing };
    let mut subscription = hub.hub().subscribe_matching(start, filter);
    if let Some(keys) = keys {
        subscription = subscription.wake_on(keys);
    }
    if let Some(resume) = resume {
        let value = HeaderValue::from_str(&resume.preceding);
        if let Ok(value) = value {
            // Mercure 0.x clients read it as `Last-Event-ID`.
            if hub.settings.compat() {
                res.headers_mut().insert("last-event-id", value.clone());
            }
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
    let settings = StreamSettings::from_depot(depot);
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
        let compat = self.settings.compat();
        for (name, value) in query {
            // Mercure 0.x named it `lastEventID`.
            if name == "last_event_id" || (compat && name == "lastEventID") {
                cursor.get_or_insert_with(|| value.clone());
                continue;
            }
            let topic = compat && name == "topic";
            if !topic && !name.to_ascii_lowercase().starts_with("match") {
                continue; // not ours to judge
            }
            let match_type = match name.as_str() {
                "topic" if topic => MatchType::UriTemplate,
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
            let message = match compat {
                true => {
                    "Subscribe with at least one match, match_exact, match_urlpattern or topic parameter."
                }
                false => {
                    "Subscribe with at least one match, match_exact or match_urlpattern parameter (topic is Mercure 0.x's: this hub takes it with --protocol-compat 8)."
                }
            };
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
}
