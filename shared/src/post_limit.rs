//! A hoop that limits what each client address may post: `burst` requests that change
//! something (any method but `GET`, `HEAD` and `OPTIONS`) at once, then `per_second`;
//! beyond, `429 rate-limited` with `Retry-After`, before the handler reads a byte of the
//! body. An example's `main.rs` puts it around the routes whose posts anyone may send
//! (sse-resume's notes), so the handler stays the pattern.
//!
//! ```
//! use salvo::prelude::*;
//! use sse_shared::post_limit::PostLimit;
//!
//! #[handler]
//! async fn post_note() -> &'static str {
//!     "published"
//! }
//!
//! // 10 notes at once per address, then 2 a second.
//! let router = Router::new()
//!     .hoop(PostLimit::per_client(10, 2, "notes"))
//!     .push(Router::with_path("events").post(post_note));
//! # let _ = router;
//! ```

use salvo::http::{Method, StatusCode};
use salvo::prelude::*;

use crate::address::client_of;
use crate::error::ApiError;
use crate::rate::PerClient;

/// Requests that change something, per client address ([`PerClient`]: IPv6 per /64).
pub struct PostLimit {
    per_client: PerClient,
    burst: u32,
    per_second: u32,
    /// What is posted, for the refusal's message ("notes").
    what: &'static str,
}

impl PostLimit {
    /// `burst` at once per address, then `per_second`; `what` names them in the
    /// refusal ("At most 2 notes a second ...").
    pub fn per_client(burst: u32, per_second: u32, what: &'static str) -> Self {
        Self {
            per_client: PerClient::new(burst, f64::from(per_second)),
            burst,
            per_second,
            what,
        }
    }
}

#[async_trait]
impl Handler for PostLimit {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return;
        }
        let Some(ip) = client_of(req, depot) else {
            return;
        };
        if let Err(wait) = self.per_client.try_take(ip) {
            let (burst, per_second, what) = (self.burst, self.per_second, self.what);
            let message = format!(
                "At most {per_second} {what} a second (bursts of {burst}) from one address; wait a moment."
            );
            let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", message);
            res.render(error.retry_after(wait));
            ctrl.skip_rest();
        }
    }
}
