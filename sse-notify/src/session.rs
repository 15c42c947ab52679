//! Signed session cookies: who a browser is, in a cookie it cannot forge.
//!
//! `EventSource` cannot send headers, so a browser's stream is authenticated by a
//! cookie. The cookie holds the user name and an HMAC-SHA256 of it under the server's
//! key: `hex(name).hex(mac)`. Changing either half makes it invalid; it is `HttpOnly`
//! (scripts cannot read it) and `SameSite=Strict` (other sites cannot send it).

use hmac::{Hmac, KeyInit, Mac};
use salvo::http::cookie::{Cookie, SameSite};
use salvo::{Request, Response};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "session";

/// The server's signing key.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl SessionKey {
    /// A key from secret bytes (use at least 16 random bytes).
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length, so this cannot fail; an empty key is still a key.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
    }

    /// The cookie value naming `user`.
    pub fn sign(&self, user: &str) -> String {
        let mut mac = self.mac();
        mac.update(user.as_bytes());
        format!(
            "{}.{}",
            hex(user.as_bytes()),
            hex(&mac.finalize().into_bytes())
        )
    }

    /// The user a cookie value names, if the signature is ours (checked in constant time).
    pub fn verify(&self, value: &str) -> Option<String> {
        let (user, tag) = value.split_once('.')?;
        let user = unhex(user)?;
        let tag = unhex(tag)?;
        let mut mac = self.mac();
        mac.update(&user);
        mac.verify_slice(&tag).ok()?;
        String::from_utf8(user).ok()
    }

    /// Sets the session cookie for `user` on `res`.
    pub fn start(&self, res: &mut Response, user: &str) {
        let cookie = Cookie::build((COOKIE, self.sign(user)))
            .http_only(true)
            .same_site(SameSite::Strict)
            .path("/")
            .build();
        res.add_cookie(cookie);
    }

    /// The user of the request's session cookie; `None` when missing or forged.
    pub fn user(&self, req: &Request) -> Option<String> {
        self.verify(req.cookie(COOKIE)?.value())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 4096 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_values_verify_and_forgeries_do_not() {
        let key = SessionKey::new("k".repeat(32));
        let value = key.sign("alice");
        assert_eq!(key.verify(&value).as_deref(), Some("alice"));
        let (_, tag) = value.split_once('.').unwrap_or_default();
        // Another name with alice's tag, another key, garbage: all refused.
        assert_eq!(key.verify(&format!("{}.{tag}", hex(b"bob"))), None);
        assert_eq!(SessionKey::new("other key").verify(&value), None);
        for garbage in ["", ".", "zz.zz", "616c696365", "616c696365.", "é.é"] {
            assert_eq!(key.verify(garbage), None, "{garbage:?}");
        }
    }
}
