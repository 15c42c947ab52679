//! Who a stream belongs to: a JWT (HS256) whose `sub` names the user and whose `exp`
//! ends the session, the model SSE hubs such as Mercure use.
//!
//! Your app's login issues the token (the README shows how); `POST /session` stands in
//! for that login here. A browser carries it in an HttpOnly, SameSite=Strict cookie
//! (`EventSource` cannot send headers; `Secure` and a `__Host-` name under TLS); other
//! clients send `Authorization: Bearer`. Never in a URL: URLs end up in proxy logs and
//! browser history. Salvo's `JwtAuth` hoop reads and checks it into the `Depot`.
//!
//! Tokens of your identity provider work too (`--jwt-issuer NAME=pem:PATH` or
//! `NAME=jwks:URL`, RS256, ES256, EdDSA...: [`Sessions::accepting`]): each is checked
//! only with its issuer's keys (`sse_shared::issuers`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, TokenData, Validation};
use salvo::http::cookie::{Cookie, SameSite};
use salvo::jwt_auth::{HeaderFinder, JwtAuth, JwtAuthDecoder, JwtAuthDepotExt, JwtTokenFinder};
use salvo::prelude::*;
use salvo_oapi::ToSchema;
use serde::{Deserialize, Serialize};
use sse_shared::frame::Frame;
use sse_shared::issuers::Issuers;
use sse_shared::names::display_name;
use sse_shared::secret::cookie_once;

use super::MAX_USER_CHARS;

/// The shortest secret accepted: HS256 is only as strong as its key (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a session token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// When the session ends, in seconds since the Unix epoch.
    pub exp: u64,
    /// Who the token is for (`--jwt-audience`), when the service is given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// Whose a session is, as `GET /session`, `POST /session` and `event: session-expired`
/// say it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The user; `null` for no valid session.
    pub user: Option<String>,
    /// When the session ends, in seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

impl From<&Claims> for SessionInfo {
    fn from(claims: &Claims) -> Self {
        Self {
            user: Some(claims.sub.clone()),
            exp: Some(claims.exp),
        }
    }
}

/// The JWT secret is too short to sign with.
#[derive(Debug, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_BYTES} bytes")]
pub struct SecretTooShort;

/// Issues session tokens under one secret, and checks them and your identity
/// provider's.
pub struct Sessions {
    secret: Vec<u8>,
    /// Who issues the tokens accepted: this service's secret, unless told otherwise.
    issuers: Issuers,
    /// The `aud` every token must name (`None`: tokens naming any are refused).
    audience: Option<String>,
    /// Under TLS the cookie is `Secure` and named `__Host-...`, which browsers accept
    /// only from a secure origin, for the whole host, set by the host itself.
    tls: bool,
    lifetime: Duration,
}

impl Sessions {
    pub fn new(secret: &[u8], tls: bool, lifetime: Duration) -> Result<Self, SecretTooShort> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort);
        }
        Ok(Self {
            secret: secret.to_vec(),
            issuers: Issuers::default().with_secret(None, secret),
            audience: None,
            tls,
            lifetime,
        })
    }

    /// Accepts the tokens of `issuers` (see `Issuers::from_args`, which keeps this
    /// service's secret among them) in place of only this service's own.
    pub fn accepting(mut self, issuers: Issuers) -> Self {
        self.issuers = issuers;
        self
    }

    /// Every token must say it is for `audience` (`aud`), as an identity provider's
    /// access tokens do; this service's own sessions say so too.
    pub fn for_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.tls {
            "__Host-notify-session"
        } else {
            "notify-session"
        }
    }

    /// The hoop that puts a valid token's claims in the `Depot` (see [`user`]). It never
    /// refuses: a missing, forged or expired token is nobody, who sees broadcasts only.
    /// The bearer header is read first, then the cookie (`secret::presented_token`'s
    /// rule): a stale cookie never shadows a bearer token.
    pub fn hoop(&self) -> JwtAuth<Claims, StrictDecoder> {
        // The algorithm is the key's (HS256 for the secret; `none` is never one);
        // `exp` and `sub` required, `nbf` honoured; no leeway, so a session ends
        // exactly at `exp`.
        let mut validation = Validation {
            leeway: 0,
            validate_nbf: true,
            ..Validation::default()
        };
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".into());
        }
        let decoder = StrictDecoder {
            issuers: self.issuers.clone(),
            validation,
        };
        JwtAuth::new(decoder)
            .finders(vec![
                Box::new(HeaderFinder::new()),
                Box::new(CookieOnce(self.cookie_name())),
            ])
            .force_passed(true)
    }

    /// A token for `user`, valid for the configured lifetime: what your app's login
    /// would issue.
    pub fn issue(&self, user: &str) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user.to_owned(),
            exp: unix_now().saturating_add(self.lifetime.as_secs()),
            aud: self.audience.clone().map(serde_json::Value::String),
        };
        let key = EncodingKey::from_secret(&self.secret);
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)?;
        Ok((token, claims))
    }

    /// Sets the session cookie holding `token`; the browser drops it when it expires.
    pub fn set_cookie(&self, res: &mut Response, token: String) {
        let seconds = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        res.add_cookie(self.cookie(token, seconds));
    }

    /// Removes the session cookie (signing out).
    pub fn clear_cookie(&self, res: &mut Response) {
        res.add_cookie(self.cookie(String::new(), 0));
    }

    fn cookie(&self, value: String, max_age_secs: i64) -> Cookie<'static> {
        Cookie::build((self.cookie_name(), value))
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.tls)
            .path("/")
            .max_age(salvo::http::cookie::time::Duration::seconds(max_age_secs))
            .build()
    }
}

/// The session cookie, when the request carries it once under its own name
/// (`secret::cookie_once`): a cookie planted beside it by another site on the domain,
/// or under an encoded spelling of its name, makes no session, never the planter's.
struct CookieOnce(&'static str);

#[salvo::async_trait]
impl JwtTokenFinder for CookieOnce {
    async fn find_token(&self, req: &mut Request) -> Option<String> {
        cookie_once(req, self.0).ok().flatten().map(str::to_owned)
    }
}

/// Salvo's decoder, checking a token with its issuer's keys, and refusing one whose
/// header has `crit`: it names extensions the issuer requires us to understand, and we
/// understand none (RFC 7515 §4.1.11), which `jsonwebtoken` does not check.
pub struct StrictDecoder {
    issuers: Issuers,
    validation: Validation,
}

impl JwtAuthDecoder for StrictDecoder {
    type Error = jsonwebtoken::errors::Error;

    async fn decode<C>(&self, token: &str, _depot: &mut Depot) -> Result<TokenData<C>, Self::Error>
    where
        C: for<'de> Deserialize<'de> + Clone,
    {
        if jsonwebtoken::decode_header(token)?.crit.is_some() {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        }
        self.issuers.decode(token, &self.validation).await
    }
}

/// The session the [`Sessions::hoop`] found for this request: `None` when the token was
/// missing, forged or expired, or names no valid user.
pub fn user(depot: &Depot) -> Option<&Claims> {
    let claims = &depot.jwt_auth_data::<Claims>()?.claims;
    // jsonwebtoken still accepts a token during its `exp` second; RFC 7519 says not on
    // or after it, and the stream of such a token has just ended.
    let live = claims.exp > unix_now();
    // A token from your app could name anything; a name a user could not have is nobody.
    let valid = display_name(&claims.sub, MAX_USER_CHARS).is_ok_and(|name| name == claims.sub);
    (live && valid).then_some(claims)
}

/// `frames` until the session's `exp`; then an `event: session-expired` (data
/// `{"user", "exp"}`) and the end. A reconnect with a fresh token resumes by
/// `Last-Event-ID`; one without sees broadcasts only.
pub fn until_expiry<S>(frames: S, claims: &Claims) -> impl Stream<Item = Bytes> + Send + 'static
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let left = match UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp)) {
        Some(end) => end.duration_since(SystemTime::now()).unwrap_or_default(),
        None => Duration::MAX, // past what the clock can say: never, in practice
    };
    let expired = Frame::new()
        .event("session-expired")
        .and_then(|frame| frame.json(&SessionInfo::from(claims)))
        .map(Frame::finish);
    async_stream::stream! {
        let mut frames = std::pin::pin!(frames);
        let expiry = tokio::time::sleep(left);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                frame = frames.next() => match frame {
                    Some(frame) => yield frame,
                    None => break,
                },
                () = &mut expiry => {
                    if let Ok(frame) = expired {
                        yield frame;
                    }
                    break;
                }
            }
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_tls_the_cookie_is_secure_and_host_only() {
        let lifetime = Duration::from_secs(60);
        let secret = [7u8; MIN_SECRET_BYTES];
        for (tls, name) in [(true, "__Host-notify-session"), (false, "notify-session")] {
            let Ok(sessions) = Sessions::new(&secret, tls, lifetime) else {
                panic!("a 32-byte secret is refused");
            };
            let mut res = Response::new();
            sessions.set_cookie(&mut res, "token".into());
            let Some(cookie) = res.cookie(name) else {
                panic!("no {name} cookie");
            };
            assert_eq!(cookie.secure(), Some(tls));
            assert_eq!(cookie.http_only(), Some(true));
            assert_eq!(cookie.same_site(), Some(SameSite::Strict));
            // `__Host-` also needs Path=/ and no Domain, or browsers drop the cookie.
            assert_eq!(cookie.path(), Some("/"));
            assert_eq!(cookie.domain(), None);
        }
        assert!(Sessions::new(&secret[1..], false, lifetime).is_err());
    }
}
