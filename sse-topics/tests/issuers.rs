//! Tokens from several issuers, each checked only with its own keys (`--jwt-issuer`):
//! PEM public keys (RS256, PS256, ES256, EdDSA), a JWKS this test serves and rotates,
//! and the hub's secret; and the algorithm confusions an attacker tries. Keys are made
//! by `openssl` for each run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, TestResult, http, openssl_key, serve_plain};
use sse_topics::auth::{DETAIL_TYPE, unix_now};

const BIN: &str = env!("CARGO_BIN_EXE_sse-topics");
const SECRET: &str = "the hub's own secret, 32 bytes or more";
const AUDIENCE: &str = "https://hub.example/.well-known/mercure";

/// A token publishing everywhere, for this hub, from `iss` (if any), signed as `alg`
/// with `key` under `kid` (if any).
fn token(
    iss: Option<&str>,
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
) -> TestResult<String> {
    let mut header = Header::new(alg);
    header.typ = Some("at+jwt".into());
    header.kid = kid.map(str::to_owned);
    let mut claims = json!({
        "aud": AUDIENCE,
        "exp": unix_now() + 600,
        "authorization_details": [{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}],
    });
    if let Some(iss) = iss {
        claims["iss"] = iss.into();
    }
    Ok(jsonwebtoken::encode(&header, &claims, key)?)
}

/// The status of a publish with `token`.
async fn publish(hub: &AppProcess, token: &str) -> TestResult<u16> {
    let response = http()
        .post(format!("{}/.well-known/mercure", hub.url()))
        .bearer_auth(token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic=urn%3Aa&data=x")
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// A JWKS endpoint: the set it serves now, and how many times it was fetched.
#[derive(Clone, Default)]
struct JwksEndpoint {
    set: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

#[salvo::async_trait]
impl salvo::Handler for JwksEndpoint {
    async fn handle(
        &self,
        _req: &mut salvo::Request,
        _depot: &mut salvo::Depot,
        res: &mut salvo::Response,
        _ctrl: &mut salvo::FlowCtrl,
    ) {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        res.render(salvo::writing::Json(self.set.lock().clone()));
    }
}

/// The public JWK of `key` (signing as `alg`), named `kid`.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> TestResult<Jwk> {
    let mut jwk = Jwk::from_encoding_key(key, alg)?;
    jwk.common.key_id = Some(kid.into());
    Ok(jwk)
}

#[tokio::test]
async fn each_issuer_is_checked_with_its_own_keys_and_algorithms() -> TestResult {
    let dir = std::env::temp_dir().join(format!("sse-topics-issuers-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rsa = openssl_key(
        &dir,
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    )
    .await?;
    let ec = openssl_key(
        &dir,
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
    .await?;
    let ed = openssl_key(&dir, "ed", &["-algorithm", "ED25519"]).await?;
    let idp_1 = openssl_key(
        &dir,
        "idp1",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
    .await?;
    let idp_2 = openssl_key(&dir, "idp2", &["-algorithm", "ED25519"]).await?;
    let (rsa, ec, ed) = (
        EncodingKey::from_rsa_pem(&rsa)?,
        EncodingKey::from_ec_pem(&ec)?,
        EncodingKey::from_ed_pem(&ed)?,
    );
    let (idp_1, idp_2) = (
        EncodingKey::from_ec_pem(&idp_1)?,
        EncodingKey::from_ed_pem(&idp_2)?,
    );

    // The identity provider's JWKS: one key, then (rotated) two.
    let jwks = JwksEndpoint::default();
    *jwks.set.lock() = serde_json::to_value(JwkSet {
        keys: vec![jwk(&idp_1, Algorithm::ES256, "k1")?],
    })?;
    let at = serve_plain(salvo::Router::with_path("jwks.json").get(jwks.clone())).await?;
    let pem = |name: &str| format!("{}", dir.join(format!("{name}.pub")).display());
    let issuers = [
        format!("https://rsa.example=pem:{}", pem("rsa")),
        format!("https://ec.example=pem:{}", pem("ec")),
        format!("https://ed.example=pem:{}", pem("ed")),
        format!("https://idp.example=jwks:http://{at}/jwks.json"),
    ];
    let mut args = vec![
        "--jwt-secret",
        SECRET,
        "--jwt-audience",
        AUDIENCE,
        "--jwks-refresh-secs",
        "3600",
    ];
    for issuer in &issuers {
        args.extend(["--jwt-issuer", issuer.as_str()]);
    }
    let hub = AppProcess::spawn(BIN, &args).await?;
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "fetched at start");

    // Each issuer's tokens, with each algorithm its key's type allows.
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    for (iss, alg, key, kid) in [
        (Some("https://rsa.example"), Algorithm::RS256, &rsa, None),
        (Some("https://rsa.example"), Algorithm::PS256, &rsa, None),
        (Some("https://ec.example"), Algorithm::ES256, &ec, None),
        (Some("https://ed.example"), Algorithm::EdDSA, &ed, None),
        (
            Some("https://idp.example"),
            Algorithm::ES256,
            &idp_1,
            Some("k1"),
        ),
        (None, Algorithm::HS256, &secret, None), // the hub's own secret, no issuer
    ] {
        let status = publish(&hub, &token(iss, alg, key, kid)?).await?;
        assert_eq!(status, 200, "{iss:?} {alg:?}");
    }

    // Refused: one issuer's key under another's name, the hub's secret under an
    // issuer's name, an RSA public key's PEM as an HMAC secret, `alg: none`, an
    // algorithm of another family than the key's.
    let rsa_public = std::fs::read(dir.join("rsa.pub"))?;
    let confused = EncodingKey::from_secret(&rsa_public);
    let unsigned = {
        let header = base64_url(br#"{"alg":"none","typ":"at+jwt"}"#);
        let claims = json!({"iss": "https://rsa.example", "aud": AUDIENCE, "exp": unix_now() + 600,
            "authorization_details": [{"type": DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "*"}]}]});
        format!("{header}.{}.", base64_url(claims.to_string().as_bytes()))
    };
    for (what, token) in [
        (
            "the EC key as the RSA issuer",
            token(Some("https://rsa.example"), Algorithm::ES256, &ec, None)?,
        ),
        (
            "the hub's secret as an issuer",
            token(Some("https://ec.example"), Algorithm::HS256, &secret, None)?,
        ),
        (
            "an RSA public key as an HMAC secret",
            token(
                Some("https://rsa.example"),
                Algorithm::HS256,
                &confused,
                None,
            )?,
        ),
        ("alg: none", unsigned),
        (
            "an issuer nobody configured",
            token(Some("https://nobody.example"), Algorithm::ES256, &ec, None)?,
        ),
        (
            "HS384 under the HS256 secret",
            token(None, Algorithm::HS384, &secret, None)?,
        ),
    ] {
        assert_eq!(publish(&hub, &token).await?, 401, "{what}");
    }

    // The provider rotates: a token under its new key is checked once the set is
    // fetched again (once); a `kid` still unknown after that is refused, and does not
    // make the hub fetch again within --jwks-refresh-secs.
    *jwks.set.lock() = serde_json::to_value(JwkSet {
        keys: vec![
            jwk(&idp_1, Algorithm::ES256, "k1")?,
            jwk(&idp_2, Algorithm::EdDSA, "k2")?,
        ],
    })?;
    let rotated = token(
        Some("https://idp.example"),
        Algorithm::EdDSA,
        &idp_2,
        Some("k2"),
    )?;
    assert_eq!(publish(&hub, &rotated).await?, 200);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    let unknown = token(
        Some("https://idp.example"),
        Algorithm::EdDSA,
        &idp_2,
        Some("k3"),
    )?;
    assert_eq!(publish(&hub, &unknown).await?, 401);
    assert_eq!(publish(&hub, &unknown).await?, 401);
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        2,
        "one fetch per interval"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
