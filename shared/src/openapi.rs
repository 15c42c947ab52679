//! The contract each example serves at `GET /openapi.json`: an OpenAPI 3.2 document made
//! by salvo's own `salvo-oapi` from the example's `#[endpoint]` handlers, with what the
//! document cannot learn from them:
//!
//! - each event stream's events, as OpenAPI 3.2's `itemSchema` for `text/event-stream`
//!   ([`StreamDoc`], [`EventDoc`]): one `oneOf` branch per event name, with
//!   the `data` typed by the Rust type the code serializes (`#[derive(ToSchema)]`) as
//!   `contentMediaType: application/json` + `contentSchema`, and the `id` format;
//! - `GET /healthz` and `GET /metrics`, which the `routes` module's `service` adds to every
//!   server.
//!
//! ```
//! use salvo::prelude::*;
//! use salvo_oapi::{OpenApi, endpoint};
//! use sse_shared::openapi::{self, EventDoc, StreamDoc};
//!
//! #[endpoint]
//! async fn events() {}
//!
//! let router = Router::with_path("events").get(events);
//! let doc = OpenApi::new("sse-counter", "1.0.0");
//! let count = || StreamDoc {
//!     path: "/events",
//!     ids: Some(("The count.", "^[0-9]+$")),
//!     events: vec![EventDoc::text(None, "The next number.", "^[0-9]+$")],
//! };
//! let document = openapi::document(doc.clone(), &router, &[count()]);
//! assert!(document.paths.contains_key("/events"));
//! let router = openapi::serve(doc, router, &[count()]); // and GET /openapi.json
//! # let _ = router;
//! ```

use salvo::Router;
use salvo_oapi::naming;
use salvo_oapi::schema::{Object, OneOf, Schema};
use salvo_oapi::{
    BasicType, Components, Content, OpenApi, OpenApiVersion, PathItem, PathItemType, RefOr,
    Response, ToSchema,
};

/// The path the document is served at.
pub const PATH: &str = "/openapi.json";

/// One kind of event a stream sends.
pub struct EventDoc {
    name: EventName,
    description: &'static str,
    data: EventData,
}

/// What an event's `event:` field is.
enum EventName {
    /// This name.
    Named(&'static str),
    /// None: a browser dispatches it as `message`.
    Unnamed,
    /// Any name (or none) but these: a publisher's choice.
    AnyBut(&'static [&'static str]),
}

/// What an event's `data:` is.
enum EventData {
    /// JSON of the schema this registers in the components.
    Json(fn(&mut Components) -> RefOr<Schema>),
    /// Text matching this pattern (`""`: any text).
    Text(&'static str),
}

impl EventDoc {
    /// An event named `name` (`None`: unnamed, which a browser dispatches as
    /// `message`) whose `data` is `T` as JSON.
    pub fn json<T: ToSchema>(name: Option<&'static str>, description: &'static str) -> Self {
        let name = name.map_or(EventName::Unnamed, EventName::Named);
        let data = EventData::Json(T::to_schema);
        Self {
            name,
            description,
            data,
        }
    }

    /// An event whose `data` is text matching the regular expression `pattern` (`""`:
    /// any text).
    pub fn text(
        name: Option<&'static str>,
        description: &'static str,
        pattern: &'static str,
    ) -> Self {
        let name = name.map_or(EventName::Unnamed, EventName::Named);
        let data = EventData::Text(pattern);
        Self {
            name,
            description,
            data,
        }
    }

    /// An event named anything but `reserved` (or nothing), with any text as `data`:
    /// what a publisher sends through a hub.
    pub fn any_name_but(reserved: &'static [&'static str], description: &'static str) -> Self {
        let (name, data) = (EventName::AnyBut(reserved), EventData::Text(""));
        Self {
            name,
            description,
            data,
        }
    }

    /// This event's branch of the stream's `itemSchema`: `event` (required when named;
    /// for an unnamed event absent or `message`), `data`, and `id` when `ids`.
    fn item(&self, components: &mut Components, ids: Option<&Object>) -> Object {
        let event = match self.name {
            EventName::Named(name) => string().enum_values([name]),
            EventName::Unnamed => string().enum_values(["message"]),
            // `not` is a JSON Schema keyword salvo-oapi has no builder for.
            EventName::AnyBut(reserved) => {
                string().add_extension("not", serde_json::json!({ "enum": reserved }))
            }
        };
        let data = match self.data {
            EventData::Json(schema) => string()
                .content_media_type("application/json")
                .add_extension("contentSchema", serde_json::json!(schema(components))),
            EventData::Text("") => string(),
            EventData::Text(pattern) => string().pattern(pattern),
        };
        let mut item = Object::new()
            .schema_type(BasicType::Object)
            .description(self.description)
            .property("event", event)
            .property("data", data)
            .required("data");
        if let EventName::Named(_) = self.name {
            item = item.required("event");
        }
        if let Some(ids) = ids {
            item = item.property("id", ids.clone());
        }
        item
    }
}

/// A string schema.
fn string() -> Object {
    Object::new().schema_type(BasicType::String)
}

/// An event stream: its path (a `GET` endpoint of the router), the format of its ids,
/// and the events it sends.
pub struct StreamDoc {
    /// The stream's path, as in the document (`/chat/events`).
    pub path: &'static str,
    /// How its `id:` fields look: a description and a pattern (`""`: any); `None` when it
    /// sends none.
    pub ids: Option<(&'static str, &'static str)>,
    /// Every kind of event it sends.
    pub events: Vec<EventDoc>,
}

impl StreamDoc {
    /// Documents the stream's `GET` `200` in `doc` (made by the endpoint when `doc` merged
    /// the router) as `text/event-stream` with an `itemSchema`.
    fn describe(&self, mut doc: OpenApi) -> OpenApi {
        let ids = self.ids.map(|(description, pattern)| match pattern {
            "" => string().description(description),
            _ => string().description(description).pattern(pattern),
        });
        let mut one_of = OneOf::new();
        for event in &self.events {
            one_of = one_of.item(event.item(&mut doc.components, ids.as_ref()));
        }
        let content = Content::default().item_schema(one_of);
        let response = Response::new(
            "An event stream: `retry:` first, `: keep-alive` comments while idle, and these events.",
        )
        .add_content("text/event-stream", content);
        if let Some(get) = doc
            .paths
            .get_mut(self.path)
            .and_then(|item| item.operations.get_mut(&PathItemType::Get))
        {
            get.responses.insert("200", response);
        }
        doc
    }
}

/// `router` with `GET /openapi.json` serving [`document`]`(doc, &router, streams)`.
pub fn serve(doc: OpenApi, router: Router, streams: &[StreamDoc]) -> Router {
    let doc = document(doc, &router, streams);
    router.push(doc.into_router(PATH))
}

/// `doc` as OpenAPI 3.2, with `router`'s endpoints, its event `streams`, `GET /healthz`
/// and `GET /metrics`.
pub fn document(doc: OpenApi, router: &Router, streams: &[StreamDoc]) -> OpenApi {
    // Schemas and operations named `Reset`, `join_stream`, not by module path: the names
    // a generated client's types get.
    naming::set_namer(naming::FlexNamer::new().short_mode(true));
    let mut doc = doc
        .openapi_version(OpenApiVersion::Version3_2)
        .merge_router(router);
    for stream in streams {
        doc = stream.describe(doc);
    }
    let metrics = "Prometheus text format: open streams, events published, frames written, streams dropped as too slow, rejected connections.";
    doc.add_path(
        "/healthz",
        text_get("Liveness: `200 ok` while the process serves."),
    )
    .add_path("/metrics", text_get(metrics))
}

/// A path whose `GET` answers text.
fn text_get(description: &str) -> PathItem {
    let text = Content::new(string());
    let ok = Response::new(description).add_content("text/plain", text);
    let mut operation = salvo_oapi::Operation::new();
    operation.responses.insert("200", ok);
    PathItem::new(PathItemType::Get, operation)
}
