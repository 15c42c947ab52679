//! sse-topics' OpenAPI contract, served at `GET /openapi.json` by `main.rs`: the routes
//! `#[endpoint]` describes, how a token is presented, what the hub's stream sends, and
//! the subscriptions API's paths as Mercure names them. Not part of the pattern: the
//! hub works without it.

use salvo::Router;
use salvo_oapi::schema::Object;
use salvo_oapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use salvo_oapi::{BasicType, OpenApi, Parameter, ParameterIn, Required};
use sse_shared::openapi::{self, EventDoc, StreamDoc};
use sse_shared::resume::Reset;
use sse_topics::HUB_PATH;
use sse_topics::subscriptions::Subscription;

/// `router` with `GET /openapi.json`, describing it; `cookie_name` is the cookie a
/// token may come in (`--cookie-name`).
pub fn serve(router: Router, cookie_name: &str) -> Router {
    let doc = openapi::document(document(cookie_name), &router, &[updates()]);
    router.push(subscription_paths(doc).into_router(openapi::PATH))
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

/// The document's own parts: how a token is presented.
fn document(cookie_name: &str) -> OpenApi {
    let bearer = Http::new(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(
            "An access token (JWT, `typ: at+jwt`) whose `authorization_details` grant `publish` / `subscribe` (Mercure's Authorization; the 0.x `mercure` claim with --protocol-compat 8).",
        );
    let cookie =
        ApiKeyValue::with_description(cookie_name, "The same JWT in a cookie (for EventSource).");
    OpenApi::new("sse-topics", env!("CARGO_PKG_VERSION"))
        .add_security_scheme("bearer", SecurityScheme::Http(bearer))
        .add_security_scheme("cookie", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)))
}

/// What `GET /.well-known/mercure` sends.
fn updates() -> StreamDoc {
    StreamDoc {
        path: HUB_PATH,
        ids: Some((
            "The publisher's id if it gave one, else `#` and the hub's RUN-N; send it back as Last-Event-ID (or last_event_id) to resume after it.",
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
