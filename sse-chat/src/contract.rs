//! sse-chat's OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the routes
//! `#[endpoint]` describes, who may post, and what `GET /chat/events` sends (the types
//! the code serializes). Not part of the pattern: the chat works without it.

use salvo::Router;
use salvo_oapi::OpenApi;
use salvo_oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use sse_chat::{Message, PresenceEvent, Welcome};
use sse_shared::hub::EventId;
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;

/// `router` with `GET /openapi.json`, describing it.
pub fn serve(router: Router) -> Router {
    openapi::serve(document(), router, &[events()])
}

/// The document's own parts: who may post.
fn document() -> OpenApi {
    let cookie = ApiKeyValue::with_description(
        "chat-member",
        "Set by joining, HttpOnly (`__Host-chat-member` under TLS).",
    );
    let bearer = Http::new(HttpAuthScheme::Bearer).description("The welcome's `token`.");
    OpenApi::new("sse-chat", env!("CARGO_PKG_VERSION"))
        .add_security_scheme(
            "member_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(cookie)),
        )
        .add_security_scheme("member_token", SecurityScheme::Http(bearer))
}

/// What `GET /chat/events` sends.
fn events() -> StreamDoc {
    StreamDoc {
        path: "/chat/events",
        ids: Some(EventId::DOC),
        events: vec![
            EventDoc::json::<Welcome>(
                Some("welcome"),
                "First, on every stream (no id): who you are, your token, who is online.",
            ),
            EventDoc::json::<PresenceEvent>(Some("join"), "A member's first stream opened."),
            EventDoc::json::<PresenceEvent>(Some("leave"), "A member's last stream closed."),
            EventDoc::json::<Message>(
                Some("message"),
                "A message, in the one order every member sees.",
            ),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The stream cannot go on from the id sent back: what it names is gone, or was never issued.",
            ),
        ],
    }
}
