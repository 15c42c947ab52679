//! # sse-chat: a chat room nobody can impersonate
//!
//! `GET /chat/events?name=alice` joins: the first event, `welcome`, carries the
//! member's id, a secret token and who is online, and the token is also set as an
//! HttpOnly cookie; then come `join`, `leave` and `message` events from the room's
//! history. A reconnect carries the cookie (or `Authorization: Bearer`), never the
//! token in the URL. `POST /chat/messages` with the cookie or the bearer token posts as
//! the member the token names, and only as them: the sender is never taken from the
//! request. Joins and posts are rate limited per client address.
//!
//! Read top-down: the router, its handlers, the room, the types. The room's members
//! ([`members`]) and who is online ([`presence`]) are kept in memory here; with
//! `--redis`, `main.rs` gives the room the `sse-redis` crate's, shared by every instance.
//!
//! The tutorial's chat took the sender's id from the URL (anyone could post as anyone),
//! unwrapped a non-UTF-8 body into a panic, kept an unbounded queue per user, and
//! noticed a departed user only when someone next posted. Here: a token per member, a
//! bounded shared history instead of queues ([`sse_shared::hub`]), and a drop guard on
//! every stream, so `leave` goes out when a member's last stream closes.

pub mod members;
pub mod presence;

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures_util::{StreamExt, stream};
use salvo::affix_state::inject;
use salvo::http::StatusCode;
use salvo::http::cookie::{Cookie, SameSite};
use salvo::http::uri::Scheme;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::{Deserialize, Serialize};
use sse_shared::address::client_of;
use sse_shared::body;
use sse_shared::error::ApiError;
use sse_shared::event_stream::{self, with_guard};
use sse_shared::frame::{Frame, FrameError};
use sse_shared::hub::{EventId, Hub, HubEvent, PublishError, Start};
use sse_shared::names::display_name;
use sse_shared::origin::{cross_origin, from_own_origin};
use sse_shared::page;
use sse_shared::publish::Publisher;
use sse_shared::rate::{PerClient, PerKey};
use sse_shared::resume::last_event_id;
use sse_shared::secret::{presented_token, random_token};
use sse_shared::stream_route::{StreamRoute, StreamSettings};

use self::members::{FORGET_AFTER, FORGET_SILENT_AFTER, MemoryMembers, token_key};
use self::presence::MemoryPresence;
pub use self::{members::Members, presence::Presence};

/// The longest message, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 2000;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Messages a new member sees from before they joined.
pub const RECENT_MESSAGES: usize = 50;
/// Most members remembered at once, in memory.
const MAX_MEMBERS: usize = 100_000;

const FILES: [(&str, &str); 2] = [
    ("chat.css", include_str!("../static/chat.css")),
    ("chat.js", include_str!("../static/chat.js")),
];

/// The routes: `GET /chat/events`, `POST /chat/messages` and the page. The room is in
/// every handler's `Depot`. (`#[endpoint]` describes a route for OpenAPI; `main.rs`
/// serves the description, see `contract.rs`.)
pub fn router(room: &Arc<ChatRoom>) -> Router {
    let chat = Router::with_path("chat")
        .hoop(inject(Arc::clone(room)))
        .push(
            Router::with_path("events")
                .hoop(StreamRoute)
                .get(join_stream),
        )
        .push(
            Router::with_path("messages")
                .hoop(member_only)
                .post(post_message),
        );
    let page = page::routes("SSE chat", include_str!("../static/index.html"), &FILES);
    Router::new().push(chat).push(page)
}

/// Joins (as the member the cookie or bearer token names, else as a new member called
/// `name`) and streams the room: `welcome`, recent or missed events, then live ones.
#[endpoint(
    status_codes(200, 400, 401, 403, 429, 503),
    parameters(
        ("name" = Option<String>, Query, description = "A new member's display name (1 to 32 characters); unused when the cookie or token names a member."),
        ("last-event-id" = Option<String>, Header, description = "The last id seen: replay what came after it."),
        ("lastEventId" = Option<String>, Query, description = "The same, for a page that reconnects by hand (the header wins).")
    ),
    security((), ("member_cookie" = []), ("member_token" = []))
)]
async fn join_stream(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let room = room(depot)?;
    let ip = client_of(req, depot);
    // Another site's page could navigate a browser here with a name of its choosing: a
    // member (and the cookie that names one) is issued only to our own pages.
    let own = from_own_origin(req, depot);
    let name = req.query::<String>("name");
    let token = member_token(req);
    let joined = room
        .join(token.as_deref(), name.as_deref(), ip, own)
        .await?;
    if own {
        set_member_cookie(req, res, &joined.token);
    }

    // The welcome holds this member's secret, so it is built for this stream alone and
    // never enters the shared history. It has no id: resuming is about the room.
    let welcome = Welcome {
        user: joined.stream.user.clone(),
        token: joined.token.clone(),
        online: joined.online,
    };
    let welcome = Frame::new().event("welcome").and_then(|f| f.json(&welcome));
    let welcome = welcome.map_err(|_| internal())?.finish();

    // A reconnect replays what it missed; a new stream gets the recent messages.
    let start = Start::resume_or(last_event_id(req), Start::Recent(RECENT_MESSAGES));
    let events = room.hub().subscribe(start).into_stream();
    let frames = stream::iter([welcome]).chain(events);
    // When the client goes away, `joined.stream` drops: maybe a `leave`.
    let settings = StreamSettings::from_depot(depot);
    event_stream::respond(res, &settings, with_guard(frames, joined.stream));
    Ok(())
}

/// A hoop that puts the member the request's token (cookie or `Authorization: Bearer`)
/// names in the `Depot`, or answers `401`: what comes after it never sees a sender it
/// did not authenticate.
#[handler]
async fn member_only(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let found = match (room(depot), member_token(req)) {
        (Ok(room), Some(token)) => room.member(&token).await,
        (Err(e), _) => Err(e),
        (_, None) => Ok(None),
    };
    match found {
        Ok(Some(member)) => {
            depot.insert_typed(member);
        }
        Ok(None) => {
            res.render(unknown_token());
            ctrl.skip_rest();
        }
        Err(e) => {
            res.render(e);
            ctrl.skip_rest();
        }
    }
}

// (`member_only`, the hoop in front, found the member.)
/// Posts the body as a message from the member the cookie or bearer token names.
#[endpoint(
    request_body(content = String, content_type = "text/plain", description = "The message: 1 to 2000 bytes of UTF-8, not only white space."),
    status_codes(202, 400, 401, 403, 408, 413, 429, 503),
    responses((status_code = 202, description = "Taken: it arrives on every stream with this id.", body = Accepted)),
    security(("member_cookie" = []), ("member_token" = []))
)]
async fn post_message(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) -> Result<(), ApiError> {
    let room = room(depot)?;
    let from = depot.get_typed::<Member>().map_err(|_| unknown_token())?;
    let from = from.clone();
    let text = body::text(req, MAX_MESSAGE_BYTES).await?;
    if text.trim().is_empty() {
        let message = "The message is only white space.";
        return Err(ApiError::bad_request("empty-message", message));
    }
    let ip = client_of(req, depot);
    let id = room.post(&from, text, ip).await?;
    res.status_code(StatusCode::ACCEPTED);
    res.render(Json(Accepted { id }));
    Ok(())
}

/// The room, which [`router`] puts in the `Depot`.
fn room(depot: &Depot) -> Result<Arc<ChatRoom>, ApiError> {
    depot
        .get_typed::<Arc<ChatRoom>>()
        .cloned()
        .map_err(|_| internal())
}

/// The member cookie's name: under TLS a `__Host-` cookie, which browsers accept only
/// from a secure origin, for the whole host, so a plain-HTTP page cannot plant one.
fn cookie_name(req: &Request) -> &'static str {
    if req.scheme() == &Scheme::HTTPS {
        "__Host-chat-member"
    } else {
        "chat-member"
    }
}

/// The member token a request carries: `Authorization: Bearer`, else the cookie (see
/// [`presented_token`]). Never a query parameter: URLs end up in access logs and
/// browser history.
fn member_token(req: &Request) -> Option<String> {
    presented_token(req, cookie_name(req)).map(str::to_owned)
}

/// Sets the member cookie: HttpOnly (scripts cannot read it), SameSite=Strict (other
/// sites cannot send it), for as long as a member is remembered.
fn set_member_cookie(req: &Request, res: &mut Response, token: &str) {
    let secure = req.scheme() == &Scheme::HTTPS;
    let max_age = i64::try_from(FORGET_AFTER.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((cookie_name(req), token.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(salvo::http::cookie::time::Duration::seconds(max_age))
        .build();
    res.add_cookie(cookie);
}

/// The room: its log, who its members are, who is online, and how fast they join and
/// post.
pub struct ChatRoom {
    log: Publisher<ChatEvent>,
    members: Arc<dyn Members>,
    presence: Arc<dyn Presence>,
    posts: PerKey<String>,
    posts_per_ip: PerClient,
    joins_per_ip: PerClient,
    limits: RoomLimits,
}

impl ChatRoom {
    /// A room in this process only, on `hub`.
    pub fn in_memory(hub: Hub<ChatEvent>, limits: RoomLimits) -> Arc<Self> {
        let members = MemoryMembers::new(MAX_MEMBERS, limits.forget_silent_after);
        let presence = MemoryPresence::new(hub.clone());
        let log = Publisher::in_memory(hub);
        Self::new(log, Arc::new(members), Arc::new(presence), limits)
    }

    /// A room publishing through `log`, with these members and presence.
    pub fn new(
        log: Publisher<ChatEvent>,
        members: Arc<dyn Members>,
        presence: Arc<dyn Presence>,
        limits: RoomLimits,
    ) -> Arc<Self> {
        let per_second = |n: u32| f64::from(n);
        let room = Arc::new(Self {
            log,
            members,
            presence,
            posts: PerKey::new(limits.post_burst, per_second(limits.posts_per_second)),
            posts_per_ip: PerClient::new(
                limits.ip_post_burst,
                per_second(limits.ip_posts_per_second),
            ),
            joins_per_ip: PerClient::new(
                limits.join_burst,
                per_second(limits.joins_per_minute) / 60.0,
            ),
            limits,
        });
        tokio::spawn(forget_expired(Arc::downgrade(&room)));
        room
    }

    /// The room's history.
    pub fn hub(&self) -> &Hub<ChatEvent> {
        self.log.hub()
    }

    /// How many members are held in memory (`None` with Redis), for tests.
    pub fn members_remembered(&self) -> Option<usize> {
        self.members.remembered()
    }

    /// How many members' post allowances are held, for tests.
    pub fn post_allowances(&self) -> usize {
        self.posts.len()
    }

    /// Who is online now, by name.
    pub async fn online(&self) -> Result<Vec<User>, RoomError> {
        let mut users = self.presence.online().await?;
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(users)
    }

    /// Opens a stream for the member `token` names, or for a new member called `name`
    /// (within `ip`'s join allowance, and only when `may_issue`: the request came from
    /// this server's own page). A member's first open stream anywhere announces `join`;
    /// a second tab does not.
    async fn join(
        self: &Arc<Self>,
        token: Option<&str>,
        name: Option<&str>,
        ip: Option<IpAddr>,
        may_issue: bool,
    ) -> Result<Joined, ApiError> {
        let known = match token {
            Some(token) => self.members.find(&token_key(token)).await?,
            None => None,
        };
        let (token, user) = match (known, token) {
            (Some((user, _)), Some(token)) => (token.to_owned(), user),
            _ => self.add_member(name, ip, may_issue).await?,
        };
        // The guard first: if the enter fails, or this request is cancelled while it is
        // on its way (the client went away), dropping the guard takes it back.
        let stream = MemberStream {
            room: Arc::clone(self),
            key: token_key(&token),
            user,
            id: random_token(),
        };
        self.presence.enter(&stream.id, &stream.user).await?;
        let online = self.online().await?;
        Ok(Joined {
            stream,
            token,
            online,
        })
    }

    /// A new member called `name`, and their token.
    async fn add_member(
        &self,
        name: Option<&str>,
        ip: Option<IpAddr>,
        may_issue: bool,
    ) -> Result<(String, User), ApiError> {
        let Some(name) = name else {
            let message = "That token is not a member's; join again with ?name=.";
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown-token",
                message,
            ));
        };
        let name = valid_name(name)?;
        if !may_issue {
            return Err(cross_origin());
        }
        if let Some(ip) = ip {
            self.joins_per_ip.try_take(ip).map_err(|wait| {
                let RoomLimits { join_burst, joins_per_minute, .. } = self.limits;
                let message = format!(
                    "At most {joins_per_minute} new members a minute (bursts of {join_burst}) from one address; wait a moment."
                );
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message)
                    .retry_after(wait)
            })?;
        }
        // 64 random bits: an id never repeats, across restarts and a flushed Redis,
        // where a counter would start again at 1 and give someone else's number.
        let user = User {
            id: random_token()[..16].to_owned(),
            name,
        };
        let token = random_token();
        self.members.add(&token_key(&token), &user).await?;
        Ok((token, user))
    }

    /// A stream of `user` closed (see [`MemberStream`]).
    async fn left(&self, stream: &str, user: &User, key: &str) {
        match self.presence.leave(stream, user).await {
            // Their last stream anywhere: one who never posted is forgotten soon.
            Ok(true) => {
                if let Err(e) = self.members.release(key).await {
                    tracing::warn!("cannot release a member: {e}");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!("cannot publish a leave: {e}"),
        }
    }

    /// The member `token` names, if any.
    async fn member(&self, token: &str) -> Result<Option<Member>, ApiError> {
        let key = token_key(token);
        let found = self.members.find(&key).await?;
        Ok(found.map(|(user, posted)| Member { user, key, posted }))
    }

    /// Posts `text` as `from`, within the member's and `ip`'s allowances.
    async fn post(
        &self,
        from: &Member,
        text: String,
        ip: Option<IpAddr>,
    ) -> Result<EventId, ApiError> {
        let RoomLimits {
            post_burst,
            posts_per_second,
            ip_post_burst,
            ip_posts_per_second,
            ..
        } = self.limits;
        let too_fast = |wait, message: String| {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message).retry_after(wait)
        };
        if let Some(ip) = ip {
            self.posts_per_ip.try_take(ip).map_err(|wait| {
                too_fast(wait, format!("At most {ip_posts_per_second} messages a second (bursts of {ip_post_burst}) from one address; wait a moment."))
            })?;
        }
        self.posts.try_take(&from.user.id).map_err(|wait| {
            too_fast(wait, format!("At most {posts_per_second} messages a second (bursts of {post_burst}); wait a moment."))
        })?;
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let message = ChatEvent::Message {
            from: from.user.clone(),
            text,
            at,
        };
        let id = self.log.publish(message).await?;
        if !from.posted {
            // Kept for a day now, not forgotten a minute after their stream closes.
            if let Err(e) = self.members.posted(&from.key, &from.user).await {
                tracing::warn!("cannot mark a member as posted: {e}");
            }
        }
        Ok(id)
    }
}

/// Frees forgotten members and refilled post allowances as time passes (every half of
/// `forget_silent_after`, at most every 10 s), for as long as the room exists: the
/// tables hold the members of the last day, not every join until a cap.
async fn forget_expired(room: Weak<ChatRoom>) {
    let Some(silent) = room.upgrade().map(|r| r.limits.forget_silent_after) else {
        return;
    };
    let every = (silent / 2).clamp(Duration::from_millis(50), Duration::from_secs(10));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(room) = room.upgrade() else { return };
        room.members.forget_expired();
        // An allowance that has refilled holds nothing worth keeping.
        room.posts.forget_refilled();
    }
}

/// A member's stream, from before it enters the presence: dropping this (the client
/// went away, or the join failed or was cancelled half-way) leaves, which counts only
/// if the enter did.
struct MemberStream {
    room: Arc<ChatRoom>,
    user: User,
    /// The member's [`token_key`].
    key: String,
    /// This stream's own id in the presence.
    id: String,
}

impl Drop for MemberStream {
    fn drop(&mut self) {
        let room = Arc::clone(&self.room);
        let (user, key, id) = (
            self.user.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.id),
        );
        // Drop cannot wait; the leave (a Redis call, with Redis) runs on its own.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { room.left(&id, &user, &key).await });
        }
    }
}

/// What a join gives the new stream.
struct Joined {
    stream: MemberStream,
    token: String,
    online: Vec<User>,
}

/// The member a request's token names, as [`member_only`] puts it in the `Depot`.
#[derive(Clone)]
struct Member {
    user: User,
    key: String,
    posted: bool,
}

/// How fast members join and post (`429` with `Retry-After` beyond).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RoomLimits {
    /// Messages a member may post at once.
    #[arg(long, env = "POST_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub post_burst: u32,
    /// Messages a second a member may post after the burst.
    #[arg(long, env = "POSTS_PER_SECOND", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub posts_per_second: u32,
    /// Messages one client address may post at once, all its members together (so
    /// cycling identities gains nothing).
    #[arg(long, env = "IP_POST_BURST", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub ip_post_burst: u32,
    /// Messages a second one client address may post after its burst.
    #[arg(long, env = "IP_POSTS_PER_SECOND", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub ip_posts_per_second: u32,
    /// New members one client address may make at once (reconnects do not count).
    #[arg(long, env = "JOIN_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub join_burst: u32,
    /// New members a minute one client address may make after its burst.
    #[arg(long, env = "JOINS_PER_MINUTE", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub joins_per_minute: u32,
    /// How long a member who never posted is remembered after their last stream closed.
    #[arg(skip = FORGET_SILENT_AFTER)]
    pub forget_silent_after: Duration,
}

impl Default for RoomLimits {
    fn default() -> Self {
        Self {
            post_burst: 10,
            posts_per_second: 5,
            ip_post_burst: 20,
            ip_posts_per_second: 10,
            join_burst: 10,
            joins_per_minute: 10,
            forget_silent_after: FORGET_SILENT_AFTER,
        }
    }
}

/// A member as everyone sees them. The id is random and never repeats (names do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// 16 hex digits, random.
    pub id: String,
    /// The display name: 1 to 32 characters, not unique.
    pub name: String,
}

/// What the room's history carries.
#[derive(Serialize, Deserialize)]
pub enum ChatEvent {
    Join(User),
    Leave(User),
    Message {
        from: User,
        text: String,
        at: String,
    },
}

impl HubEvent for ChatEvent {
    // Serialized once per event; the JSON escapes any line break in names or text.
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        let frame = Frame::new().id(&id.to_string())?;
        let frame = match self {
            ChatEvent::Join(user) => frame
                .event("join")?
                .json(&PresenceEvent { user: user.clone() })?,
            ChatEvent::Leave(user) => frame
                .event("leave")?
                .json(&PresenceEvent { user: user.clone() })?,
            ChatEvent::Message { from, text, at } => {
                let (from, text, at) = (from.clone(), text.clone(), at.clone());
                let message = Message { id, from, text, at };
                frame.event("message")?.json(&message)?
            }
        };
        Ok(frame.finish())
    }

    // "The last 50 messages" for a new member; joins and leaves come along in between.
    fn counts_as_recent(&self) -> bool {
        matches!(self, ChatEvent::Message { .. })
    }

    // Joins and leaves in a history of their own: a member reconnecting over and over
    // (which no join limit counts) never pushes a message out. A stream that resumes
    // past the oldest one kept may miss a few; its welcome lists who is online.
    fn kept_apart(&self) -> bool {
        !matches!(self, ChatEvent::Message { .. })
    }
}

/// The `data` of `event: join` and `event: leave`: a member's first stream opened, or
/// their last closed.
#[derive(Serialize, ToSchema)]
pub struct PresenceEvent {
    pub user: User,
}

/// The `data` of `event: message`.
#[derive(Serialize, ToSchema)]
pub struct Message {
    /// The message's event id (also its `id:`).
    pub id: EventId,
    /// Who posted it: the member the token named, never taken from the request.
    pub from: User,
    pub text: String,
    /// When the room took it (RFC 3339, milliseconds, UTC).
    pub at: String,
}

/// The `data` of `event: welcome`, the first event of every stream (built for that
/// stream alone: it holds the member's secret).
#[derive(Serialize, ToSchema)]
pub struct Welcome {
    /// Who this stream's member is.
    pub user: User,
    /// The member's secret (also set as an HttpOnly cookie): post with it as `Authorization: Bearer`.
    pub token: String,
    /// Who is online, by name.
    pub online: Vec<User>,
}

/// What `POST /chat/messages` answers.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The message's event id: it arrives on the stream with this id.
    pub id: EventId,
}

/// Why the room's members or presence could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// As many members as the room holds are remembered.
    #[error("the room has as many members as it can hold")]
    Full,
    /// The store every instance shares (Redis) could not answer.
    #[error("the room's shared members and presence are unreachable: {0}")]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
    /// A join or leave could not be published.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "room-full",
                "The room has as many members as it can hold.",
            ),
            RoomError::Unavailable(e) => {
                tracing::warn!("members or presence unreachable: {e}");
                let message = "The room's shared members and presence (Redis) are unreachable; try again shortly.";
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "backend-unavailable",
                    message,
                )
                .retry_after(Duration::from_secs(1))
            }
            RoomError::Publish(e) => e.into(),
        }
    }
}

/// A display name: 1 to 32 characters after trimming, nothing hidden (see
/// [`sse_shared::names`]).
pub fn valid_name(name: &str) -> Result<String, ApiError> {
    display_name(name, MAX_NAME_CHARS)
        .map_err(|why| ApiError::bad_request("invalid-name", format!("The name {why}.")))
}

fn unknown_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Post with the member cookie from joining, or the welcome token as Authorization: Bearer <token>.",
    )
}

fn internal() -> ApiError {
    ApiError::internal("The room could not take this.")
}
