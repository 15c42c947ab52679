//! Why a request was refused: the family's JSON errors, and the `WWW-Authenticate:
//! Bearer` challenges Mercure (RFC 6750) asks for when it is about the token.

use salvo::http::StatusCode;
use salvo::http::header::{AUTHORIZATION, HeaderValue};
use salvo::prelude::*;
use salvo_oapi::{Components, EndpointOutRegister, Operation};
use sse_shared::error::ApiError;
use sse_shared::secret::{bearer_token, cookie_once};

use super::HubArgs;
use super::auth::{LEGACY_COOKIE, LEGACY_QUERY};
use super::matcher::MatcherError;

/// Why a request was refused: the family's JSON error, with the `WWW-Authenticate`
/// challenge Mercure (RFC 6750) asks for when it is about the token.
#[derive(Debug)]
pub enum Refusal {
    Api(ApiError),
    Bearer { error: ApiError, challenge: String },
}

impl Refusal {
    /// `401` (no `error`: no token was given) or, with `insufficient_scope`, `403`.
    pub(crate) fn bearer(error: Option<&str>, message: &str) -> Self {
        let (status, code, challenge) = match error {
            None => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Bearer".to_owned(),
            ),
            Some(e) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("Bearer error=\"{e}\""),
            ),
        };
        Refusal::Bearer {
            error: ApiError::new(status, code, message),
            challenge,
        }
    }
}

/// `400` with `error="invalid_request"` when the token's presentation is malformed or
/// ambiguous: an `Authorization` header that is not exactly one `Bearer <token>` (RFC
/// 6750), or the token's cookie more than once or under an encoded spelling of its name
/// (`secret::cookie_once`: a sibling domain can add one, and which one counts would be
/// the order the browser sent them in). With `--protocol-compat 8`,
/// the same for the 0.x cookie and the `authorization` query parameter.
pub(crate) fn refuse_malformed_presentation(
    req: &Request,
    settings: &HubArgs,
) -> Result<(), Refusal> {
    let headers = req.headers().get_all(AUTHORIZATION).iter().count();
    let header_ok = headers == 0 || (headers == 1 && bearer_token(req).is_some());
    let mut once = header_ok && cookie_once(req, &settings.cookie_name).is_ok();
    if settings.compat() {
        let query = req.uri().query().unwrap_or_default().as_bytes();
        let params = url::form_urlencoded::parse(query);
        let tokens = params.filter(|(name, _)| name == LEGACY_QUERY).count();
        once &= tokens <= 1 && cookie_once(req, LEGACY_COOKIE).is_ok();
    }
    if once {
        return Ok(());
    }
    let message =
        "Present the access token once: one Authorization: Bearer <token> header, or one cookie.";
    Err(Refusal::Bearer {
        error: ApiError::bad_request("invalid-request", message),
        challenge: "Bearer error=\"invalid_request\"".to_owned(),
    })
}

/// `400` for a matcher the hub will not take: `matcher-too-costly` for one past the
/// compile budget, `invalid-matcher` for the others.
pub(crate) fn matcher_refused(e: MatcherError) -> ApiError {
    let code = match e {
        MatcherError::TooCostly(_) => "matcher-too-costly",
        _ => "invalid-matcher",
    };
    ApiError::bad_request(code, e.to_string())
}

pub(crate) fn invalid_token() -> Refusal {
    let message =
        "The access token is not valid here (signature, type, expiry, audience, issuer or grants).";
    Refusal::Bearer {
        error: ApiError::new(StatusCode::UNAUTHORIZED, "invalid-token", message),
        challenge: "Bearer error=\"invalid_token\"".to_owned(),
    }
}

/// A refusal is the family's JSON error (see [`ApiError`]'s statuses).
impl EndpointOutRegister for Refusal {
    fn register(components: &mut Components, operation: &mut Operation) {
        ApiError::register(components, operation);
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl Scribe for Refusal {
    fn render(self, res: &mut Response) {
        match self {
            Refusal::Api(e) => e.render(res),
            Refusal::Bearer { error, challenge } => {
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert("www-authenticate", value);
                }
                error.render(res);
            }
        }
    }
}
