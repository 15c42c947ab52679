//! Secrets: random tokens, constant-time comparison, and the credential a request
//! presents (`Authorization: Bearer`, else a cookie).
//!
//! ```
//! use salvo::Request;
//! use sse_shared::secret::{constant_time_eq, presented_token, random_token};
//!
//! let token = random_token();
//! assert_eq!(token.len(), 32);
//! let mut req = Request::new();
//! let bearer = format!("Bearer {token}").parse()?;
//! req.headers_mut().insert("authorization", bearer);
//! let presented = presented_token(&req, "session").unwrap_or_default();
//! assert!(constant_time_eq(presented.as_bytes(), token.as_bytes()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rand::RngExt;
use salvo::Request;
use subtle::ConstantTimeEq;

/// A fresh random token: 128 bits from the thread's CSPRNG, as 32 hex digits.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two secrets in time that does not depend on where they differ (`subtle`;
/// only a difference in length shows).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The credential a request presents: `Authorization: Bearer`, else the cookie
/// `cookie`. One rule for every example (notify's `JwtAuth` finders run in the same
/// order): a client that sends a bearer token means it, so a stale or planted cookie
/// never shadows it; a bad bearer is not rescued by a cookie either.
pub fn presented_token<'a>(req: &'a Request, cookie: &str) -> Option<&'a str> {
    bearer_token(req).or_else(|| req.cookie(cookie).map(|c| c.value()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
