//! Discovery (Mercure's "Discovery" section): where the hub is for each request,
//! `Link: <hub>; rel="mercure"` on the page and every resource, the hub's protected
//! resource metadata (RFC 9728), and a sample resource that advertises its own topic.

use salvo::http::StatusCode;
use salvo::http::header::{CONTENT_TYPE, HOST, HeaderValue, VARY};
use salvo::http::uri::Scheme;
use salvo::prelude::*;
use salvo_oapi::{ToSchema, endpoint};
use serde::Serialize;
use sse_shared::address::TrustedProxies;
use sse_shared::error::ApiError;
use url::Url;

use super::auth::Audience;
use super::{HUB_PATH, HubArgs, auth, state};

/// Where the hub is, as this request reached it ([`locate`] puts it in the `Depot`).
#[derive(Clone, Debug)]
pub struct HubUrl(pub Url);

impl HubUrl {
    /// Where the hub's protected resource metadata is: its URL's path under
    /// `/.well-known/oauth-protected-resource` (RFC 9728).
    pub fn metadata(&self) -> String {
        let path = format!("/.well-known/oauth-protected-resource{}", self.0.path());
        self.0.join(&path).map_or(path, |url| url.to_string())
    }
}

/// A hoop that puts where the hub is ([`HubUrl`]) and what tokens must name
/// ([`Audience`]) in the `Depot`: `--hub-url` when it is pinned, else, as Mercure 1.0
/// derives it, the request's origin and `/.well-known/mercure`, so a hub reached on
/// several ports or names tells each client the one it used. With `--public-url`, a
/// request for an origin not listed is refused (`421`) before anything else runs.
#[handler]
pub(crate) async fn locate(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let located = state(depot).and_then(|hub| {
        let url = hub_url(&hub.settings, req, depot)?;
        let audience = hub.settings.jwt_audience.clone();
        Ok((audience.unwrap_or_else(|| url.to_string()), url))
    });
    match located {
        Ok((audience, url)) => {
            depot.insert_typed(Audience(audience));
            depot.insert_typed(HubUrl(url));
        }
        Err(e) => {
            res.render(e);
            ctrl.skip_rest();
        }
    }
}

/// The hub's URL for `req`: `--hub-url`, else its origin's `/.well-known/mercure`;
/// `421` for an origin `--public-url` does not list.
fn hub_url(settings: &HubArgs, req: &Request, depot: &Depot) -> Result<Url, ApiError> {
    let pinned = settings.hub_url.as_ref();
    if let (Some(pinned), true) = (pinned, settings.public_urls.is_empty()) {
        return Ok(pinned.clone()); // pinned, and any origin answered: no Host to read
    }
    // The request's origin, read once: checked against the list, and the URL's base.
    let origin = request_origin(req, depot)?;
    let listed = |url: &Url| url.origin() == origin.origin();
    if !settings.public_urls.is_empty() && !settings.public_urls.iter().any(listed) {
        let origin = origin.origin().ascii_serialization();
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected-request",
            format!("This hub does not answer for {origin} (see --public-url)."),
        ));
    }
    match pinned {
        Some(pinned) => Ok(pinned.clone()),
        None => origin.join(HUB_PATH).map_err(|_| invalid_host()),
    }
}

/// `scheme://host[:port]/` as the client reached this server: `https` over TLS, or
/// when a trusted proxy (`--trusted-proxies`) says so in `X-Forwarded-Proto` (its last
/// value: the one the proxy wrote); the host from the request's target (HTTP/2's
/// `:authority`, an absolute-form target) or else its one `Host`. A proxy in front must
/// pass the client's `Host` on (nginx: `proxy_set_header Host $http_host`). `400` for a
/// host that is not a host name or address with an optional port, for two `Host`
/// headers, and for a `Host` that is not the target's host: where two parts of a request
/// name the host, a proxy may read the other one.
fn request_origin(req: &Request, depot: &Depot) -> Result<Url, ApiError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(one), None) => Some(one.to_str().map_err(|_| invalid_host())?),
        (Some(_), Some(_)) => return Err(invalid_host()),
    };
    let host = match (req.uri().authority().map(|a| a.as_str()), header) {
        (Some(target), Some(header)) if !target.eq_ignore_ascii_case(header) => {
            return Err(invalid_host());
        }
        (Some(target), _) => target,
        (None, Some(header)) => header,
        (None, None) => return Err(invalid_host()),
    };
    let trusted = depot.get_typed::<TrustedProxies>().map(|t| t.0.as_slice());
    let peer = req.remote_addr().ip().map(|ip| ip.to_canonical());
    let from_proxy = peer.is_some_and(|peer| {
        trusted
            .unwrap_or_default()
            .iter()
            .any(|p| p.to_canonical() == peer)
    });
    let forwarded = req
        .headers()
        .get_all("x-forwarded-proto")
        .iter()
        .next_back();
    let forwarded_https = from_proxy
        && forwarded
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("https"));
    let scheme = match req.scheme() == &Scheme::HTTPS || forwarded_https {
        true => "https",
        false => "http",
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b);
    if host.is_empty() || host.len() > 255 || !host.bytes().all(allowed) {
        return Err(invalid_host());
    }
    Url::parse(&format!("{scheme}://{host}/")).map_err(|_| invalid_host())
}

fn invalid_host() -> ApiError {
    ApiError::bad_request(
        "invalid-host",
        "The request's Host is not a host name or address (with an optional port).",
    )
}

// The `rel="mercure"` link is `advertise`'s.
/// A resource whose updates the hub carries, advertising the hub (`Link:
/// rel="mercure"`) and its own topic (`rel="self"`).
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
    ctrl.call_next(req, depot, res).await;
    let Ok(hub) = depot.get_typed::<HubUrl>() else {
        return;
    };
    let derived = state(depot).is_ok_and(|topics| topics.settings.hub_url.is_none());
    let headers = res.headers_mut();
    if derived {
        // What this answer says of the hub follows the request: a cache must not hand
        // it to a request for another host.
        headers.append(VARY, HeaderValue::from_static("host, x-forwarded-proto"));
    }
    if let Some(challenge) = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
    {
        let params = challenge
            .strip_prefix("Bearer")
            .unwrap_or_default()
            .trim_start();
        let metadata = format!("resource_metadata=\"{}\"", hub.metadata());
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
    let link = HeaderValue::from_str(&format!("<{}>; rel=\"mercure\"", hub.0));
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
    let audience = depot.get_typed::<Audience>().map(|a| a.0.clone());
    let resource = audience.map_err(|_| ApiError::internal("The hub is not located."))?;
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
