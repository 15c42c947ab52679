//! Access tokens as Mercure's Authorization section says: a JWT access token (`typ`
//! `at+jwt`, RFC 9068) signed with HS256 under the hub's secret, by `Authorization:
//! Bearer` or else the cookie, whose `authorization_details` grant `publish` and
//! `subscribe` on topic matchers.
//!
//! Salvo's `JwtAuth` hoop finds and checks the token ([`TokenDecoder`]: `typ`, no
//! `crit`, `exp` and `aud` required, `nbf`, and the signature and `iss` by the issuers
//! the hub accepts: `sse_shared::issuers`, an HS256 secret, PEM public keys, JWKS); [`token`] then reads the details strictly (`Detail::read_all`): one detail that does
//! not parse makes the whole token invalid, never a token with fewer rights.
//!
//! With `--protocol-compat 8`, as Mercure's hub in that mode, tokens minted for Mercure
//! 0.x work too: no `typ`, `aud` or `exp` needed, the `mercure` claim (or the
//! `https://mercure.rocks/` one) read as details (`Detail::read_legacy`), and the token
//! also found in the `authorization` query parameter and the `mercureAuthorization`
//! cookie. A token with `authorization_details` is a 1.0 token in either mode, and must
//! pass every 1.0 check.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, TokenData, Validation};
use salvo::jwt_auth::{
    CookieFinder, HeaderFinder, JwtAuth, JwtAuthDecoder, JwtAuthDepotExt, JwtAuthState,
    JwtTokenFinder, QueryFinder,
};
use salvo::prelude::*;
use serde::Deserialize;
use serde_json::Value;
use sse_shared::issuers::Issuers;

use super::matcher::{MatchType, Matcher, Matchers, Selection, Selector};

/// The authorization detail type Mercure defines.
pub const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";
/// The shortest secret accepted: HS256 is only as strong as its key (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;
/// The most authorization details, and matchers per detail, a token may carry.
const MAX_DETAILS: usize = 32;
const MAX_TOPICS_PER_DETAIL: usize = 64;

/// The claims the hub reads; the signature, `exp`, `nbf`, `aud` and `iss` are checked by
/// the decoder.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// Required, except of a Mercure 0.x token (`--protocol-compat 8`).
    #[serde(default)]
    pub exp: Option<u64>,
    /// Read to refuse an `iss` that is not one string.
    #[serde(default)]
    pub iss: Option<Value>,
    #[serde(default)]
    pub authorization_details: Option<Value>,
    /// Mercure 0.x's claim (`--protocol-compat 8` only).
    #[serde(default)]
    pub mercure: Option<Value>,
    /// The same, namespaced; it wins over `mercure`.
    #[serde(default, rename = "https://mercure.rocks/")]
    pub mercure_namespaced: Option<Value>,
}

/// Mercure 0.x's name for the token's cookie and query parameter.
pub const LEGACY_COOKIE: &str = "mercureAuthorization";
pub const LEGACY_QUERY: &str = "authorization";
/// The most selectors a 0.x token's `publish`, and its `subscribe`, may list.
const MAX_LEGACY_SELECTORS: usize = 256;

/// The hoop that puts a valid token's claims in the `Depot`. It never refuses by
/// itself: each handler decides what a missing or invalid token means (see [`token`]).
/// Every token's `aud` must name the request's [`Audience`] (Mercure: hubs MUST verify
/// it, so a token for another hub sharing the key is refused).
/// `compat`: also the 0.x forms (see the module's doc).
pub fn hoop(issuers: Issuers, cookie: &str, compat: bool) -> JwtAuth<Claims, TokenDecoder> {
    // The algorithm and the issuer are the token's issuer's (see `Issuers`).
    let mut validation = Validation {
        leeway: 0,
        validate_nbf: true,
        validate_aud: true,
        ..Validation::default()
    };
    validation.set_required_spec_claims(&["exp", "aud"]);
    // The bearer header first: when it is there, the cookie is ignored.
    let mut finders: Vec<Box<dyn JwtTokenFinder>> = vec![Box::new(HeaderFinder::new())];
    if compat {
        // As Mercure 0.x: the query parameter, then the cookie, then the 0.x cookie.
        finders.push(Box::new(QueryFinder::new(LEGACY_QUERY)));
    }
    finders.push(Box::new(CookieFinder::new(cookie.to_owned())));
    if compat {
        finders.push(Box::new(CookieFinder::new(LEGACY_COOKIE)));
    }
    // A 0.x token needs neither `exp` nor `aud` (nor `iss`: Mercure does not check it);
    // those it has are checked (an `aud` naming another hub is refused).
    let mut legacy = validation.clone();
    legacy.set_required_spec_claims::<&str>(&[]);
    let decoder = TokenDecoder {
        issuers,
        validation,
        legacy: compat.then_some(legacy),
    };
    JwtAuth::new(decoder).finders(finders).force_passed(true)
}

/// The hub's resource identifier for this request, which a token's `aud` must name:
/// `--jwt-audience`, else the hub's URL (`discovery.rs` puts it in the `Depot`).
#[derive(Clone, Debug)]
pub struct Audience(pub String);

/// Salvo's decoder for one key, checking `aud` against the request's [`Audience`] and
/// also refusing a token whose `typ` is not `at+jwt` (so an ID token or any other JWT
/// under the same key is not an access token) and one whose header has `crit`
/// (extensions we would have to understand; RFC 7515 §4.1.11). With `legacy` (the
/// checks of a 0.x token), a token that fails the 1.0 checks and has no
/// `authorization_details` is checked as a 0.x token: its signature and, when it has
/// them, `exp` and `nbf`.
pub struct TokenDecoder {
    issuers: Issuers,
    validation: Validation,
    legacy: Option<Validation>,
}

impl JwtAuthDecoder for TokenDecoder {
    type Error = jsonwebtoken::errors::Error;

    async fn decode<C>(&self, token: &str, depot: &mut Depot) -> Result<TokenData<C>, Self::Error>
    where
        C: for<'de> Deserialize<'de> + Clone,
    {
        let header = jsonwebtoken::decode_header(token)?;
        if header.crit.is_some() {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        }
        let refused = match self.decode_access_token(token, &header, depot).await {
            Ok(data) => return Ok(data),
            Err(refused) => refused,
        };
        let (Some(legacy), Ok(Audience(audience))) = (&self.legacy, depot.get_typed::<Audience>())
        else {
            return Err(refused);
        };
        let mut legacy = legacy.clone();
        legacy.set_audience(&[audience]);
        let Ok(data) = self.issuers.decode_lenient::<Value>(token, &legacy).await else {
            return Err(refused);
        };
        // A 1.0 token is held to the 1.0 checks in either mode.
        let details = data.claims.get("authorization_details");
        if details.is_some_and(|d| !d.is_null()) {
            return Err(refused);
        }
        let claims = serde_json::from_value(data.claims);
        let claims = claims.map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidToken)?;
        Ok(TokenData { header, claims })
    }
}

impl TokenDecoder {
    /// `token` checked as a 1.0 access token: typed `at+jwt`, for this request's
    /// [`Audience`].
    async fn decode_access_token<C>(
        &self,
        token: &str,
        header: &Header,
        depot: &Depot,
    ) -> Result<TokenData<C>, jsonwebtoken::errors::Error>
    where
        C: for<'de> Deserialize<'de> + Clone,
    {
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        }
        let Ok(Audience(audience)) = depot.get_typed::<Audience>() else {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidAudience.into());
        };
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        self.issuers.decode(token, &validation).await
    }
}

/// What the request's token says: none was presented, it is not valid, or these
/// grants until `exp`.
pub enum Token {
    None,
    Invalid,
    /// `exp`: when it expires (a 0.x token may not).
    Valid {
        grants: Arc<Grants>,
        exp: Option<u64>,
    },
}

/// The request's token, as the [`hoop`] found it, with its grants read and compiled
/// (new URL patterns off the runtime's workers, within one request's budget).
/// `compat`: a token without `authorization_details` has its `mercure` claim read.
pub async fn token(depot: &Depot, matchers: &Arc<Matchers>, compat: bool) -> Token {
    match depot.jwt_auth_state() {
        JwtAuthState::Unauthorized => Token::None,
        JwtAuthState::Forbidden => Token::Invalid,
        JwtAuthState::Authorized => {
            let Some(data) = depot.jwt_auth_data::<Claims>() else {
                return Token::Invalid;
            };
            let claims = &data.claims;
            // jsonwebtoken accepts a token during its `exp` second; RFC 7519 does not.
            if claims.exp.is_some_and(|exp| exp <= unix_now()) {
                return Token::Invalid;
            }
            // One issuer, as a string (RFC 7519 §4.1.1): jsonwebtoken also takes a list.
            if claims.iss.as_ref().is_some_and(|iss| !iss.is_string()) {
                return Token::Invalid;
            }
            let no_details = match &claims.authorization_details {
                None => true,
                Some(Value::Array(details)) => details.is_empty(),
                Some(_) => false,
            };
            let read = match compat && no_details {
                true => Detail::read_legacy(claims),
                false => Detail::read_all(claims).map(|details| (details, None)),
            };
            let Some((details, fallback)) = read else {
                return Token::Invalid;
            };
            let wanted = details.iter().flat_map(|d| d.topics.iter().cloned());
            let Ok(compiled) = matchers.compile_off_workers(wanted.collect()).await else {
                return Token::Invalid;
            };
            let mut grants = Grants::new(details, compiled);
            grants.fallback_payload = fallback;
            Token::Valid {
                grants: Arc::new(grants),
                exp: claims.exp,
            }
        }
    }
}

/// One Mercure authorization detail, read but not compiled.
struct Detail {
    publish: bool,
    subscribe: bool,
    topics: Vec<Selector>,
    payload: Option<Value>,
}

impl Detail {
    /// The Mercure details of `claims`, or `None` when any is malformed (a missing or
    /// empty `actions` or `topics`, a non-string action, a matcher that is not an
    /// object, an unsupported `match_type`, a pattern with a bad character) or past the
    /// limits. Details of other types are not ours and grant nothing; unknown actions
    /// too.
    fn read_all(claims: &Claims) -> Option<Vec<Detail>> {
        let details = match &claims.authorization_details {
            None => return Some(Vec::new()),
            Some(Value::Array(details)) => details,
            Some(_) => return None,
        };
        if details.len() > MAX_DETAILS {
            return None;
        }
        let mut read = Vec::new();
        for detail in details {
            let detail = detail.as_object()?;
            if detail.get("type").and_then(Value::as_str) != Some(DETAIL_TYPE) {
                continue;
            }
            let actions = detail.get("actions")?.as_array()?;
            let topics = detail.get("topics")?.as_array()?;
            if actions.is_empty() || topics.is_empty() || topics.len() > MAX_TOPICS_PER_DETAIL {
                return None;
            }
            let mut wanted = Vec::with_capacity(topics.len());
            for topic in topics {
                let topic = topic.as_object()?;
                let pattern = topic.get("match")?.as_str()?;
                Matchers::check(pattern).ok()?;
                let match_type = match topic.get("match_type") {
                    None => MatchType::Exact,
                    Some(name) => MatchType::from_name(name.as_str()?)?,
                };
                wanted.push((match_type, pattern.to_owned()));
            }
            let payload = match detail.get("payload") {
                None => None,
                Some(Value::Object(payload)) => Some(Value::Object(payload.clone())),
                Some(_) => return None,
            };
            let (mut publish, mut subscribe) = (false, false);
            for action in actions {
                match action.as_str()? {
                    "publish" => publish = true,
                    "subscribe" => subscribe = true,
                    _ => {}
                }
            }
            read.push(Detail {
                publish,
                subscribe,
                topics: wanted,
                payload,
            });
        }
        Some(read)
    }

    /// Mercure 0.x's `mercure` claim (the `https://mercure.rocks/` one when present) as
    /// details: one `publish` detail for its `publish` selectors, one `subscribe` detail
    /// per `subscribe` selector (with that selector's payload), and the claim's `payload`
    /// for the subscriptions no selector's payload covers. A selector is a string (a
    /// topic, `*`, or a URI template, as a 0.x `topic=`) or a 1.0 matcher object
    /// (`match`, `match_type`, `payload`). `None` when any part is malformed.
    fn read_legacy(claims: &Claims) -> Option<(Vec<Detail>, Option<Value>)> {
        let claim = match (&claims.mercure_namespaced, &claims.mercure) {
            (Some(claim), _) | (None, Some(claim)) => claim,
            (None, None) => return Some((Vec::new(), None)),
        };
        let claim = claim.as_object()?;
        let selectors = |name: &str| -> Option<Vec<(Selector, Option<Value>)>> {
            let list = match claim.get(name) {
                None | Some(Value::Null) => return Some(Vec::new()),
                Some(list) => list.as_array()?,
            };
            if list.len() > MAX_LEGACY_SELECTORS {
                return None;
            }
            list.iter().map(legacy_selector).collect()
        };
        let (publish, subscribe) = (selectors("publish")?, selectors("subscribe")?);
        let mut details = Vec::with_capacity(subscribe.len() + 1);
        if !publish.is_empty() {
            details.push(Detail {
                publish: true,
                subscribe: false,
                topics: publish.into_iter().map(|(selector, _)| selector).collect(),
                payload: None,
            });
        }
        for (selector, payload) in subscribe {
            details.push(Detail {
                publish: false,
                subscribe: true,
                topics: vec![selector],
                payload,
            });
        }
        let fallback = claim.get("payload").filter(|p| !p.is_null()).cloned();
        Some((details, fallback))
    }
}

/// One selector of a 0.x token's `publish` or `subscribe`, and its payload.
fn legacy_selector(value: &Value) -> Option<(Selector, Option<Value>)> {
    let (selector, payload) = match value {
        Value::String(text) => ((MatchType::UriTemplate, text.clone()), None),
        Value::Object(object) => {
            let pattern = object.get("match")?.as_str()?;
            let match_type = match object.get("match_type") {
                None => MatchType::Exact,
                Some(name) => MatchType::from_name(name.as_str()?)?,
            };
            let payload = object.get("payload").filter(|p| !p.is_null()).cloned();
            ((match_type, pattern.to_owned()), payload)
        }
        _ => return None,
    };
    Matchers::check(&selector.1).ok()?;
    Some((selector, payload))
}

/// What a token allows: the matchers its details grant `publish` on, and `subscribe`.
#[derive(Default)]
pub struct Grants {
    pub publish: Vec<Arc<Matcher>>,
    pub subscribe: Selection,
    /// The `subscribe` details in order, each with its `payload` (a JSON object), for
    /// the subscriptions they describe (see [`Grants::payload_for`]).
    pub subscribe_details: Vec<(Vec<Arc<Matcher>>, Option<Value>)>,
    /// A 0.x token's `mercure.payload`: the payload of subscriptions no detail's covers.
    pub fallback_payload: Option<Value>,
}

impl Grants {
    /// The grants of `details`, whose matchers are `compiled`, in order.
    fn new(details: Vec<Detail>, compiled: Vec<Arc<Matcher>>) -> Self {
        let mut grants = Grants::default();
        let mut compiled = compiled.into_iter();
        let mut subscribe = Vec::new();
        for detail in details {
            let matchers: Vec<Arc<Matcher>> = compiled.by_ref().take(detail.topics.len()).collect();
            if detail.publish {
                grants.publish.extend(matchers.iter().cloned());
            }
            if detail.subscribe {
                subscribe.extend(matchers.iter().cloned());
                grants.subscribe_details.push((matchers, detail.payload));
            }
        }
        grants.subscribe = Selection::new(subscribe);
        grants
    }

    /// Whether these grants allow publishing to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|m| m.matches(topic))
    }

    /// The payload of the first `subscribe` detail whose matchers match `pattern` (a
    /// subscription's own matcher, read as if it were a topic), if that detail has one.
    pub fn payload_for(&self, pattern: &str) -> Option<&Value> {
        let mut details = self.subscribe_details.iter();
        let first = details.find(|(matchers, _)| matchers.iter().any(|m| m.matches(pattern)));
        let payload = first.and_then(|(_, payload)| payload.as_ref());
        payload.or(self.fallback_payload.as_ref())
    }

    /// Whether these grants allow reading a private update with these topics: a
    /// `subscribe` grant on any one of them.
    pub fn may_read(&self, topics: &[String]) -> bool {
        self.subscribe.matches_any(topics)
    }
}

/// An access token for `claims`, as this hub accepts them: HS256 under `secret`, typed
/// `at+jwt`. What your app's issuer (or a self-issuing publisher) does.
pub fn sign(secret: &[u8], claims: &Value) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH);
    since.map_or(0, |d| d.as_secs())
}
