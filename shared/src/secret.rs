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

use percent_encoding::percent_decode_str;
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
/// `cookie` (when it is there once: [`cookie_once`]). One rule for every example
/// (notify's `JwtAuth` finders run in the same order): a client that sends a bearer
/// token means it, so a stale or planted cookie never shadows it; a bad bearer is not
/// rescued by a cookie either.
pub fn presented_token<'a>(req: &'a Request, cookie: &str) -> Option<&'a str> {
    bearer_token(req).or_else(|| cookie_once(req, cookie).ok().flatten())
}

/// A cookie sent more than once, or under a percent-encoded spelling of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cookie is sent more than once, or under an encoded name")]
pub struct AmbiguousCookie;

/// The value of the cookie `name` as the request's `Cookie` headers carry it, if it is
/// there exactly once under exactly that name. Another site on the domain (a sibling
/// subdomain, a plain-HTTP origin) can add a cookie of the same name, or one whose name
/// only decodes to it (`sessio%6E`, `%5F_Host-...`: browsers check the `__Host-` and
/// `__Secure-` prefixes on the name as written, and a parser that decodes names, as
/// salvo's cookie jar does, then sees two, keeping one by the order they came in). Either
/// is [`AmbiguousCookie`]: no credential, never the attacker's.
pub fn cookie_once<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, AmbiguousCookie> {
    let mut found = None;
    let pairs = req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='));
    for (raw, value) in pairs {
        let raw = raw.trim();
        if raw == name {
            if found.replace(value.trim()).is_some() {
                return Err(AmbiguousCookie);
            }
        } else if raw.contains('%') && percent_decode_str(raw).decode_utf8_lossy() == name {
            return Err(AmbiguousCookie);
        }
    }
    Ok(found)
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
    fn a_cookie_counts_once_under_its_own_name_only() {
        let with = |cookies: &[&str]| {
            let mut req = Request::new();
            for cookie in cookies {
                if let Ok(value) = cookie.parse() {
                    req.headers_mut().append("cookie", value);
                }
            }
            req
        };
        let req = with(&["a=1; session=ok"]);
        assert_eq!(cookie_once(&req, "session"), Ok(Some("ok")));
        assert_eq!(cookie_once(&with(&["a=1"]), "session"), Ok(None));
        for planted in [
            vec!["session=ok; session=evil"],
            vec!["session=ok", "session=evil"],
            vec!["session=ok; sessio%6E=evil"],
            vec!["%73ession=evil"],
        ] {
            assert_eq!(
                cookie_once(&with(&planted), "session"),
                Err(AmbiguousCookie),
                "{planted:?}"
            );
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
