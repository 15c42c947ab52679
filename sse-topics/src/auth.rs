//! Access tokens as Mercure's Authorization section says: a JWT access token (`typ`
//! `at+jwt`, RFC 9068) signed with HS256 under the hub's secret, by `Authorization:
//! Bearer` or else the cookie, whose `authorization_details` grant `publish` and
//! `subscribe` on topic matchers.
//!
//! Salvo's `JwtAuth` hoop finds and checks the token ([`TokenDecoder`]: HS256 only,
//! `typ`, no `crit`, `exp` required, `nbf`, and `aud` / `iss` when the hub is given
//! them); [`token`] then reads the details strictly (`Detail::read_all`): one detail that does
//! not parse makes the whole token invalid, never a token with fewer rights.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, TokenData, Validation};
use salvo::jwt_auth::{
    CookieFinder, HeaderFinder, JwtAuth, JwtAuthDecoder, JwtAuthDepotExt, JwtAuthState,
};
use salvo::prelude::*;
use serde::Deserialize;
use serde_json::Value;

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
    pub exp: u64,
    /// Read to refuse an `iss` that is not one string.
    #[serde(default)]
    pub iss: Option<Value>,
    #[serde(default)]
    pub authorization_details: Option<Value>,
}

/// The hoop that puts a valid token's claims in the `Depot`. It never refuses by
/// itself: each handler decides what a missing or invalid token means (see [`token`]).
/// Every token's `aud` must name the request's [`Audience`] (Mercure: hubs MUST verify
/// it, so a token for another hub sharing the key is refused).
pub fn hoop(secret: &[u8], issuer: Option<&str>, cookie: &str) -> JwtAuth<Claims, TokenDecoder> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "aud"];
    validation.validate_aud = true;
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let key = DecodingKey::from_secret(secret);
    // The bearer header first: when it is there, the cookie is ignored.
    JwtAuth::new(TokenDecoder { key, validation })
        .finders(vec![
            Box::new(HeaderFinder::new()),
            Box::new(CookieFinder::new(cookie.to_owned())),
        ])
        .force_passed(true)
}

/// The hub's resource identifier for this request, which a token's `aud` must name:
/// `--jwt-audience`, else the hub's URL (`discovery.rs` puts it in the `Depot`).
#[derive(Clone, Debug)]
pub struct Audience(pub String);

/// Salvo's decoder for one key, checking `aud` against the request's [`Audience`] and
/// also refusing a token whose `typ` is not `at+jwt` (so an ID token or any other JWT
/// under the same key is not an access token) and one whose header has `crit`
/// (extensions we would have to understand; RFC 7515 §4.1.11).
pub struct TokenDecoder {
    key: DecodingKey,
    validation: Validation,
}

impl JwtAuthDecoder for TokenDecoder {
    type Error = jsonwebtoken::errors::Error;

    async fn decode<C>(&self, token: &str, depot: &mut Depot) -> Result<TokenData<C>, Self::Error>
    where
        C: for<'de> Deserialize<'de> + Clone,
    {
        let header = jsonwebtoken::decode_header(token)?;
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let access_token = typ == "at+jwt" || typ == "application/at+jwt";
        if !access_token || header.crit.is_some() {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidToken.into());
        }
        let Ok(Audience(audience)) = depot.get_typed::<Audience>() else {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidAudience.into());
        };
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        jsonwebtoken::decode(token, &self.key, &validation)
    }
}

/// What the request's token says: none was presented, it is not valid, or these
/// grants until `exp`.
pub enum Token {
    None,
    Invalid,
    Valid { grants: Arc<Grants>, exp: u64 },
}

/// The request's token, as the [`hoop`] found it, with its grants read and compiled
/// (new URL patterns off the runtime's workers, within one request's budget).
pub async fn token(depot: &Depot, matchers: &Arc<Matchers>) -> Token {
    match depot.jwt_auth_state() {
        JwtAuthState::Unauthorized => Token::None,
        JwtAuthState::Forbidden => Token::Invalid,
        JwtAuthState::Authorized => {
            let Some(data) = depot.jwt_auth_data::<Claims>() else {
                return Token::Invalid;
            };
            let claims = &data.claims;
            // jsonwebtoken accepts a token during its `exp` second; RFC 7519 does not.
            if claims.exp <= unix_now() {
                return Token::Invalid;
            }
            // One issuer, as a string (RFC 7519 §4.1.1): jsonwebtoken also takes a list.
            if claims.iss.as_ref().is_some_and(|iss| !iss.is_string()) {
                return Token::Invalid;
            }
            let Some(details) = Detail::read_all(claims) else {
                return Token::Invalid;
            };
            let wanted = details.iter().flat_map(|d| d.topics.iter().cloned());
            let Ok(compiled) = matchers.compile_off_workers(wanted.collect()).await else {
                return Token::Invalid;
            };
            Token::Valid {
                grants: Arc::new(Grants::new(details, compiled)),
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
}

/// What a token allows: the matchers its details grant `publish` on, and `subscribe`.
#[derive(Default)]
pub struct Grants {
    pub publish: Vec<Arc<Matcher>>,
    pub subscribe: Selection,
    /// The `subscribe` details in order, each with its `payload` (a JSON object), for
    /// the subscriptions they describe (see [`Grants::payload_for`]).
    pub subscribe_details: Vec<(Vec<Arc<Matcher>>, Option<Value>)>,
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
        first.and_then(|(_, payload)| payload.as_ref())
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
