//! # sse-notify: notifications for everyone, or for one user only
//!
//! An admin publishes with `POST /notifications` and a bearer token. Subscribers listen
//! on `GET /notifications/stream` with a session token (a JWT, see [`session`]) in a
//! cookie or an `Authorization: Bearer` header: a broadcast reaches every stream; a
//! targeted notification reaches only the streams whose token names its user, live or
//! replayed, and a stream ends when its token expires. `POST /session`, behind the
//! admin token, stands in for your app's login and sets that cookie.
//!
//! With `--redis` the history is a Redis stream every instance reads; give every
//! instance the same `--admin-token` and `--jwt-secret`, and a user's session and
//! notifications work on all of them.
//!
//! The tutorial let anyone publish, gave every notification the id 1 (so resuming was
//! meaningless), and ended a subscriber's stream without a word when its broadcast
//! receiver lagged. Here: a token compared in constant time, ids that grow by one, a
//! shared bounded history ([`sse_shared::hub`]) that replays what a user missed, and a
//! `reset` event for a client that falls behind.

pub mod session;

use std::sync::Arc;

use self::session::{SessionInfo, Sessions};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use salvo::affix_state;
use salvo::http::StatusCode;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::{Deserialize, Serialize};
use sse_shared::body;
use sse_shared::error::ApiError;
use sse_shared::event_stream;
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::PublishError;
use sse_shared::hub::{EventId, HubEvent, Start};
use sse_shared::names::display_name;
use sse_shared::page;
use sse_shared::publish::Publisher;
use sse_shared::resume::last_event_id;
use sse_shared::secret::{bearer_token, constant_time_eq};
use sse_shared::stream_route::{StreamRoute, StreamSettings};

/// The largest publish request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Field limits, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
pub const MAX_MESSAGE_CHARS: usize = 2000;
pub const MAX_USER_CHARS: usize = 64;

const FILES: [(&str, &str); 2] = [
    ("notify.css", include_str!("../static/notify.css")),
    ("notify.js", include_str!("../static/notify.js")),
];

/// How loud a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// What is published, before it has an id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    pub message: String,
    pub level: Level,
    /// `None`: everyone. `Some(user)`: only that user's streams.
    pub user: Option<String>,
}

/// A published notification: the draft, its time, and (in the frame) its id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Notification {
    draft: Draft,
    at: String,
}

/// The `data` of `event: notification`, and what `POST /notifications` answers.
#[derive(Serialize, ToSchema)]
pub struct NotificationData {
    /// Its event id: they grow by one, per process.
    pub id: EventId,
    pub title: String,
    pub message: String,
    pub level: Level,
    /// Whom it is for: `null` for everyone.
    pub user: Option<String>,
    /// When it was published (RFC 3339, milliseconds, UTC).
    pub at: String,
}

impl Notification {
    fn into_data(self, id: EventId) -> NotificationData {
        let (draft, at) = (self.draft, self.at);
        let (title, message, level, user) = (draft.title, draft.message, draft.level, draft.user);
        NotificationData {
            id,
            title,
            message,
            level,
            user,
            at,
        }
    }

    /// Whether `viewer` (signed in, or not) may see this.
    fn visible_to(&self, viewer: Option<&str>) -> bool {
        match &self.draft.user {
            None => true,
            Some(target) => viewer == Some(target.as_str()),
        }
    }
}

impl HubEvent for Notification {
    // The notification's id is its event id: they grow by one, per process.
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        Ok(Frame::new()
            .id(&id.to_string())?
            .event("notification")?
            .json(&self.clone().into_data(id))?
            .finish())
    }

    // Whom it wakes: its user's streams (`""`: everyone's), not every stream.
    fn wake_keys(&self, key: &mut dyn FnMut(&str)) {
        key(self.draft.user.as_deref().unwrap_or(""));
    }
}

/// The service: its log, the admin token, and the sessions' secret.
pub struct Notifier {
    log: Publisher<Notification>,
    admin_token: String,
    sessions: Sessions,
}

impl Notifier {
    pub fn new(log: Publisher<Notification>, admin_token: String, sessions: Sessions) -> Arc<Self> {
        Arc::new(Self {
            log,
            admin_token,
            sessions,
        })
    }

    /// Publishes a notification; returns it as sent to subscribers.
    pub async fn publish(&self, draft: Draft) -> Result<NotificationData, PublishError> {
        let notification = Notification {
            draft,
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        // The hub keeps the notification; the reply is made from a copy.
        let reply = notification.clone();
        let id = self.log.publish(notification).await?;
        Ok(reply.into_data(id))
    }
}

/// The routes: `POST /notifications`, `GET /notifications/stream`, `/session` and the
/// page. The [`Notifier`] is in every handler's `Depot` (salvo's `affix_state`).
/// (`#[endpoint]` describes a route for OpenAPI; `main.rs` serves the description, see
/// `contract.rs`.)
pub fn router(notifier: &Arc<Notifier>) -> Router {
    Router::new()
        .hoop(affix_state::inject(Arc::clone(notifier)))
        .push(
            Router::with_path("notifications")
                .push(Router::new().hoop(admin_only).post(publish))
                .push(
                    Router::with_path("stream")
                        .hoop(notifier.sessions.hoop())
                        .hoop(StreamRoute)
                        .get(listen),
                ),
        )
        .push(
            Router::with_path("session")
                .push(Router::new().hoop(admin_only).post(sign_in))
                .push(Router::new().hoop(notifier.sessions.hoop()).get(who_am_i))
                .push(Router::new().delete(sign_out)),
        )
        .push(page::routes(
            "SSE notifications",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

// Behind the `admin_only` hoop.
/// `POST /notifications` (with the admin token): publishes a notification, to everyone
/// or to one `user`'s streams.
#[endpoint(
    request_body = NewNotification,
    status_codes(201, 400, 401, 403, 408, 413, 415, 503),
    responses((status_code = 201, description = "Published: the notification as streams get it.", body = NotificationData)),
    security(("admin_token" = []))
)]
async fn publish(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let notifier = notifier(depot)?;
    let draft = body::json::<NewNotification>(req, MAX_BODY_BYTES)
        .await?
        .check()?;
    // 503 while Redis is unreachable (nothing is published then).
    let published = notifier.publish(draft).await?;
    res.status_code(StatusCode::CREATED);
    res.render(Json(published));
    Ok(())
}

/// A hoop that lets a request through only with the admin token as
/// `Authorization: Bearer <token>` (compared in constant time); else `401`. It guards
/// publishing and `POST /session`: nobody gets a session for a user without it.
#[handler]
async fn admin_only(req: &mut Request, depot: &mut Depot, res: &mut Response, ctrl: &mut FlowCtrl) {
    let notifier = notifier(depot).ok();
    let token = notifier
        .as_ref()
        .map_or(&[][..], |n| n.admin_token.as_bytes());
    let presented = bearer_token(req).map(str::as_bytes);
    // An empty token never matches: without the notifier nothing is let through.
    if token.is_empty() || !presented.is_some_and(|t| constant_time_eq(t, token)) {
        res.render(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This needs the admin token as Authorization: Bearer <token>.",
        ));
        ctrl.skip_rest();
    }
}

// Serde names a missing, unknown or mistyped field; `NewNotification::check` names one
// that breaks a rule.
/// The body of `POST /notifications`, as sent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewNotification {
    /// 1 to 120 characters.
    title: String,
    /// 1 to 2000 characters.
    message: String,
    /// `info` when absent.
    #[serde(default)]
    level: Option<Level>,
    /// Only this user's streams get it (a display name, up to 64 characters); everyone when absent.
    #[serde(default)]
    user: Option<String>,
}

impl NewNotification {
    fn check(self) -> Result<Draft, ApiError> {
        let invalid = |field: &str, why: &str| {
            ApiError::bad_request("invalid-field", format!("`{field}` {why}."))
        };
        let fits = |text: &str, max: usize| {
            (1..=max).contains(&text.chars().count()) && !text.trim().is_empty()
        };
        if !fits(&self.title, MAX_TITLE_CHARS) {
            return Err(invalid(
                "title",
                &format!("must be 1 to {MAX_TITLE_CHARS} characters"),
            ));
        }
        if !fits(&self.message, MAX_MESSAGE_CHARS) {
            let why = format!("must be 1 to {MAX_MESSAGE_CHARS} characters");
            return Err(invalid("message", &why));
        }
        let user = match self.user {
            Some(name) => Some(
                display_name(&name, MAX_USER_CHARS)
                    .map_err(|why| invalid("user", &why.to_string()))?,
            ),
            None => None,
        };
        Ok(Draft {
            title: self.title,
            message: self.message,
            level: self.level.unwrap_or(Level::Info),
            user,
        })
    }
}

/// `GET /notifications/stream`: broadcasts, and the session's user's own
/// notifications, until the session expires; resumed after `Last-Event-ID`.
#[endpoint(
    status_codes(200, 429, 503),
    parameters(
        ("last-event-id" = Option<String>, Header, description = "The last id seen: replay what came after it (what this viewer may see)."),
        ("lastEventId" = Option<String>, Query, description = "The same, for a page that reconnects by hand (the header wins).")
    ),
    security((), ("session_cookie" = []))
)]
async fn listen(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let notifier = notifier(depot)?;
    let settings = StreamSettings::from_depot(depot);
    let session = session::user(depot).cloned();
    let viewer = session.as_ref().map(|claims| claims.sub.clone());
    // Woken by what is for everyone and for this viewer, not by everyone's.
    let keys = [Some(String::new()), viewer.clone()].into_iter().flatten();
    let start = Start::resume_or(last_event_id(req), Start::Live);
    // The filter runs on replayed events too, so a resume never leaks another's.
    let events = notifier
        .log
        .hub()
        .subscribe_filtered(start, move |n: &Notification| {
            n.visible_to(viewer.as_deref())
        })
        .wake_on(keys)
        .into_stream();
    match session {
        Some(claims) => {
            let events = session::until_expiry(events, &claims);
            event_stream::respond(res, &settings, events);
        }
        None => event_stream::respond(res, &settings, events),
    }
    Ok(())
}

// Behind the `admin_only` hoop.
/// `POST /session` with `{"user": "<name>"}` (with the admin token): signs a user in
/// (standing in for your app's login): sets the session cookie; answers
/// `{"user", "exp"}`.
#[endpoint(
    request_body = SignInBody,
    status_codes(200, 400, 401, 403, 408, 413, 415, 500),
    responses((status_code = 200, description = "Signed in.", body = SessionInfo)),
    security(("admin_token" = []))
)]
async fn sign_in(req: &mut Request, depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    let notifier = notifier(depot)?;
    let SignInBody { user } = body::json(req, 1024).await?;
    let user = display_name(&user, MAX_USER_CHARS)
        .map_err(|why| ApiError::bad_request("invalid-field", format!("`user` {why}.")))?;
    let sessions = &notifier.sessions;
    let (token, claims) = sessions.issue(&user).map_err(|e| {
        tracing::error!(error = %e, "could not sign a session token");
        ApiError::internal("Could not sign a session.")
    })?;
    sessions.set_cookie(res, token);
    res.render(Json(SessionInfo::from(&claims)));
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    /// A display name, up to 64 characters.
    user: String,
}

/// Whose the session is: `{"user", "exp"}` for a valid session, `{"user": null}`
/// otherwise.
#[endpoint(security((), ("session_cookie" = [])))]
async fn who_am_i(depot: &mut Depot) -> Json<SessionInfo> {
    Json(match session::user(depot) {
        Some(claims) => SessionInfo::from(claims),
        None => SessionInfo {
            user: None,
            exp: None,
        },
    })
}

/// `DELETE /session`: signs out: removes the session cookie (`204`).
#[endpoint(status_codes(204, 403, 500), responses((status_code = 204, description = "Signed out.")))]
async fn sign_out(depot: &mut Depot, res: &mut Response) -> Result<(), ApiError> {
    notifier(depot)?.sessions.clear_cookie(res);
    res.status_code(StatusCode::NO_CONTENT);
    Ok(())
}

/// The [`Notifier`] [`router`] puts in the `Depot`.
fn notifier(depot: &Depot) -> Result<Arc<Notifier>, ApiError> {
    let notifier = depot.get_typed::<Arc<Notifier>>().cloned();
    notifier.map_err(|_| ApiError::internal("The notifier is not set up."))
}
