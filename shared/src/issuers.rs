//! Who may issue the access tokens a service accepts, and the keys that check them:
//! several issuers, each with its own keys, as identity providers (Keycloak, Auth0, a
//! company's own) publish them.
//!
//! An issuer's keys are an HS256 secret, a PEM public key (RSA: `RS256/384/512`,
//! `PS256/384/512`; EC: `ES256`, `ES384`; Ed25519: `EdDSA`), or a JWKS URL, fetched at
//! start and again when a token names a `kid` the set lacks (at most once per
//! [`Issuers::jwks_refresh`]; the old keys serve until a new set is in). A token is
//! checked only against the keys of the issuer its `iss` names (a token without `iss`,
//! or naming none of them, only against the unnamed issuer, if there is one), and only
//! with an algorithm of its key's family: an RSA public key is never an HMAC secret,
//! and `alg: none` is nothing.
//!
//! ```
//! use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
//! use sse_shared::issuers::Issuers;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let secret = b"a secret of at least thirty-two bytes";
//! let issuers = Issuers::default().with_secret(Some("https://login.example"), secret);
//! let claims = serde_json::json!({"iss": "https://login.example", "sub": "ada", "exp": 4102444800u64});
//! let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))?;
//! let checked = issuers.decode::<serde_json::Value>(&token, &Validation::default()).await?;
//! assert_eq!(checked.claims["sub"], "ada");
//! // Another issuer's name on a token signed with this secret: not a token of ours.
//! let forged = serde_json::json!({"iss": "https://elsewhere.example", "sub": "ada", "exp": 4102444800u64});
//! let forged = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &forged, &EncodingKey::from_secret(secret))?;
//! assert!(issuers.decode::<serde_json::Value>(&forged, &Validation::default()).await.is_err());
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, TokenData, Validation};
use parking_lot::RwLock;
use rustls_platform_verifier::BuilderVerifierExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys kept from one JWKS.
pub const MAX_JWKS_KEYS: usize = 64;
/// How long a JWKS fetch may take.
pub const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// One `--jwt-issuer` as given: `NAME` (checked with the service's own secret),
/// `NAME=pem:PATH`, `NAME=jwks:URL` or `NAME=secret-file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerArg {
    /// What the tokens' `iss` says.
    pub name: String,
    /// Where its keys are (`None`: the service's own secret).
    pub keys: Option<KeySource>,
}

/// Where an issuer's keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM public key file.
    Pem(String),
    /// A JWKS document (`https://`, or `http://` on a loopback address).
    Jwks(String),
    /// A file holding an HS256 secret (its text, without the final line break).
    SecretFile(String),
}

impl FromStr for IssuerArg {
    type Err = IssuerError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((name, keys)) = text.split_once('=') else {
            return Ok(Self {
                name: text.to_owned(),
                keys: None,
            });
        };
        let keys = match keys.split_once(':') {
            Some(("pem", path)) => KeySource::Pem(path.to_owned()),
            Some(("jwks", url)) => KeySource::Jwks(url.to_owned()),
            Some(("secret-file", path)) => KeySource::SecretFile(path.to_owned()),
            _ => return Err(IssuerError::Form(text.to_owned())),
        };
        Ok(Self {
            name: name.to_owned(),
            keys: Some(keys),
        })
    }
}

/// Why an issuer's keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    /// An `--jwt-issuer` that is none of the forms.
    #[error(
        "{0:?} is not an issuer: give NAME, NAME=pem:PATH, NAME=jwks:URL or NAME=secret-file:PATH"
    )]
    Form(String),
    /// A key file that cannot be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM that holds no RSA, EC or Ed25519 public key.
    #[error("{0} holds no RSA, EC or Ed25519 public key in PEM")]
    Pem(String),
    /// A secret shorter than HS256 needs.
    #[error("the secret in {0} is shorter than 32 bytes")]
    ShortSecret(String),
    /// An issuer without keys of its own, and no secret to check its tokens with.
    #[error(
        "the issuer {0:?} names no keys (=pem:, =jwks: or =secret-file:) and there is no --jwt-secret"
    )]
    NoSecret(String),
    /// A JWKS URL that is not `https://` (or `http://` on a loopback address).
    #[error("{0:?}: a JWKS URL must be https:// (http:// only on a loopback address)")]
    JwksUrl(String),
    /// A JWKS that could not be fetched or read.
    #[error("the JWKS at {url}: {why}")]
    Jwks {
        /// Its URL.
        url: String,
        /// What went wrong.
        why: String,
    },
}

/// The issuers a service accepts tokens from. Cheap to clone.
#[derive(Clone, Default)]
pub struct Issuers {
    named: HashMap<String, Arc<Keys>>,
    unnamed: Option<Arc<Keys>>,
    jwks_refresh: Duration,
}

/// One issuer's keys.
enum Keys {
    Fixed(Vec<DecodingKey>),
    Jwks(Jwks),
}

/// A JWKS and when it may be fetched again.
struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Vec<JwksKey>>,
    /// Held while fetching (one fetch at a time), with when the last fetch for an
    /// unknown `kid` started (none yet: the first unknown `kid` fetches at once).
    fetched: tokio::sync::Mutex<Option<Instant>>,
}

struct JwksKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl Issuers {
    /// Tokens signed with `secret` (HS256), naming issuer `name` (`None`: tokens without
    /// an `iss`, or naming none of the issuers, are checked with it, as a service with
    /// only its own secret does).
    pub fn with_secret(mut self, name: Option<&str>, secret: &[u8]) -> Self {
        let keys = Arc::new(Keys::Fixed(vec![DecodingKey::from_secret(secret)]));
        match name {
            Some(name) => self.named.insert(name.to_owned(), keys),
            None => self.unnamed.replace(keys),
        };
        self
    }

    /// The least time between two fetches of a JWKS for an unknown `kid` (default 30 s).
    pub fn jwks_refresh(mut self, every: Duration) -> Self {
        self.jwks_refresh = every;
        self
    }

    /// `secret` (HS256) for the issuers of `args` named without keys of their own
    /// (`NAME`), and, when there is none, for tokens naming no issuer (or none of these).
    pub fn with_secret_for(mut self, args: &[IssuerArg], secret: &[u8]) -> Self {
        let keyless: Vec<&IssuerArg> = args.iter().filter(|arg| arg.keys.is_none()).collect();
        if keyless.is_empty() {
            self = self.with_secret(None, secret);
        }
        for arg in keyless {
            self = self.with_secret(Some(&arg.name), secret);
        }
        self
    }

    /// The issuers `args` name: those without keys checked with `secret`
    /// ([`Issuers::with_secret_for`]), the others with theirs (JWKS fetched here).
    pub async fn from_args(
        args: &[IssuerArg],
        secret: Option<&[u8]>,
        jwks_refresh: Duration,
    ) -> Result<Self, IssuerError> {
        let mut issuers = Issuers::default().jwks_refresh(jwks_refresh);
        match secret {
            Some(secret) => issuers = issuers.with_secret_for(args, secret),
            None => {
                if let Some(arg) = args.iter().find(|arg| arg.keys.is_none()) {
                    return Err(IssuerError::NoSecret(arg.name.clone()));
                }
            }
        }
        for arg in args {
            let keys = match &arg.keys {
                None => continue,
                Some(KeySource::SecretFile(path)) => Keys::Fixed(vec![read_secret(path)?]),
                Some(KeySource::Pem(path)) => Keys::Fixed(vec![read_pem(path)?]),
                Some(KeySource::Jwks(url)) => Keys::Jwks(Jwks::fetch_first(url).await?),
            };
            issuers.named.insert(arg.name.clone(), Arc::new(keys));
        }
        Ok(issuers)
    }

    /// `token` checked against its issuer's keys with `validation` (its `algorithms`
    /// and `iss` are set here: the token's own algorithm if it fits the key, and the
    /// issuer's name).
    pub async fn decode<C: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<TokenData<C>, Error> {
        self.decode_as(token, validation, false).await
    }

    /// [`Issuers::decode`], except that a token naming no issuer (or none of these) is
    /// checked with the keys of the only issuer there is, and its `iss` is not: what
    /// Mercure's hub does in its 0.x compatibility mode, whose tokens predate issuers.
    pub async fn decode_lenient<C: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
    ) -> Result<TokenData<C>, Error> {
        self.decode_as(token, validation, true).await
    }

    async fn decode_as<C: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
        lenient: bool,
    ) -> Result<TokenData<C>, Error> {
        let header = jsonwebtoken::decode_header(token)?;
        // Only to choose the keys: the claims are read again once the signature holds.
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)?;
        let iss = match claims.get("iss") {
            None => None,
            Some(Value::String(iss)) => Some(iss.as_str()),
            Some(_) => return Err(ErrorKind::InvalidIssuer.into()),
        };
        let named = iss.and_then(|iss| self.named.get(iss).map(|keys| (iss, keys)));
        let sole = match (self.named.len(), &self.unnamed) {
            (1, None) => self.named.values().next(),
            _ => None,
        };
        let (name, keys) = match (named, &self.unnamed, sole) {
            (Some((iss, keys)), _, _) => (Some(iss), keys),
            (None, Some(keys), _) => (None, keys),
            (None, None, Some(keys)) if lenient => (None, keys),
            (None, None, _) => return Err(ErrorKind::InvalidIssuer.into()),
        };
        let key = keys
            .find(header.kid.as_deref(), header.alg, self.jwks_refresh)
            .await?;
        let mut validation = validation.clone();
        validation.algorithms = vec![header.alg];
        if let Some(name) = name.filter(|_| !lenient) {
            validation.set_issuer(&[name]);
            validation.required_spec_claims.insert("iss".into());
        }
        jsonwebtoken::decode(token, &key, &validation)
    }
}

/// The algorithms a key of `family` checks: the family's, except HMAC's: HS256 only.
fn fits(family: AlgorithmFamily, alg: Algorithm) -> bool {
    match family {
        AlgorithmFamily::Hmac => alg == Algorithm::HS256,
        family => alg.family() == family,
    }
}

impl Keys {
    /// The key that checks a token signed with `alg` under `kid`.
    async fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        refresh: Duration,
    ) -> Result<DecodingKey, Error> {
        match self {
            Keys::Fixed(keys) => {
                let key = keys.iter().find(|key| fits(key.family(), alg));
                key.cloned()
                    .ok_or_else(|| ErrorKind::InvalidAlgorithm.into())
            }
            Keys::Jwks(jwks) => {
                if let Some(key) = jwks.find(kid, alg) {
                    return Ok(key);
                }
                // A key we do not have: the issuer may have rotated. Fetch once (not
                // more often than `refresh`), then look again.
                jwks.refresh(refresh).await;
                jwks.find(kid, alg)
                    .ok_or_else(|| ErrorKind::InvalidKeyFormat.into())
            }
        }
    }
}

impl Jwks {
    /// The JWKS at `url`, fetched now.
    async fn fetch_first(url: &str) -> Result<Self, IssuerError> {
        let parsed = url::Url::parse(url).map_err(|_| IssuerError::JwksUrl(url.into()))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(IssuerError::JwksUrl(url.into()));
        }
        let failed = |why: String| IssuerError::Jwks {
            url: url.into(),
            why,
        };
        // The server's own crypto (ring), and the system's roots (a company's own CA).
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|e| failed(e.to_string()))?
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(JWKS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let jwks = Self {
            url: url.to_owned(),
            client,
            keys: RwLock::new(Vec::new()),
            fetched: tokio::sync::Mutex::new(None),
        };
        let keys = jwks.fetch().await.map_err(failed)?;
        *jwks.keys.write() = keys;
        Ok(jwks)
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read();
        let found = keys.iter().find(|k| {
            (kid.is_none() || k.kid.as_deref() == kid)
                && k.alg.is_none_or(|a| a == alg)
                && fits(k.key.family(), alg)
        });
        found.map(|k| k.key.clone())
    }

    /// Fetches the set again unless it was fetched less than `every` ago; on failure
    /// the keys stay as they were.
    async fn refresh(&self, every: Duration) {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        *fetched = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => *self.keys.write() = keys,
            Err(why) => tracing::warn!(url = %self.url, "cannot refresh the JWKS: {why}"),
        }
    }

    /// The signing keys of the set at the URL (RSA, EC and Ed25519; no secrets).
    async fn fetch(&self) -> Result<Vec<JwksKey>, String> {
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        for jwk in set.keys.iter().take(MAX_JWKS_KEYS) {
            let signing = matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            // A secret in a published set would be everyone's: only public keys.
            let public = !matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_));
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| Algorithm::try_from(a).ok());
            if let (true, true, Ok(key)) = (signing, public, DecodingKey::from_jwk(jwk)) {
                let kid = jwk.common.key_id.clone();
                keys.push(JwksKey { kid, alg, key });
            }
        }
        Ok(keys)
    }
}

fn read(path: &str) -> Result<Vec<u8>, IssuerError> {
    std::fs::read(path).map_err(|source| IssuerError::File {
        path: path.into(),
        source,
    })
}

/// An HS256 secret from a file (without a final line break).
fn read_secret(path: &str) -> Result<DecodingKey, IssuerError> {
    let mut secret = read(path)?;
    while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        secret.pop();
    }
    if secret.len() < 32 {
        return Err(IssuerError::ShortSecret(path.into()));
    }
    Ok(DecodingKey::from_secret(&secret))
}

/// A PEM public key: RSA, EC or Ed25519, whichever it holds.
fn read_pem(path: &str) -> Result<DecodingKey, IssuerError> {
    let pem = read(path)?;
    DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| IssuerError::Pem(path.into()))
}
