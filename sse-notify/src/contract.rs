//! sse-notify's OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the
//! routes `#[endpoint]` describes, the admin token and the session, and what
//! `GET /notifications/stream` sends (the types the code serializes). Not part of the
//! pattern: notifications work without it.

use salvo::Router;
use salvo_oapi::OpenApi;
use salvo_oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use sse_notify::NotificationData;
use sse_notify::session::SessionInfo;
use sse_shared::hub::EventId;
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;

/// `router` with `GET /openapi.json`, describing it.
pub fn serve(router: Router) -> Router {
    openapi::serve(document(), router, &[stream()])
}

/// The document's own parts: the admin token and the session.
fn document() -> OpenApi {
    let admin = Http::new(HttpAuthScheme::Bearer).description("The admin token (--admin-token).");
    let session = ApiKeyValue::with_description(
        "notify-session",
        "The session JWT POST /session sets, HttpOnly (`__Host-notify-session` under TLS); also accepted as Authorization: Bearer.",
    );
    OpenApi::new("sse-notify", env!("CARGO_PKG_VERSION"))
        .add_security_scheme("admin_token", SecurityScheme::Http(admin))
        .add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(session)),
        )
}

/// What `GET /notifications/stream` sends.
fn stream() -> StreamDoc {
    StreamDoc {
        path: "/notifications/stream",
        ids: Some(EventId::DOC),
        events: vec![
            EventDoc::json::<NotificationData>(
                Some("notification"),
                "A broadcast, or one for the session's user.",
            ),
            EventDoc::json::<SessionInfo>(
                Some("session-expired"),
                "The session ended: the stream ends; a reconnect without a fresh session sees broadcasts only.",
            ),
            EventDoc::json::<Reset>(
                Some("reset"),
                "The stream cannot go on from the id sent back: what it names is gone, or was never issued.",
            ),
        ],
    }
}
