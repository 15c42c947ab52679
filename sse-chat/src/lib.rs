//! # sse-chat: a chat room nobody can impersonate
//!
//! `GET /chat/events?name=alice` joins: the first event, `welcome`, carries the
//! member's id, a secret token and who is online; then come `join`, `leave` and
//! `message` events from the room's history. `POST /chat/messages` with
//! `Authorization: Bearer <token>` posts as the member the token names, and only as
//! them: the sender is never taken from the request.
//!
//! The tutorial's chat took the sender's id from the URL (anyone could post as anyone),
//! unwrapped a non-UTF-8 body into a panic, kept an unbounded queue per user, and
//! noticed a departed user only when someone next posted. Here: a token per member, a
//! bounded shared history instead of queues ([`sse_shared::hub`]), and a drop guard on
//! every stream, so `leave` goes out when a member's last stream closes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures_util::{StreamExt, stream};
use parking_lot::Mutex;
use salvo::http::StatusCode;
use salvo::prelude::*;
use serde::Serialize;
use sse_shared::names::display_name;
use sse_shared::page::{self, StaticFile};
use sse_shared::rate::TokenBucket;
use sse_shared::resume::last_event_id;
use sse_shared::secret::{bearer_token, random_token};
use sse_shared::stream::holding;
use sse_shared::{
    ApiError, EventId, Frame, FrameError, HistoryLimits, Hub, HubEvent, Start, Streams, body,
};

/// The longest message, in bytes of UTF-8.
pub const MAX_MESSAGE_BYTES: usize = 2000;
/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Messages a new member sees from before they joined.
pub const RECENT_MESSAGES: usize = 50;
/// Posting allowance per member: a burst of 10, then 5 a second.
const POST_BURST: u32 = 10;
const POSTS_PER_SECOND: u32 = 5;
/// How long a departed member's token stays valid for a reconnect.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most members remembered at once (online or recently departed).
const MAX_MEMBERS: usize = 100_000;

const FILES: [StaticFile; 2] = [
    StaticFile::style("chat.css", include_str!("../static/chat.css")),
    StaticFile::script("chat.js", include_str!("../static/chat.js")),
];

/// A member as everyone sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: u64,
    pub name: String,
}

/// What the room's history carries.
pub enum ChatEvent {
    Join(User),
    Leave(User),
    Message {
        from: User,
        text: String,
        at: String,
    },
}

#[derive(Serialize)]
struct Presence<'a> {
    user: &'a User,
}

#[derive(Serialize)]
struct MessageData<'a> {
    id: EventId,
    from: &'a User,
    text: &'a str,
    at: &'a str,
}

impl HubEvent for ChatEvent {
    // Serialized once per event; the JSON escapes any line break in names or text.
    fn frame(&self, id: EventId) -> Result<Bytes, FrameError> {
        let frame = Frame::new().id(&id.to_string())?;
        let frame = match self {
            ChatEvent::Join(user) => frame.event("join")?.json(&Presence { user })?,
            ChatEvent::Leave(user) => frame.event("leave")?.json(&Presence { user })?,
            ChatEvent::Message { from, text, at } => frame
                .event("message")?
                .json(&MessageData { id, from, text, at })?,
        };
        Ok(frame.finish())
    }

    // "The last 50 messages" for a new member; joins and leaves come along in between.
    fn counts_as_recent(&self) -> bool {
        matches!(self, ChatEvent::Message { .. })
    }
}

struct Member {
    user: User,
    token: String,
    open_streams: usize,
    posts: TokenBucket,
    left_at: Option<Instant>,
}

#[derive(Default)]
struct Members {
    by_id: HashMap<u64, Member>,
    by_token: HashMap<String, u64>,
    next_id: u64,
}

/// The room: its history and its members.
pub struct ChatRoom {
    hub: Hub<ChatEvent>,
    members: Mutex<Members>,
}

/// A member's stream is open; dropping this (the client went away) may make them leave.
struct OpenStream {
    room: Arc<ChatRoom>,
    user_id: u64,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.room.stream_closed(self.user_id);
    }
}

/// What a join gives the new stream.
struct Joined {
    user: User,
    token: String,
    online: Vec<User>,
    stream: OpenStream,
}

impl ChatRoom {
    /// An empty room keeping `history` for replay.
    pub fn new(history: HistoryLimits, streams: &Streams) -> Arc<Self> {
        Arc::new(Self {
            hub: Hub::new(history, streams.metrics().clone()),
            members: Mutex::new(Members::default()),
        })
    }

    /// The room's history, for tests and metrics.
    pub fn hub(&self) -> &Hub<ChatEvent> {
        &self.hub
    }

    /// Who is online now, by name.
    pub fn online(&self) -> Vec<User> {
        online(&self.members.lock())
    }

    /// Opens a stream for the member `token` names, or for a new member called `name`.
    /// A member's first open stream announces `join`; a second tab does not.
    fn join(self: &Arc<Self>, token: Option<&str>, name: Option<&str>) -> Result<Joined, ApiError> {
        let mut members = self.members.lock();
        let known = token.and_then(|t| members.by_token.get(t).copied());
        let id = match known {
            Some(id) => id,
            None => {
                let name = valid_name(name.ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unknown-token",
                        "That token is not a member's; join again with ?name=.",
                    )
                })?)?;
                forget_departed(&mut members);
                if members.by_id.len() >= MAX_MEMBERS {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "room-full",
                        "The room has as many members as it can hold.",
                    ));
                }
                members.next_id += 1;
                let id = members.next_id;
                let token = random_token();
                members.by_token.insert(token.clone(), id);
                members.by_id.insert(
                    id,
                    Member {
                        user: User { id, name },
                        token,
                        open_streams: 0,
                        posts: TokenBucket::new(POST_BURST, POSTS_PER_SECOND),
                        left_at: None,
                    },
                );
                id
            }
        };
        let member = members.by_id.get_mut(&id).ok_or_else(internal)?;
        member.open_streams += 1;
        member.left_at = None;
        let (user, token) = (member.user.clone(), member.token.clone());
        if member.open_streams == 1 {
            // Published under the members lock, so joins and leaves keep their order.
            self.hub
                .publish(ChatEvent::Join(user.clone()))
                .map_err(|_| internal())?;
        }
        Ok(Joined {
            online: online(&members),
            stream: OpenStream {
                room: Arc::clone(self),
                user_id: id,
            },
            user,
            token,
        })
    }

    fn stream_closed(&self, user_id: u64) {
        let mut members = self.members.lock();
        let Some(member) = members.by_id.get_mut(&user_id) else {
            return;
        };
        member.open_streams -= 1;
        if member.open_streams == 0 {
            member.left_at = Some(Instant::now());
            let user = member.user.clone();
            if let Err(e) = self.hub.publish(ChatEvent::Leave(user)) {
                tracing::error!("cannot publish a leave: {e}");
            }
        }
    }

    /// Posts `text` as the member `token` names.
    fn post(&self, token: &str, text: String) -> Result<EventId, ApiError> {
        let from = {
            let mut members = self.members.lock();
            let id = members
                .by_token
                .get(token)
                .copied()
                .ok_or_else(unknown_token)?;
            let member = members.by_id.get_mut(&id).ok_or_else(unknown_token)?;
            member.posts.try_take().map_err(|wait| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    format!("At most {POSTS_PER_SECOND} messages a second (bursts of {POST_BURST}); wait a moment."),
                )
                .retry_after(wait)
            })?;
            member.user.clone()
        };
        let at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        self.hub
            .publish(ChatEvent::Message { from, text, at })
            .map_err(|_| internal())
    }
}

fn online(members: &Members) -> Vec<User> {
    let mut users: Vec<User> = members
        .by_id
        .values()
        .filter(|m| m.open_streams > 0)
        .map(|m| m.user.clone())
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    users
}

/// Drops members who left long ago, so memory follows the members, not all who ever came.
fn forget_departed(members: &mut Members) {
    let now = Instant::now();
    let gone: Vec<u64> = members
        .by_id
        .values()
        .filter(|m| {
            m.left_at
                .is_some_and(|at| now.duration_since(at) > FORGET_AFTER)
        })
        .map(|m| m.user.id)
        .collect();
    for id in gone {
        if let Some(member) = members.by_id.remove(&id) {
            members.by_token.remove(&member.token);
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
        "Send the token from your welcome event as Authorization: Bearer <token>.",
    )
}

fn internal() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "The room could not take this.",
    )
}

/// The routes: `GET /chat/events`, `POST /chat/messages`, and the page.
pub fn router(streams: &Streams, room: &Arc<ChatRoom>) -> Router {
    Router::new()
        .push(
            Router::with_path("chat")
                .push(Router::with_path("events").get(JoinStream {
                    streams: streams.clone(),
                    room: Arc::clone(room),
                }))
                .push(Router::with_path("messages").post(PostMessage {
                    room: Arc::clone(room),
                })),
        )
        .push(page::routes(
            "SSE chat",
            include_str!("../static/index.html"),
            &FILES,
        ))
}

/// `GET /chat/events?name=..` or `?token=..`: join and stream.
struct JoinStream {
    streams: Streams,
    room: Arc<ChatRoom>,
}

#[derive(Serialize)]
struct Welcome<'a> {
    user: &'a User,
    token: &'a str,
    online: &'a [User],
}

#[handler]
impl JoinStream {
    async fn handle(&self, req: &mut Request, res: &mut Response) -> Result<(), ApiError> {
        let permit = self.streams.admit(req)?;
        let token = req.query::<String>("token");
        let name = req.query::<String>("name");
        let joined = self.room.join(token.as_deref(), name.as_deref())?;

        // The welcome holds this member's secret, so it is built for this stream alone
        // and never enters the shared history. It has no id: resuming is about the room.
        let welcome = Frame::new()
            .event("welcome")
            .and_then(|f| {
                f.json(&Welcome {
                    user: &joined.user,
                    token: &joined.token,
                    online: &joined.online,
                })
            })
            .map_err(|_| internal())?
            .finish();

        // A reconnect replays what it missed; a new stream gets the recent messages.
        let start = Start::resume_or(last_event_id(req), Start::Recent(RECENT_MESSAGES));
        let events = self.room.hub.subscribe(start).into_stream();
        let frames = stream::iter([welcome]).chain(events);
        // When the client goes away, `joined.stream` drops: maybe a `leave`.
        self.streams
            .respond(res, permit, holding(frames, joined.stream));
        Ok(())
    }
}

/// `POST /chat/messages`: post as the member the bearer token names.
struct PostMessage {
    room: Arc<ChatRoom>,
}

#[derive(Serialize)]
struct Accepted {
    id: EventId,
}

#[handler]
impl PostMessage {
    async fn handle(&self, req: &mut Request, res: &mut Response) -> Result<(), ApiError> {
        let token = bearer_token(req).ok_or_else(unknown_token)?.to_owned();
        let text = body::text(req, MAX_MESSAGE_BYTES).await?;
        if text.trim().is_empty() {
            return Err(ApiError::bad_request(
                "empty-message",
                "The message is only white space.",
            ));
        }
        let id = self.room.post(&token, text)?;
        res.status_code(StatusCode::ACCEPTED);
        res.render(Json(Accepted { id }));
        Ok(())
    }
}
