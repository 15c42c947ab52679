//! Publishing (Mercure's "Publication" section): `POST /.well-known/mercure`, a form
//! whose `topic` repeats, with a token that grants `publish` on every topic. What a
//! form may hold is checked here: the hub's reserved namespace, its own event names and
//! ids, sizes, control characters.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::Deserialize;
use sse_shared::body;
use sse_shared::error::ApiError;

use super::auth::{self, Token};
use super::matcher::is_clean;
use super::refusal::{Refusal, invalid_token, refuse_malformed_presentation};
use super::{HUB_PATH, MAX_BODY_BYTES, MAX_FIELD_BYTES, MAX_TOPICS, TopicHub, Update, state};

// For the OpenAPI document only: the handler reads the form with `form_pairs`.
/// The fields of `POST /.well-known/mercure`'s form (`topic` repeats).
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
    status_codes(200, 400, 401, 403, 408, 413, 415, 421, 503),
    responses((status_code = 200, description = "Published: the update's id.", body = String, content_type = "text/plain")),
    security(("bearer" = []), ("cookie" = []))
)]
pub(crate) async fn publish(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), Refusal> {
    let hub = state(depot)?;
    let form = req
        .content_type()
        .is_some_and(|m| m.essence_str() == "application/x-www-form-urlencoded");
    if !form {
        let message = "Publish with an application/x-www-form-urlencoded body.";
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(ApiError::new(status, "unsupported-media-type", message).into());
    }
    refuse_malformed_presentation(req, &hub.settings)?;
    let grants = match auth::token(depot, &hub.matchers, hub.settings.compat()).await {
        Token::Valid { grants, .. } => grants,
        Token::None => return Err(Refusal::bearer(None, "Publishing needs an access token.")),
        Token::Invalid => return Err(invalid_token()),
    };
    let body = body::text(req, MAX_BODY_BYTES).await?;
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

impl TopicHub {
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
        let Ok(resolved) = self.base().join(topic) else {
            return false; // not a URL reference: it cannot name a hub path
        };
        let decoded = decode_unreserved(resolved.path());
        // Decoding can make new dot segments (`%2E%2E`): resolve once more.
        let path = self
            .base()
            .join(&decoded)
            .map_or(decoded, |u| u.path().to_owned());
        let under = |root: &str| {
            let root = root.trim_end_matches('/');
            path == root || path.starts_with(&format!("{root}/"))
        };
        under(self.base().path()) || under(HUB_PATH)
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
