//! The contract each example serves at `GET /openapi.json`: an OpenAPI 3.2 document made
//! by salvo's own `salvo-oapi` from the example's `#[endpoint]` handlers, with what the
//! document cannot learn from them:
//!
//! - each event stream's events, as OpenAPI 3.2's `itemSchema` for `text/event-stream`
//!   ([`StreamDoc`], [`EventDoc`]): one `oneOf` branch per event name, with
//!   the `data` typed by the Rust type the code serializes (`#[derive(ToSchema)]`) as
//!   `contentMediaType: application/json` + `contentSchema`, and the `id` format;
//! - `GET /healthz` and `GET /metrics`, which [`crate::routes::service`] adds to every
//!   server.
//!
//! ```ignore
//! let doc = OpenApi::new("sse-counter", env!("CARGO_PKG_VERSION"));
//! let count = StreamDoc {
//!     path: "/events",
//!     ids: Some(("The count.", "^[0-9]+$")),
//!     events: vec![EventDoc::text_matching(None, "The next number.", "^[0-9]+$")],
//! };
//! let router = openapi::serve(doc, router, &[count]); // and GET /openapi.json
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

/// The ids of a stream from the shared hub ([`crate::hub::EventId`]), for
/// [`StreamDoc::ids`].
pub const HUB_IDS: (&str, &str) = (
    "MS-N: the hub's start in milliseconds (or a Redis stream entry's) and a count; send it back as Last-Event-ID to resume after it.",
    "^[0-9]+(-[0-9]+)?$",
);

/// One kind of event a stream sends.
pub struct EventDoc {
    name: Option<&'static str>,
    /// With `name` `None`: any name but these (a publisher chooses it), not `message`.
    any_name_but: Option<&'static [&'static str]>,
    description: &'static str,
    data: DataDoc,
}

enum DataDoc {
    /// JSON, of the schema this registers in the components.
    Json(fn(&mut Components) -> RefOr<Schema>),
    /// Plain text, matching this pattern if any.
    Text(Option<&'static str>),
}

impl EventDoc {
    /// An event named `name` (`None`: unnamed, which a browser dispatches as
    /// `message`) whose `data` is `T` as JSON.
    pub fn json<T: ToSchema>(name: Option<&'static str>, description: &'static str) -> Self {
        let data = DataDoc::Json(T::to_schema);
        Self {
            name,
            any_name_but: None,
            description,
            data,
        }
    }

    /// An event whose `data` is any text.
    pub fn text(name: Option<&'static str>, description: &'static str) -> Self {
        let data = DataDoc::Text(None);
        Self {
            name,
            any_name_but: None,
            description,
            data,
        }
    }

    /// An event whose `data` is text matching the regular expression `pattern`.
    pub fn text_matching(
        name: Option<&'static str>,
        description: &'static str,
        pattern: &'static str,
    ) -> Self {
        let data = DataDoc::Text(Some(pattern));
        Self {
            name,
            any_name_but: None,
            description,
            data,
        }
    }

    /// An event whose name is any but `reserved` (or none), with any text as `data`:
    /// what a publisher sends through a hub.
    pub fn text_any_name_but(reserved: &'static [&'static str], description: &'static str) -> Self {
        Self {
            name: None,
            any_name_but: Some(reserved),
            description,
            data: DataDoc::Text(None),
        }
    }

    /// This event's branch of the stream's `itemSchema`: `event` (required, with this
    /// name; for an unnamed event absent or `message`), `data`, and `id` when `ids`.
    fn item(&self, components: &mut Components, ids: Option<&Object>) -> Object {
        let event = match self.any_name_but {
            // `not` is a JSON Schema keyword salvo-oapi has no builder for.
            Some(reserved) => Object::new()
                .schema_type(BasicType::String)
                .add_extension("not", serde_json::json!({ "enum": reserved })),
            None => Object::new()
                .schema_type(BasicType::String)
                .enum_values([self.name.unwrap_or("message")]),
        };
        let data = match &self.data {
            DataDoc::Json(schema) => Object::new()
                .schema_type(BasicType::String)
                .content_media_type("application/json")
                .add_extension("contentSchema", serde_json::json!(schema(components))),
            DataDoc::Text(None) => Object::new().schema_type(BasicType::String),
            DataDoc::Text(Some(pattern)) => Object::new()
                .schema_type(BasicType::String)
                .pattern(*pattern),
        };
        let mut item = Object::new()
            .schema_type(BasicType::Object)
            .description(self.description)
            .property("event", event)
            .property("data", data)
            .required("data");
        if self.name.is_some() {
            item = item.required("event");
        }
        if let Some(ids) = ids {
            item = item.property("id", ids.clone());
        }
        item
    }
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
        let ids = self.ids.map(|(description, pattern)| {
            let id = Object::new()
                .schema_type(BasicType::String)
                .description(description);
            if pattern.is_empty() {
                id
            } else {
                id.pattern(pattern)
            }
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
    let text = Content::new(Object::new().schema_type(BasicType::String));
    let ok = Response::new(description).add_content("text/plain", text);
    let mut operation = salvo_oapi::Operation::new();
    operation.responses.insert("200", ok);
    PathItem::new(PathItemType::Get, operation)
}
