//! Access tokens as Mercure's Authorization section says: a JWT access token (`typ`
//! `at+jwt`, RFC 9068) signed with HS256 under the hub's secret, by `Authorization:
//! Bearer` or else the cookie, whose `authorization_details` grant `publish` and
//! `subscribe` on topic matchers.
//!
//! Salvo's `JwtAuth` hoop finds and checks the token ([`TokenDecoder`]: HS256 only,
//! `typ`, no `crit`, `exp` required, `nbf`, and `aud` / `iss` when the hub is given
//! them); [`Grants::from_claims`] then reads the details strictly: one detail that does
//! not parse makes the whole token invalid, never a token with fewer rights.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, TokenData, Validation};
use salvo::jwt_auth::{
    ConstDecoder, CookieFinder, HeaderFinder, JwtAuth, JwtAuthDecoder, JwtAuthDepotExt,
    JwtAuthState,
};
use salvo::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::matcher::{MatchType, Matcher, Matchers};

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
    #[serde(default)]
    pub authorization_details: Option<Value>,
}

/// The hoop that puts a valid token's claims in the `Depot`. It never refuses by
/// itself: each handler decides what a missing or invalid token means (see [`token`]).
pub fn hoop(
    secret: &[u8],
    audience: Option<&str>,
    issuer: Option<&str>,
    cookie: &str,
) -> JwtAuth<Claims, TokenDecoder> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    validation.validate_aud = audience.is_some();
    if let Some(audience) = audience {
        validation.set_audience(&[audience]);
        required.push("aud");
    }
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let decoder = ConstDecoder::with_validation(DecodingKey::from_secret(secret), validation);
    // The bearer header first: when it is there, the cookie is ignored.
    JwtAuth::new(TokenDecoder(decoder))
        .finders(vec![
            Box::new(HeaderFinder::new()),
            Box::new(CookieFinder::new(cookie.to_owned())),
        ])
        .force_passed(true)
}

/// Salvo's decoder, also refusing a token whose `typ` is not `at+jwt` (so an ID token
/// or any other JWT under the same key is not an access token) and one whose header
/// has `crit` (extensions we would have to understand; RFC 7515 §4.1.11).
pub struct TokenDecoder(ConstDecoder);

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
        self.0.decode(token, depot).await
    }
}

/// What the request's token says: none was presented, it is not valid, or these
/// grants until `exp`.
pub enum Token {
    None,
    Invalid,
    Valid { grants: Arc<Grants>, exp: u64 },
}

/// The request's token, as the [`hoop`] found it, with its grants read.
pub fn token(depot: &Depot, matchers: &Matchers) -> Token {
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
            match Grants::from_claims(claims, matchers) {
                Some(grants) => Token::Valid {
                    grants: Arc::new(grants),
                    exp: claims.exp,
                },
                None => Token::Invalid,
            }
        }
    }
}

/// What a token allows: the matchers its details grant `publish` on, and `subscribe`.
#[derive(Default)]
pub struct Grants {
    pub publish: Vec<Arc<Matcher>>,
    pub subscribe: Vec<Arc<Matcher>>,
    /// The `subscribe` details in order, each with its `payload` (a JSON object), for
    /// the subscriptions they describe (see [`Grants::payload_for`]).
    pub subscribe_details: Vec<(Vec<Arc<Matcher>>, Option<Value>)>,
}

impl Grants {
    /// The grants of `claims`, or `None` when any Mercure detail is malformed (a
    /// missing or empty `actions` or `topics`, a non-string action, a matcher that is
    /// not an object, an unsupported `match_type`, a bad pattern) or past the limits.
    /// Details of other types are not ours and grant nothing; unknown actions too.
    pub fn from_claims(claims: &Claims, matchers: &Matchers) -> Option<Self> {
        let mut grants = Grants::default();
        let details = match &claims.authorization_details {
            None => return Some(grants),
            Some(Value::Array(details)) => details,
            Some(_) => return None,
        };
        if details.len() > MAX_DETAILS {
            return None;
        }
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
            let mut compiled = Vec::with_capacity(topics.len());
            for topic in topics {
                let topic = topic.as_object()?;
                let pattern = topic.get("match")?.as_str()?;
                let match_type = match topic.get("match_type") {
                    None => MatchType::Exact,
                    Some(name) => MatchType::from_name(name.as_str()?)?,
                };
                compiled.push(matchers.get(match_type, pattern).ok()?);
            }
            let payload = match detail.get("payload") {
                None => None,
                Some(Value::Object(payload)) => Some(Value::Object(payload.clone())),
                Some(_) => return None,
            };
            for action in actions {
                match action.as_str()? {
                    "publish" => grants.publish.extend(compiled.iter().cloned()),
                    "subscribe" => {
                        grants.subscribe.extend(compiled.iter().cloned());
                        let detail = (compiled.clone(), payload.clone());
                        grants.subscribe_details.push(detail);
                    }
                    _ => {}
                }
            }
        }
        Some(grants)
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
        topics
            .iter()
            .any(|t| self.subscribe.iter().any(|m| m.matches(t)))
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
