//! Your identity provider's tokens (`--jwt-issuer NAME=pem:PATH`): a user signed in
//! there is that user here, checked only with the provider's key; this service's own
//! sessions still work.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sse_shared::testing::{AppProcess, TestResult, http, openssl_key};

const BIN: &str = env!("CARGO_BIN_EXE_sse-notify");
const ADMIN: &str = "an admin token of 16+ characters";
const SECRET: &str = "this service's own secret, 32 bytes or more";
const PROVIDER: &str = "https://login.example";

/// Who `GET /session` says the bearer of `token` is.
async fn who(app: &AppProcess, token: &str) -> TestResult<Value> {
    let response = http()
        .get(format!("{}/session", app.url()))
        .bearer_auth(token)
        .send()
        .await?;
    let body: Value = response.json().await?;
    Ok(body["user"].clone())
}

fn token(iss: Option<&str>, alg: Algorithm, key: &EncodingKey) -> TestResult<String> {
    token_for(iss, None, alg, key)
}

/// A token for ada from `iss`, for `aud`, signed as `alg` with `key`.
fn token_for(
    iss: Option<&str>,
    aud: Option<&str>,
    alg: Algorithm,
    key: &EncodingKey,
) -> TestResult<String> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 600;
    let mut claims = json!({"sub": "ada", "exp": exp});
    if let Some(iss) = iss {
        claims["iss"] = iss.into();
    }
    if let Some(aud) = aud {
        claims["aud"] = aud.into();
    }
    Ok(jsonwebtoken::encode(&Header::new(alg), &claims, key)?)
}

/// An Ed25519 provider made for this run in its own folder (`name`): the folder, the
/// key it signs with, and its `--jwt-issuer` argument.
async fn provider(name: &str) -> TestResult<(std::path::PathBuf, EncodingKey, String)> {
    let dir = std::env::temp_dir().join(format!("sse-notify-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let private = openssl_key(&dir, "login", &["-algorithm", "ED25519"]).await?;
    let issuer = format!("{PROVIDER}=pem:{}", dir.join("login.pub").display());
    Ok((dir, EncodingKey::from_ed_pem(&private)?, issuer))
}

#[tokio::test]
async fn an_identity_providers_tokens_are_checked_with_its_key_only() -> TestResult {
    let (dir, provider, issuer) = provider("issuers").await?;
    let public = dir.join("login.pub");
    let args = [
        "--admin-token",
        ADMIN,
        "--jwt-secret",
        SECRET,
        "--jwt-issuer",
        &issuer,
    ];
    let app = AppProcess::spawn(BIN, &args).await?;

    // Signed in at the provider: ada here.
    let signed_in = token(Some(PROVIDER), Algorithm::EdDSA, &provider)?;
    assert_eq!(who(&app, &signed_in).await?, "ada");
    // Not the provider's: this service's secret under its name, its public key as an
    // HMAC secret, a token of the provider under no name.
    let secret = EncodingKey::from_secret(SECRET.as_bytes());
    let public_as_secret = EncodingKey::from_secret(&std::fs::read(&public)?);
    for (what, token) in [
        (
            "the secret as the provider",
            token(Some(PROVIDER), Algorithm::HS256, &secret)?,
        ),
        (
            "its public key as a secret",
            token(Some(PROVIDER), Algorithm::HS256, &public_as_secret)?,
        ),
        (
            "the provider's key, no iss",
            token(None, Algorithm::EdDSA, &provider)?,
        ),
    ] {
        assert_eq!(who(&app, &token).await?, Value::Null, "{what}");
    }
    // This service's own session (no `iss`) still is one.
    let own = token(None, Algorithm::HS256, &secret)?;
    assert_eq!(who(&app, &own).await?, "ada");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// With `--jwt-audience`, a provider's access token (which names its audience) is
/// accepted when it names this service, and refused naming another or none; this
/// service's own sessions name it too.
#[tokio::test]
async fn with_an_audience_every_token_must_name_it() -> TestResult {
    let (dir, provider, issuer) = provider("audience").await?;
    let args = [
        "--admin-token",
        ADMIN,
        "--jwt-secret",
        SECRET,
        "--jwt-issuer",
        &issuer,
        "--jwt-audience",
        "https://notify.example",
    ];
    let app = AppProcess::spawn(BIN, &args).await?;
    for (aud, user) in [
        (Some("https://notify.example"), json!("ada")),
        (Some("https://other.example"), Value::Null),
        (None, Value::Null),
    ] {
        let token = token_for(Some(PROVIDER), aud, Algorithm::EdDSA, &provider)?;
        assert_eq!(who(&app, &token).await?, user, "{aud:?}");
    }
    // A session of this service's own login.
    let response = http()
        .post(format!("{}/session", app.url()))
        .bearer_auth(ADMIN)
        .json(&json!({"user": "bob"}))
        .send()
        .await?;
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .ok_or("no session cookie")?;
    let cookie = set_cookie.to_str()?.split(';').next().unwrap_or_default();
    let token = cookie.split_once('=').map_or("", |(_, token)| token);
    assert_eq!(who(&app, token).await?, "bob");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
