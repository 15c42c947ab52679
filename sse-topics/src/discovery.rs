//! Discovery (Mercure's "Discovery" section): `Link: <hub>; rel="mercure"` on the page
//! and every resource, the hub's protected resource metadata (RFC 9728), and a sample
//! resource that advertises its own topic.

use std::sync::Arc;

use salvo::http::header::{CONTENT_TYPE, HeaderValue};
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::Serialize;
use sse_shared::error::ApiError;

use super::{TopicHub, auth, state};

/// A resource whose updates the hub carries, advertising the hub (`Link:
/// rel="mercure"`, added by [`advertise`]) and its own topic (`rel="self"`).
#[endpoint(parameters(("id" = u32, Path, description = "Any number.")))]
pub(crate) async fn book(req: &mut Request, res: &mut Response) -> Json<Book> {
    let id = req.param::<u32>("id").unwrap_or(1);
    let topic = format!("/books/{id}");
    if let Ok(link) = HeaderValue::from_str(&format!("<{topic}>; rel=\"self\"")) {
        res.headers_mut().append("link", link);
    }
    let title = format!("Book {id}");
    Json(Book { id: topic, title })
}

/// A sample resource (JSON-LD).
#[derive(Serialize, ToSchema)]
struct Book {
    /// Its topic.
    #[serde(rename = "@id")]
    id: String,
    title: String,
}

/// A hoop that advertises the hub: `Link: <hub>; rel="mercure"` on the page and every
/// resource (Mercure's discovery; the subscriptions API sets its own, with the cursor),
/// and where its metadata is in every `WWW-Authenticate: Bearer` challenge (RFC 9728).
#[handler]
pub(crate) async fn advertise(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let hub = depot.get_typed::<Arc<TopicHub>>().ok().cloned();
    ctrl.call_next(req, depot, res).await;
    let Some(hub) = hub else { return };
    let headers = res.headers_mut();
    if let Some(challenge) = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
    {
        let params = challenge
            .strip_prefix("Bearer")
            .unwrap_or_default()
            .trim_start();
        let metadata = format!("resource_metadata=\"{}\"", hub.metadata_url());
        let challenge = match params {
            "" => format!("Bearer {metadata}"),
            params => format!("Bearer {params}, {metadata}"),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert("www-authenticate", value);
        }
    }
    let stream = headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let mercure = |v: &HeaderValue| v.to_str().is_ok_and(|v| v.contains("rel=\"mercure\""));
    let linked = headers.get_all("link").iter().any(mercure);
    let link = HeaderValue::from_str(&format!("<{}>; rel=\"mercure\"", hub.url()));
    if let (Ok(link), false, false) = (link, stream, linked) {
        headers.append("link", link);
    }
}

/// The hub's protected resource metadata (RFC 9728, as Mercure's Discovery section
/// describes it).
#[endpoint]
pub(crate) async fn resource_metadata(
    depot: &mut Depot,
) -> Result<Json<ResourceMetadata>, ApiError> {
    let hub = state(depot)?;
    let settings = &hub.settings;
    let resource = hub.audience();
    Ok(Json(ResourceMetadata {
        resource,
        authorization_details_types_supported: [auth::DETAIL_TYPE],
        bearer_methods_supported: ["header"],
        mercure_cookie: settings.cookie_name.clone(),
        mercure_subscriptions: settings.subscriptions.then_some(true),
    }))
}

/// RFC 9728 protected resource metadata, with Mercure's fields.
#[derive(Serialize, ToSchema)]
struct ResourceMetadata {
    /// The hub's URL (or the configured JWT audience).
    resource: String,
    authorization_details_types_supported: [&'static str; 1],
    bearer_methods_supported: [&'static str; 1],
    /// The cookie a token may come in.
    mercure_cookie: String,
    /// `true` when the subscriptions API is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    mercure_subscriptions: Option<bool>,
}
